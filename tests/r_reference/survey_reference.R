# Reference values for skbalance's design-based inference, from R survey.
#
# Run from this folder:  Rscript survey_reference.R > survey_reference.json
# (R 4.2, survey 4.1-1 from Debian's r-cran-survey). Each entry stores the
# value (15 significant digits) and the R call that produced it; the tests
# read the JSON and need no R.

suppressMessages(library(survey))
data(api)
two <- read.csv("api_two_stage.csv")

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

count <- function(x) table(x)
pop_clus <- c(`(Intercept)` = nrow(apipop), stypeH = sum(apipop$stype == "H"),
              stypeM = sum(apipop$stype == "M"), sch.wideYes = sum(apipop$sch.wide == "Yes"))
pop_strat <- c(`(Intercept)` = nrow(apipop), sch.wideYes = sum(apipop$sch.wide == "Yes"),
               awardsYes = sum(apipop$awards == "Yes"))

# ---- A. apiclus1: one-stage cluster sample with fpc, raked on stype + sch.wide
dclus1 <- svydesign(id = ~dnum, weights = ~pw, data = apiclus1, fpc = ~fpc)
rclus1 <- calibrate(dclus1, ~stype + sch.wide, pop_clus, calfun = "raking", epsilon = 1e-12,
                    maxit = 1000)
cal <- "rclus1 <- calibrate(svydesign(id=~dnum, weights=~pw, data=apiclus1, fpc=~fpc), ~stype+sch.wide, pop, calfun='raking', epsilon=1e-12)"
m <- svymean(~api00, rclus1, deff = TRUE)
est_se("clus1.mean_api00", m, paste(cal, "; svymean(~api00, rclus1, deff=TRUE)"))
add("clus1.mean_api00.deff", deff(m), "deff(svymean(~api00, rclus1, deff=TRUE))")
add("clus1.degf", degf(rclus1), "degf(rclus1)")
ci <- confint(m, df = degf(rclus1))
add("clus1.mean_api00.ci", ci, "confint(svymean(~api00, rclus1), df=degf(rclus1))")
t <- svytotal(~enroll, rclus1, deff = TRUE)
est_se("clus1.total_enroll", t, "svytotal(~enroll, rclus1, deff=TRUE)")
add("clus1.total_enroll.deff", deff(t), "deff(svytotal(~enroll, rclus1, deff=TRUE))")
p <- svymean(~awards, rclus1, deff = TRUE)
est_se("clus1.prop_awards", p, "svymean(~awards, rclus1, deff=TRUE) [No, Yes]")
add("clus1.prop_awards.deff", deff(p), "deff(svymean(~awards, rclus1, deff=TRUE))")
b <- svyby(~api00, ~comp.imp, rclus1, svymean)
add("clus1.domain_api00_by_compimp.estimate", coef(b), "svyby(~api00, ~comp.imp, rclus1, svymean) [No, Yes]")
add("clus1.domain_api00_by_compimp.se", SE(b), "svyby(~api00, ~comp.imp, rclus1, svymean) [No, Yes]")
r <- svyratio(~api00, ~api99, rclus1)
add("clus1.ratio_api00_api99.estimate", coef(r), "svyratio(~api00, ~api99, rclus1)")
add("clus1.ratio_api00_api99.se", SE(r), "svyratio(~api00, ~api99, rclus1)")
m0 <- svymean(~api00, dclus1, deff = TRUE)
est_se("clus1_uncalibrated.mean_api00", m0, "svymean(~api00, svydesign(id=~dnum, weights=~pw, data=apiclus1, fpc=~fpc), deff=TRUE)")
add("clus1_uncalibrated.mean_api00.deff", deff(m0), "deff of the above")
t0 <- svytotal(~enroll, dclus1)
est_se("clus1_uncalibrated.total_enroll", t0, "svytotal(~enroll, dclus1)")
diid <- svydesign(id = ~1, weights = ~pw, data = apiclus1)
riid <- calibrate(diid, ~stype + sch.wide, pop_clus, calfun = "raking", epsilon = 1e-12, maxit = 1000)
est_se("clus1_iid.mean_api00", svymean(~api00, riid), "svymean(~api00, calibrate(svydesign(id=~1, weights=~pw, data=apiclus1), ~stype+sch.wide, pop, calfun='raking'))")

# JK1 replicates of the cluster design, each replicate re-raked
jk <- calibrate(as.svrepdesign(dclus1, type = "JK1"), ~stype + sch.wide, pop_clus,
                calfun = "raking", epsilon = 1e-12, maxit = 1000)
jkcall <- "jk <- calibrate(as.svrepdesign(dclus1, type='JK1'), ~stype+sch.wide, pop, calfun='raking')"
est_se("clus1_jk1.mean_api00", svymean(~api00, jk), paste(jkcall, "; svymean(~api00, jk)"))
est_se("clus1_jk1.total_enroll", svytotal(~enroll, jk), "svytotal(~enroll, jk)")
est_se("clus1_jk1.prop_awards", svymean(~awards, jk), "svymean(~awards, jk) [No, Yes]")
bj <- svyby(~api00, ~comp.imp, jk, svymean)
add("clus1_jk1.domain_api00_by_compimp.se", SE(bj), "svyby(~api00, ~comp.imp, jk, svymean)")
add("clus1_jk1.ratio_api00_api99.se", SE(svyratio(~api00, ~api99, jk)), "svyratio(~api00, ~api99, jk)")
add("clus1_jk1.degf", degf(jk), "degf(jk)")

# ---- B. apistrat: stratified by stype with fpc, raked on sch.wide + awards
dstrat <- svydesign(id = ~1, strata = ~stype, weights = ~pw, data = apistrat, fpc = ~fpc)
rstrat <- calibrate(dstrat, ~sch.wide + awards, pop_strat, calfun = "raking", epsilon = 1e-12,
                    maxit = 1000)
scall <- "rstrat <- calibrate(svydesign(id=~1, strata=~stype, weights=~pw, data=apistrat, fpc=~fpc), ~sch.wide+awards, pop, calfun='raking')"
ms <- svymean(~api00, rstrat, deff = TRUE)
est_se("strat.mean_api00", ms, paste(scall, "; svymean(~api00, rstrat, deff=TRUE)"))
add("strat.mean_api00.deff", deff(ms), "deff(svymean(~api00, rstrat, deff=TRUE))")
add("strat.degf", degf(rstrat), "degf(rstrat)")
est_se("strat.total_api00", svytotal(~api00, rstrat), "svytotal(~api00, rstrat)")
jkn <- calibrate(as.svrepdesign(dstrat, type = "JKn"), ~sch.wide + awards, pop_strat,
                 calfun = "raking", epsilon = 1e-12, maxit = 1000)
est_se("strat_jkn.mean_api00", svymean(~api00, jkn), "svymean(~api00, calibrate(as.svrepdesign(dstrat, type='JKn'), ~sch.wide+awards, pop, calfun='raking'))")
set.seed(1)
boot <- calibrate(as.svrepdesign(dstrat, type = "subbootstrap", replicates = 4000),
                  ~sch.wide + awards, pop_strat, calfun = "raking", epsilon = 1e-10, maxit = 200)
est_se("strat_subbootstrap4000.mean_api00", svymean(~api00, boot), "set.seed(1); svymean(~api00, calibrate(as.svrepdesign(dstrat, type='subbootstrap', replicates=4000), ~sch.wide+awards, pop, calfun='raking'))")

# ---- C. two-stage sample (api_two_stage.csv) with fpc at both stages
d2 <- svydesign(id = ~dnum + snum, fpc = ~fpc1 + fpc2, data = two)
add("two_stage.weights_minus_pw", max(abs(weights(d2) - two$pw)), "max|weights(d2) - pw|")
pop_two <- pop_clus
r2 <- calibrate(d2, ~stype + sch.wide, pop_two, calfun = "raking", epsilon = 1e-12, maxit = 1000)
tcall <- "r2 <- calibrate(svydesign(id=~dnum+snum, fpc=~fpc1+fpc2, data=two), ~stype+sch.wide, pop, calfun='raking')"
est_se("two_stage.mean_api00", svymean(~api00, r2), paste(tcall, "; svymean(~api00, r2)"))
est_se("two_stage_uncalibrated.mean_api00", svymean(~api00, d2), "svymean(~api00, d2)")
est_se("two_stage_uncalibrated.total_meals", svytotal(~meals, d2), "svytotal(~meals, d2)")
add("two_stage.degf", degf(r2), "degf(r2)")

# ---- D. lonely PSUs: apistrat stratified by county (single-school counties)
for (rule in c("remove", "certainty", "adjust", "average")) {
  options(survey.lonely.psu = rule)
  dl <- svydesign(id = ~1, strata = ~cname, weights = ~pw, data = apistrat)
  est_se(paste0("lonely_", rule, ".mean_api00"), svymean(~api00, dl),
         paste0("options(survey.lonely.psu='", rule, "'); svymean(~api00, svydesign(id=~1, strata=~cname, weights=~pw, data=apistrat))"))
  rl <- calibrate(dl, ~sch.wide + awards, pop_strat, calfun = "raking", epsilon = 1e-12, maxit = 1000)
  est_se(paste0("lonely_", rule, "_raked.mean_api00"), svymean(~api00, rl),
         paste0("options(survey.lonely.psu='", rule, "'); svymean(~api00, calibrate(<that design>, ~sch.wide+awards, pop, calfun='raking'))"))
}
options(survey.lonely.psu = "fail")

cat("{\n", paste(entries, collapse = ",\n"), "\n}\n", sep = "")
