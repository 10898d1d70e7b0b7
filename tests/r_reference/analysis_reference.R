# Reference values for the analysis functions of issue 20, from R survey.
#
# Run from this folder:  Rscript analysis_reference.R > analysis_reference.json
# (R 4.2.2, survey 4.1-1 from Debian's r-cran-survey). Each entry stores the
# value (15 significant digits) and the R call that produced it; the tests
# read the JSON and need no R.

suppressMessages(library(survey))
data(api)

entries <- list()
add <- function(name, value, call) {
  entries[[length(entries) + 1]] <<- sprintf('  "%s": {"value": %s, "call": "%s"}',
    name, paste0("[", paste(sprintf("%.15g", as.numeric(value)), collapse = ", "), "]"),
    gsub('"', "'", call))
}
est_se <- function(prefix, stat, call) {
  add(paste0(prefix, ".estimate"), coef(stat), call)
  add(paste0(prefix, ".se"), SE(stat), call)
}
pop_clus <- c(`(Intercept)` = nrow(apipop), stypeH = sum(apipop$stype == "H"),
              stypeM = sum(apipop$stype == "M"), sch.wideYes = sum(apipop$sch.wide == "Yes"))
dclus1 <- svydesign(id = ~dnum, weights = ~pw, fpc = ~fpc, data = apiclus1)
rclus1 <- calibrate(dclus1, ~stype + sch.wide, pop_clus, calfun = "raking", epsilon = 1e-12,
                    maxit = 1000)
cal <- "rclus1 <- calibrate(svydesign(id=~dnum, weights=~pw, fpc=~fpc, data=apiclus1), ~stype+sch.wide, pop, calfun='raking', epsilon=1e-12)"
dstrat <- svydesign(id = ~1, strata = ~stype, weights = ~pw, fpc = ~fpc, data = apistrat)
strat <- "dstrat <- svydesign(id=~1, strata=~stype, weights=~pw, fpc=~fpc, data=apistrat)"
jk <- as.svrepdesign(dclus1, type = "JK1")
jkcall <- "jk <- as.svrepdesign(svydesign(id=~dnum, weights=~pw, fpc=~fpc, data=apiclus1), type='JK1')"

# ---- 3. proportion intervals (svyciprop), every method
cases <- list(
  list("clus1_raked_H_awards", quote(svyciprop(~I(awards == "Yes"), subset(rclus1, stype == "H"), method = m)),
       paste(cal, "; svyciprop(~I(awards=='Yes'), subset(rclus1, stype=='H'), method=M)")),
  list("strat_awards", quote(svyciprop(~I(awards == "Yes"), dstrat, method = m)),
       paste(strat, "; svyciprop(~I(awards=='Yes'), dstrat, method=M)")),
  list("clus1_M_schwide", quote(svyciprop(~I(sch.wide == "Yes"), subset(dclus1, stype == "M"), method = m)),
       "svyciprop(~I(sch.wide=='Yes'), subset(svydesign(id=~dnum, weights=~pw, fpc=~fpc, data=apiclus1), stype=='M'), method=M)"),
  list("jk1_awards", quote(svyciprop(~I(awards == "Yes"), jk, method = m)),
       paste(jkcall, "; svyciprop(~I(awards=='Yes'), jk, method=M)"))
)
# (with JK1 replicates R's "likelihood" interval is NA: left out, an error in skbalance)
for (case in cases) for (m in c("logit", "xlogit", "asin", "beta", "mean", "likelihood")) {
  if (case[[1]] == "jk1_awards" && m == "likelihood") next
  r <- suppressWarnings(eval(case[[2]]))
  add(paste0("ciprop.", case[[1]], ".", m), c(coef(r), confint(r)),
      sub("M\\)", paste0("'", m, "')"), case[[3]]))
}
add("ciprop.strat_awards.likelihood_90", confint(svyciprop(~I(awards == "Yes"), dstrat, method = "likelihood", level = 0.9)),
    paste(strat, "; confint(svyciprop(~I(awards=='Yes'), dstrat, method='likelihood', level=0.9))"))
add("ciprop.clus1_raked_H_awards.degf", degf(subset(rclus1, stype == "H")),
    paste(cal, "; degf(subset(rclus1, stype=='H'))"))

# ---- 1. design-based regression (svyglm)
glm_row <- function(prefix, m, call) {
  add(paste0(prefix, ".coef"), coef(m), call)
  add(paste0(prefix, ".se"), SE(m), call)
  add(paste0(prefix, ".df"), m$df.residual, call)
}
glm_row("glm.raked_gaussian", svyglm(api00 ~ ell + meals + mobility, rclus1),
        paste(cal, "; svyglm(api00 ~ ell + meals + mobility, rclus1)"))
glm_row("glm.clus1_logit", svyglm(I(sch.wide == "Yes") ~ ell + meals, dclus1, family = quasibinomial, control = glm.control(epsilon = 1e-14, maxit = 100)),
        "svyglm(I(sch.wide=='Yes') ~ ell + meals, svydesign(id=~dnum, weights=~pw, fpc=~fpc, data=apiclus1), family=quasibinomial, control=glm.control(epsilon=1e-14, maxit=100))")
glm_row("glm.raked_logit", svyglm(I(awards == "Yes") ~ api99 + meals, rclus1, family = quasibinomial, control = glm.control(epsilon = 1e-14, maxit = 100)),
        paste(cal, "; svyglm(I(awards=='Yes') ~ api99 + meals, rclus1, family=quasibinomial, control=glm.control(epsilon=1e-14, maxit=100))"))
glm_row("glm.strat_poisson", svyglm(enroll ~ meals + api00, dstrat, family = quasipoisson, control = glm.control(epsilon = 1e-14, maxit = 100)),
        paste(strat, "; svyglm(enroll ~ meals + api00, dstrat, family=quasipoisson, control=glm.control(epsilon=1e-14, maxit=100))"))
glm_row("glm.raked_domain_E", svyglm(api00 ~ ell + meals, subset(rclus1, stype == "E")),
        paste(cal, "; svyglm(api00 ~ ell + meals, subset(rclus1, stype=='E'))"))
jkr <- calibrate(jk, ~stype + sch.wide, pop_clus, calfun = "raking", epsilon = 1e-12, maxit = 1000)
glm_row("glm.jk1_raked_gaussian", svyglm(api00 ~ ell + meals + mobility, jkr),
        paste(jkcall, "; jkr <- calibrate(jk, ~stype+sch.wide, pop, calfun='raking', epsilon=1e-12); svyglm(api00 ~ ell + meals + mobility, jkr)"))

# ---- 2. quantiles (svyquantile, R 4.1's qrule="math", Woodruff intervals)
qrow <- function(prefix, q, call) {
  for (name in c("estimate", "ci_low", "ci_high", "se")) {
    column <- switch(name, estimate = 1, ci_low = 2, ci_high = 3, se = 4)
    add(paste0(prefix, ".", name), q[[1]][, column], call)
  }
}
qrow("quantile.clus1_raked", svyquantile(~api00, rclus1, quantiles = c(0.25, 0.5, 0.75), ci = TRUE, se = TRUE),
     paste(cal, "; svyquantile(~api00, rclus1, quantiles=c(.25, .5, .75), ci=TRUE, se=TRUE)"))
for (m in c("mean", "beta", "xlogit", "asin")) {
  qrow(paste0("quantile.strat_", m),
       svyquantile(~api00, dstrat, quantiles = c(0.1, 0.5, 0.9), ci = TRUE, se = TRUE, interval.type = m),
       sprintf("%s; svyquantile(~api00, dstrat, quantiles=c(.1, .5, .9), ci=TRUE, se=TRUE, interval.type='%s')", strat, m))
}
for (level in c("E", "H", "M")) {
  qrow(paste0("quantile.clus1_", level),
       svyquantile(~enroll, subset(dclus1, stype == level), quantiles = c(0.5, 0.8), ci = TRUE, se = TRUE),
       sprintf("svyquantile(~enroll, subset(svydesign(id=~dnum, weights=~pw, fpc=~fpc, data=apiclus1), stype=='%s'), quantiles=c(.5, .8), ci=TRUE, se=TRUE)", level))
}
qrow("quantile.jk1", svyquantile(~api00, jk, quantiles = c(0.25, 0.5), ci = TRUE, se = TRUE),
     paste(jkcall, "; svyquantile(~api00, jk, quantiles=c(.25, .5), ci=TRUE, se=TRUE)"))

# ---- 4. domains over two variables, the covariance matrix, contrasts; t test
b2 <- svyby(~api00, ~stype + sch.wide, dclus1, svymean, covmat = TRUE)
b2call <- "b2 <- svyby(~api00, ~stype+sch.wide, svydesign(id=~dnum, weights=~pw, fpc=~fpc, data=apiclus1), svymean, covmat=TRUE) [rows sorted by (stype, sch.wide)]"
r2 <- svyby(~enroll, ~stype + comp.imp, rclus1, svymean)
o2 <- order(as.character(r2$stype), as.character(r2$comp.imp))
add("by2_raked.estimate", coef(r2)[o2], paste(cal, "; svyby(~enroll, ~stype+comp.imp, rclus1, svymean) [sorted by (stype, comp.imp)]"))
add("by2_raked.se", SE(r2)[o2], paste(cal, "; svyby(~enroll, ~stype+comp.imp, rclus1, svymean) [sorted by (stype, comp.imp)]"))
key <- paste(b2$stype, b2$sch.wide)
o <- order(as.character(b2$stype), as.character(b2$sch.wide))
add("by2.labels_in_r_order", o, paste(b2call, "; order of R's rows when sorted by (stype, sch.wide)"))
add("by2.estimate", coef(b2)[o], b2call)
add("by2.se", SE(b2)[o], b2call)
add("by2.vcov", as.vector(vcov(b2)[o, o]), paste(b2call, "; vcov(b2), column-major"))
w <- rep(0, nrow(b2)); w[o[2]] <- 1; w[o[1]] <- -1  # (E, Yes) - (E, No)
ct <- svycontrast(b2, w)
add("by2.contrast_E_yes_minus_no", c(coef(ct), SE(ct)), paste(b2call, "; svycontrast(b2, (E,Yes) - (E,No))"))
bs <- svyby(~api00, ~stype, dstrat, svymean, covmat = TRUE)
ct2 <- svycontrast(bs, c(E = -1, H = 0, M = 1))
add("strat_by.contrast_M_minus_E", c(coef(ct2), SE(ct2)),
    paste(strat, "; svycontrast(svyby(~api00, ~stype, dstrat, svymean, covmat=TRUE), c(E=-1, H=0, M=1))"))
tt <- svyttest(api00 ~ comp.imp, dclus1)
add("ttest.clus1_compimp", c(tt$estimate, tt$statistic, tt$parameter, tt$p.value),
    "svyttest(api00 ~ comp.imp, svydesign(id=~dnum, weights=~pw, fpc=~fpc, data=apiclus1)) [estimate, t, df, p]")
tt2 <- svyttest(api00 ~ sch.wide, rclus1)
add("ttest.raked_schwide", c(tt2$estimate, tt2$statistic, tt2$parameter, tt2$p.value),
    paste(cal, "; svyttest(api00 ~ sch.wide, rclus1) [estimate, t, df, p]"))

# ---- 5. Rao-Scott tests of two-way tables (svychisq)
chis <- list(
  list("clus1_schwide_stype", quote(svychisq(~sch.wide + stype, dclus1, statistic = st)),
       "svychisq(~sch.wide+stype, svydesign(id=~dnum, weights=~pw, fpc=~fpc, data=apiclus1), statistic=ST)"),
  list("raked_awards_stype", quote(svychisq(~awards + stype, rclus1, statistic = st)),
       paste(cal, "; svychisq(~awards+stype, rclus1, statistic=ST)")),
  list("strat_stype_both", quote(svychisq(~stype + both, dstrat, statistic = st)),
       paste(strat, "; svychisq(~stype+both, dstrat, statistic=ST)"))
)
for (case in chis) for (st in c("F", "Chisq")) {
  r <- suppressWarnings(eval(case[[2]]))
  add(paste0("chisq.", case[[1]], ".", st), c(r$statistic, r$parameter, r$p.value),
      sub("ST\\)", paste0("'", st, "') [statistic, parameters, p]"), case[[3]]))
}

tab <- svymean(~interaction(sch.wide, stype), rclus1)
add("table.raked_schwide_stype.estimate", coef(tab), paste(cal, "; svymean(~interaction(sch.wide, stype), rclus1) [No.E, Yes.E, No.H, Yes.H, No.M, Yes.M]"))
add("table.raked_schwide_stype.se", SE(tab), paste(cal, "; svymean(~interaction(sch.wide, stype), rclus1)"))
tot <- svytotal(~interaction(awards, stype), dclus1)
add("table.clus1_awards_stype_total.estimate", coef(tot), "svytotal(~interaction(awards, stype), svydesign(id=~dnum, weights=~pw, fpc=~fpc, data=apiclus1)) [No.E, Yes.E, No.H, ...]")
add("table.clus1_awards_stype_total.se", SE(tot), "svytotal(~interaction(awards, stype), dclus1)")

# ---- issue 21, item 5: post-stratification on a joint margin (postStratify)
pop_cells <- as.data.frame(table(stype = apipop$stype, sch.wide = apipop$sch.wide))
ps <- postStratify(dstrat, ~stype + sch.wide, pop_cells)
pscall <- paste(strat, "; ps <- postStratify(dstrat, ~stype+sch.wide, as.data.frame(table(stype=apipop$stype, sch.wide=apipop$sch.wide)))")
est_se("poststrat.mean_api00", svymean(~api00, ps), paste(pscall, "; svymean(~api00, ps)"))
est_se("poststrat.total_enroll", svytotal(~enroll, ps), paste(pscall, "; svytotal(~enroll, ps)"))
pc <- postStratify(dclus1, ~stype + sch.wide, pop_cells)
est_se("poststrat_clus1.mean_api00", svymean(~api00, pc),
       "svymean(~api00, postStratify(svydesign(id=~dnum, weights=~pw, fpc=~fpc, data=apiclus1), ~stype+sch.wide, <apipop cell counts>))")

# ---- issue 21, item 3: trimWeights after raking (the issue's case, and strict)
pop_rs <- c(`(Intercept)` = nrow(apipop), stypeH = sum(apipop$stype == "H"),
            stypeM = sum(apipop$stype == "M"), sch.wideYes = sum(apipop$sch.wide == "Yes"))
rs <- calibrate(dstrat, ~stype + sch.wide, pop_rs, calfun = "raking", epsilon = 1e-12, maxit = 1000)
rscall <- paste(strat, "; rs <- calibrate(dstrat, ~stype+sch.wide, pop, calfun='raking', epsilon=1e-12)")
for (b in list(c(20, 40, 0), c(18, 43, 1))) {
  t <- trimWeights(rs, lower = b[1], upper = b[2], strict = b[3] == 1)
  name <- sprintf("trim.%g_%g_%s", b[1], b[2], if (b[3] == 1) "strict" else "once")
  call <- sprintf("%s; t <- trimWeights(rs, lower=%g, upper=%g, strict=%s)", rscall, b[1], b[2], b[3] == 1)
  add(paste0(name, ".weights"), weights(t), paste(call, "; weights(t)"))
  est_se(paste0(name, ".mean_api00"), svymean(~api00, t), paste(call, "; svymean(~api00, t)"))
}

# ---- 6. missing outcomes (na.rm = TRUE): rows 3, 10, 50, 51 and 120 of api00
# missing (the same in Python); awards missing in rows 7, 8 and 90
with_na <- apiclus1
with_na$y <- with_na$api00
with_na$y[c(3, 10, 50, 51, 120)] <- NA
with_na$aw <- with_na$awards
with_na$aw[c(7, 8, 90)] <- NA
dna <- svydesign(id = ~dnum, weights = ~pw, fpc = ~fpc, data = with_na)
rna <- calibrate(dna, ~stype + sch.wide, pop_clus, calfun = "raking", epsilon = 1e-12,
                 maxit = 1000)
jna <- as.svrepdesign(dna, type = "JK1")
nacall <- "dna <- svydesign(id=~dnum, weights=~pw, fpc=~fpc, data=apiclus1 with y = api00 missing in rows 3, 10, 50, 51, 120 and aw = awards missing in rows 7, 8, 90)"
narake <- "rna <- calibrate(dna, ~stype+sch.wide, pop, calfun='raking', epsilon=1e-12)"
est_se <- function(prefix, stat, call) {
  add(paste0(prefix, ".estimate"), coef(stat), call)
  add(paste0(prefix, ".se"), SE(stat), call)
}
est_se("narm.mean", svymean(~y, dna, na.rm = TRUE), paste(nacall, "; svymean(~y, dna, na.rm=TRUE)"))
est_se("narm.total", svytotal(~y, dna, na.rm = TRUE), paste(nacall, "; svytotal(~y, dna, na.rm=TRUE)"))
est_se("narm.raked_mean", svymean(~y, rna, na.rm = TRUE),
       paste(nacall, ";", narake, "; svymean(~y, rna, na.rm=TRUE)"))
est_se("narm.raked_awards", svymean(~aw, rna, na.rm = TRUE),
       paste(nacall, ";", narake, "; svymean(~aw, rna, na.rm=TRUE) [No, Yes]"))
est_se("narm.ratio", svyratio(~y, ~api99, dna, na.rm = TRUE),
       paste(nacall, "; svyratio(~y, ~api99, dna, na.rm=TRUE)"))
b <- svyby(~y, ~stype, rna, svymean, na.rm = TRUE)
add("narm.raked_by_stype.estimate", coef(b), paste(nacall, ";", narake, "; svyby(~y, ~stype, rna, svymean, na.rm=TRUE) [E, H, M]"))
add("narm.raked_by_stype.se", SE(b), paste(nacall, ";", narake, "; svyby(~y, ~stype, rna, svymean, na.rm=TRUE) [E, H, M]"))
est_se("narm.jk1_mean", svymean(~y, jna, na.rm = TRUE),
       paste(nacall, "; svymean(~y, as.svrepdesign(dna, type='JK1'), na.rm=TRUE)"))
est_se("narm.both", svymean(~y + api99, dna, na.rm = TRUE),
       paste(nacall, "; svymean(~y+api99, dna, na.rm=TRUE) (rows missing either are left out of both)"))

# ---- 7. many domains: the county of every stratified school (37 levels, some
# with one school), each statistic in every domain; rows in C-locale order of
# the county name (R's sort(method="radix"), Python's sorted)
rstrat <- calibrate(dstrat, ~stype + sch.wide, pop_clus, calfun = "raking", epsilon = 1e-12,
                    maxit = 1000)
rstratcall <- "rstrat <- calibrate(dstrat, ~stype+sch.wide, pop, calfun='raking', epsilon=1e-12)"
byname <- function(b) order(as.character(b$cname), method = "radix")
b <- svyby(~api00, ~cname, rstrat, svymean)
add("counties.raked_mean.estimate", coef(b)[byname(b)], paste(strat, ";", rstratcall, "; svyby(~api00, ~cname, rstrat, svymean) [C-locale order]"))
add("counties.raked_mean.se", SE(b)[byname(b)], paste(strat, ";", rstratcall, "; svyby(~api00, ~cname, rstrat, svymean) [C-locale order]"))
b <- svyby(~api00, ~cname, dstrat, svytotal)
add("counties.total.estimate", coef(b)[byname(b)], paste(strat, "; svyby(~api00, ~cname, dstrat, svytotal) [C-locale order]"))
add("counties.total.se", SE(b)[byname(b)], paste(strat, "; svyby(~api00, ~cname, dstrat, svytotal) [C-locale order]"))
b <- svyby(~api00, ~cname, rstrat, svyratio, denominator = ~api99)
add("counties.raked_ratio.estimate", coef(b)[byname(b)], paste(strat, ";", rstratcall, "; svyby(~api00, ~cname, rstrat, svyratio, denominator=~api99) [C-locale order]"))
add("counties.raked_ratio.se", SE(b)[byname(b)], paste(strat, ";", rstratcall, "; svyby(~api00, ~cname, rstrat, svyratio, denominator=~api99) [C-locale order]"))
b <- svyby(~awards, ~cname, rstrat, svymean)
o <- byname(b)
add("counties.raked_awards.estimate", c(b$awardsNo[o], b$awardsYes[o]), paste(strat, ";", rstratcall, "; svyby(~awards, ~cname, rstrat, svymean) [level No over every county, then Yes]"))
add("counties.raked_awards.se", c(b$se.awardsNo[o], b$se.awardsYes[o]), paste(strat, ";", rstratcall, "; svyby(~awards, ~cname, rstrat, svymean) [level No over every county, then Yes]"))
rjkn <- calibrate(as.svrepdesign(dstrat, type = "JKn"), ~stype + sch.wide, pop_clus,
                  calfun = "raking", epsilon = 1e-12, maxit = 1000)
rjkncall <- "rjkn <- calibrate(as.svrepdesign(dstrat, type='JKn'), ~stype+sch.wide, pop, calfun='raking', epsilon=1e-12)"
b <- svyby(~api00, ~cname, rjkn, svymean)
add("counties.jkn_raked_mean.estimate", coef(b)[byname(b)], paste(strat, ";", rjkncall, "; svyby(~api00, ~cname, rjkn, svymean) [C-locale order]"))
add("counties.jkn_raked_mean.se", SE(b)[byname(b)], paste(strat, ";", rjkncall, "; svyby(~api00, ~cname, rjkn, svymean) [C-locale order]"))
b <- svyby(~awards, ~cname, rjkn, svymean)
o <- byname(b)
add("counties.jkn_raked_awards.estimate", c(b$awardsNo[o], b$awardsYes[o]), paste(strat, ";", rjkncall, "; svyby(~awards, ~cname, rjkn, svymean) [level No over every county, then Yes]"))
add("counties.jkn_raked_awards.se", c(SE(b)[o, 1], SE(b)[o, 2]), paste(strat, ";", rjkncall, "; svyby(~awards, ~cname, rjkn, svymean) [level No over every county, then Yes]"))

cat("{\n", paste(unlist(entries), collapse = ",\n"), "\n}\n", sep = "")
