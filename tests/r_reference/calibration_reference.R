# Reference values for skbalance's generalized calibration (numeric totals; the
# raking, linear and logit distances), from R survey.
#
# Run from this folder:  Rscript calibration_reference.R > calibration_reference.json
# (R 4.2, survey 4.1-1 from Debian's r-cran-survey). Each entry stores the
# value (17 significant digits) and the R call that produced it; the tests
# read the JSON and need no R.
#
# Population: the apipop rows with a known enroll (6157 schools): counts of
# stype and sch.wide, and the total of enroll, from those rows.
# skbalance's bounds limit w / (d * N / sum d) (base weights rescaled to the
# target total); R's limit w / d. The two agree when sum d = N, so the bounded
# cases (and the logit) calibrate the design weights rescaled to N (pwN): the
# raking and linear weights do not change with that rescaling (the intercept
# absorbs it), the logit and bounded weights would.

suppressMessages(library(survey))
data(api)

entries <- list()
add <- function(name, value, call) {
  entries[[length(entries) + 1]] <<- sprintf('  "%s": {"value": %s, "call": "%s"}',
    name, paste0("[", paste(sprintf("%.17g", as.numeric(value)), collapse = ", "), "]"),
    gsub('"', "'", call))
}
known <- apipop[!is.na(apipop$enroll), ]
N <- nrow(known)
pop <- c(`(Intercept)` = N, stypeH = sum(known$stype == "H"), stypeM = sum(known$stype == "M"),
         sch.wideYes = sum(known$sch.wide == "Yes"), enroll = sum(known$enroll))
add("population", pop, "c(N, stypeH, stypeM, sch.wideYes, enroll) over apipop[!is.na(apipop$enroll), ]")
apistrat$pwN <- apistrat$pw * N / sum(apistrat$pw)

report <- function(name, design, call) {
  m <- svymean(~api00, design)
  add(paste0(name, ".mean_api00.estimate"), coef(m), paste(call, "; svymean(~api00, .)"))
  add(paste0(name, ".mean_api00.se"), SE(m), paste(call, "; SE(svymean(~api00, .))"))
  t <- svytotal(~api00, design)
  add(paste0(name, ".total_api00.se"), SE(t), paste(call, "; SE(svytotal(~api00, .))"))
  add(paste0(name, ".weights"), weights(design), paste(call, "; weights(.)"))
}
f <- ~stype + sch.wide + enroll

# 1. the issue's case: raking, id=~1, weights=~pw (default epsilon, as asked)
d1 <- svydesign(id = ~1, weights = ~pw, data = apistrat)
report("raking", calibrate(d1, f, pop, calfun = "raking", epsilon = 1e-13, maxit = 200),
       "calibrate(svydesign(id=~1, weights=~pw, data=apistrat), ~stype+sch.wide+enroll, pop, calfun='raking', epsilon=1e-13)")
m <- svymean(~api00, calibrate(d1, f, pop, calfun = "raking"))
add("raking_default_epsilon.mean_api00", c(coef(m), SE(m)), "calibrate(d1, ~stype+sch.wide+enroll, pop, calfun='raking') [estimate, se]")

# 2. linear (GREG)
report("linear", calibrate(d1, f, pop, calfun = "linear"),
       "calibrate(svydesign(id=~1, weights=~pw, data=apistrat), ~stype+sch.wide+enroll, pop, calfun='linear')")

# 3. logit with bounds (0.5, 2.5), weights rescaled to N
dN <- svydesign(id = ~1, weights = ~pwN, data = apistrat)
report("logit", calibrate(dN, f, pop, calfun = "logit", bounds = c(0.5, 2.5), epsilon = 1e-13, maxit = 200),
       "calibrate(svydesign(id=~1, weights=~pwN, data=apistrat), ~stype+sch.wide+enroll, pop, calfun='logit', bounds=c(0.5, 2.5), epsilon=1e-13)")

# 4. bounded linear, bounds that bind, weights rescaled to N
report("linear_bounded", calibrate(dN, f, pop, calfun = "linear", bounds = c(0.8, 1.15), epsilon = 1e-13, maxit = 200),
       "calibrate(svydesign(id=~1, weights=~pwN, data=apistrat), ~stype+sch.wide+enroll, pop, calfun='linear', bounds=c(0.8, 1.15), epsilon=1e-13)")

# 5. bounded raking, bounds that bind
report("raking_bounded", calibrate(dN, f, pop, calfun = "raking", bounds = c(0.8, 1.15), epsilon = 1e-13, maxit = 200),
       "calibrate(svydesign(id=~1, weights=~pwN, data=apistrat), ~stype+sch.wide+enroll, pop, calfun='raking', bounds=c(0.8, 1.15), epsilon=1e-13)")

# 6. the stratified design with fpc, raking
ds <- svydesign(id = ~1, strata = ~stype, weights = ~pw, fpc = ~fpc, data = apistrat)
report("strat_fpc_raking", calibrate(ds, f, pop, calfun = "raking", epsilon = 1e-13, maxit = 200),
       "calibrate(svydesign(id=~1, strata=~stype, weights=~pw, fpc=~fpc, data=apistrat), ~stype+sch.wide+enroll, pop, calfun='raking', epsilon=1e-13)")
report("strat_fpc_linear", calibrate(ds, f, pop, calfun = "linear"),
       "calibrate(svydesign(id=~1, strata=~stype, weights=~pw, fpc=~fpc, data=apistrat), ~stype+sch.wide+enroll, pop, calfun='linear')")

# 7. replicates: JKn of the stratified design, every replicate re-calibrated
rs <- as.svrepdesign(ds, type = "JKn")
for (calfun in c("raking", "linear")) {
  r <- calibrate(rs, f, pop, calfun = calfun, epsilon = 1e-13, maxit = 200)
  m <- svymean(~api00, r)
  add(paste0("strat_jkn_", calfun, ".mean_api00"), c(coef(m), SE(m)),
      paste0("calibrate(as.svrepdesign(svydesign(id=~1, strata=~stype, weights=~pw, fpc=~fpc, data=apistrat), type='JKn'), ~stype+sch.wide+enroll, pop, calfun='", calfun, "', epsilon=1e-13); svymean(~api00, .) [estimate, se]"))
}

# 8. one-stage cluster sample (apiclus1, fpc), raking to stype and enroll
dc <- svydesign(id = ~dnum, weights = ~pw, fpc = ~fpc, data = apiclus1)
rc <- calibrate(dc, ~stype + enroll, pop[c("(Intercept)", "stypeH", "stypeM", "enroll")],
                calfun = "raking", epsilon = 1e-13, maxit = 200)
m <- svymean(~api00, rc)
add("clus1_raking.mean_api00", c(coef(m), SE(m)), "calibrate(svydesign(id=~dnum, weights=~pw, fpc=~fpc, data=apiclus1), ~stype+enroll, pop, calfun='raking', epsilon=1e-13); svymean(~api00, .) [estimate, se]")

cat("{\n", paste(entries, collapse = ",\n"), "\n}\n", sep = "")
