# Reference values for issue 22's R-parity items, from R survey.
#
# Run from this folder:  Rscript parity_reference.R > parity_reference.json
# (R 4.2.2, survey 4.1-1 from Debian's r-cran-survey, locale C.UTF-8). Each
# entry stores the value (15 significant digits) and the R call that produced
# it; the tests read the JSON and need no R.

suppressMessages(library(survey))
data(api)
paired <- read.csv("api_paired.csv")

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
pop_of <- function(counties) {
  p <- apipop[apipop$cname %in% counties, ]
  c(`(Intercept)` = nrow(p), stypeH = sum(p$stype == "H"), stypeM = sum(p$stype == "M"),
    sch.wideYes = sum(p$sch.wide == "Yes"))
}

# ---- A. BRR and Fay with R's Hadamard matrices, strata in sorted order
# (the file lists counties unsorted; districts within a county in increasing order)
for (n in c(10, 27)) {
  counties <- unique(paired$cname)[1:n]
  d <- paired[paired$cname %in% counties, ]
  des <- svydesign(id = ~dnum, strata = ~cname, weights = ~pw, data = d, nest = TRUE)
  pop <- pop_of(counties)
  for (rho in c(0, 0.3)) {
    kind <- if (rho == 0) "BRR" else "Fay"
    rep <- as.svrepdesign(des, type = kind, fay.rho = rho)
    name <- paste0("paired", n, ".", tolower(kind))
    call <- sprintf("d <- api_paired[cname in first %d counties of the file]; rep <- as.svrepdesign(svydesign(id=~dnum, strata=~cname, weights=~pw, data=d, nest=TRUE), type='%s', fay.rho=%s)", n, kind, rho)
    add(paste0(name, ".n_replicates"), ncol(weights(rep, "analysis")), paste(call, "; ncol(weights(rep))"))
    add(paste0(name, ".degf"), degf(rep), paste(call, "; degf(rep)"))
    est_se(paste0(name, ".mean_api00"), svymean(~api00, rep), paste(call, "; svymean(~api00, rep)"))
    est_se(paste0(name, ".ratio_api00_api99"), svyratio(~api00, ~api99, rep),
           paste(call, "; svyratio(~api00, ~api99, rep)"))
    if (rho > 0) {  # a BRR half-sample can lose a level; Fay keeps every row
      cal <- calibrate(rep, ~stype + sch.wide, pop, calfun = "raking", epsilon = 1e-12,
                       maxit = 1000)
      est_se(paste0(name, "_raked.mean_api00"), svymean(~api00, cal),
             paste(call, "; svymean(~api00, calibrate(rep, ~stype+sch.wide, <apipop totals of those counties>, calfun='raking', epsilon=1e-12))"))
    }
  }
}

# ---- B. degf of built replicates: rank of the replicate weights minus one
dstrat <- svydesign(id = ~1, strata = ~stype, weights = ~pw, data = apistrat, fpc = ~fpc)
set.seed(1)
add("strat_subbootstrap50.degf", degf(as.svrepdesign(dstrat, type = "subbootstrap", replicates = 50)),
    "degf(as.svrepdesign(svydesign(id=~1, strata=~stype, weights=~pw, data=apistrat, fpc=~fpc), type='subbootstrap', replicates=50))")
counties <- unique(paired$cname)[1:10]
lonely <- paired[paired$cname %in% counties, ]
lonely <- lonely[!(lonely$cname == counties[1] & lonely$dnum == max(lonely$dnum[lonely$cname == counties[1]])), ]
options(survey.lonely.psu = "adjust")
dl <- svydesign(id = ~dnum, strata = ~cname, weights = ~pw, data = lonely, nest = TRUE)
jl <- as.svrepdesign(dl, type = "JKn")
lcall <- "options(survey.lonely.psu='adjust'); jl <- as.svrepdesign(svydesign(id=~dnum, strata=~cname, weights=~pw, nest=TRUE, data=<first 10 counties of api_paired, the first county's larger district removed>), type='JKn')"
add("lonely_adjust_jkn.degf", degf(jl), paste(lcall, "; degf(jl)"))
add("lonely_adjust_jkn.n_replicates", ncol(weights(jl, "analysis")), paste(lcall, "; ncol(weights(jl))"))
est_se("lonely_adjust_jkn.mean_api00", svymean(~api00, jl), paste(lcall, "; svymean(~api00, jl)"))
add("lonely_adjust.degf", degf(dl), paste(lcall, "; degf(<the linearized design>)"))
options(survey.lonely.psu = "fail")

# ---- C. lonely_psu = "average" in domains: svyby on an uncalibrated design
# subsets each domain (its strata alone count), on a calibrated one it keeps
# every row with weight 0 (every stratum counts)
options(survey.lonely.psu = "average")
da <- svydesign(id = ~1, strata = ~cname, weights = ~pw, data = apistrat)
acall <- "options(survey.lonely.psu='average'); da <- svydesign(id=~1, strata=~cname, weights=~pw, data=apistrat)"
ba <- svyby(~api00, ~stype, da, svymean)
add("lonely_average_by_stype.estimate", coef(ba), paste(acall, "; svyby(~api00, ~stype, da, svymean) [E, H, M]"))
add("lonely_average_by_stype.se", SE(ba), paste(acall, "; svyby(~api00, ~stype, da, svymean) [E, H, M]"))
pop_strat <- c(`(Intercept)` = nrow(apipop), sch.wideYes = sum(apipop$sch.wide == "Yes"),
               awardsYes = sum(apipop$awards == "Yes"))
ra <- calibrate(da, ~sch.wide + awards, pop_strat, calfun = "raking", epsilon = 1e-12, maxit = 1000)
bra <- svyby(~api00, ~stype, ra, svymean)
add("lonely_average_raked_by_stype.se", SE(bra), paste(acall, "; svyby(~api00, ~stype, calibrate(da, ~sch.wide+awards, pop, calfun='raking', epsilon=1e-12), svymean) [E, H, M]"))
options(survey.lonely.psu = "fail")

# ---- D. bounds in replicates: R bounds each replicate's g = w_r / d_r
pop_clus <- c(`(Intercept)` = nrow(apipop), stypeH = sum(apipop$stype == "H"),
              stypeM = sum(apipop$stype == "M"), sch.wideYes = sum(apipop$sch.wide == "Yes"))
jk <- as.svrepdesign(svydesign(id = ~dnum, weights = ~pw, data = apiclus1, fpc = ~fpc), type = "JK1")
for (cf in c("raking", "linear", "logit")) {
  b <- calibrate(jk, ~stype + sch.wide, pop_clus, calfun = cf, bounds = c(0.5, 2.2),
                 epsilon = 1e-12, maxit = 1000)
  est_se(paste0("clus1_jk1_bounded_", cf, ".mean_api00"), svymean(~api00, b),
         sprintf("jk <- as.svrepdesign(svydesign(id=~dnum, weights=~pw, data=apiclus1, fpc=~fpc), type='JK1'); svymean(~api00, calibrate(jk, ~stype+sch.wide, pop, calfun='%s', bounds=c(0.5, 2.2), epsilon=1e-12))", cf))
}

cat("{\n", paste(unlist(entries), collapse = ",\n"), "\n}\n", sep = "")
