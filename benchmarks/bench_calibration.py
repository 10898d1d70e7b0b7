"""Calibration benchmark: numeric totals with raking, linear and logit distances.

One case: ``--rows`` rows (1,000,000 by default) with 5 categorical string
columns (5, 2, 10, 4 and 6 levels, correlated), a continuous numeric column
``income`` (almost every value distinct, so rows hardly compress into
cells) and a discrete one ``size`` (1-8), non-uniform base weights. Targets:
population counts of the 5 margins (N = 5,000,000) and the totals of income
and size, all a few percent away from the weighted sample.

Every method goes from the rows to one weight per row, on the same CSV:

* skbalance ``MarginalBalancer(distance=...)`` in this process (tol 1e-10);
* R survey's ``calibrate`` (calfun "raking", "linear", "logit"; epsilon
  1e-10), run with ``Rscript`` when it is installed: its time is measured in
  R around the ``calibrate`` call alone (model matrix and design included,
  reading the CSV excluded), and its weights are compared with skbalance's;
* samplics ``SampleWeight.calibrate`` and svy ``weighting.calibrate`` (both
  linear only: GREG), in their own environment when given with
  ``--peer-python`` (they need other versions of numpy/pandas than the
  project's), timed around the call alone, dummies built outside the timing.

Usage::

    python benchmarks/bench_calibration.py
    python benchmarks/bench_calibration.py --rows 200000 --peer-python /tmp/peers/bin/python

The table reports seconds (best of ``--repeat``), the ratio to skbalance's
time for the same distance, the largest constraint error of the result
(shares for margins, relative error for totals) and the largest relative
difference of the weights from skbalance's.
"""

import argparse
import json
import shutil
import subprocess
import sys
import tempfile
import textwrap
import time
import warnings
from pathlib import Path

import numpy as np
import pandas as pd

LEVELS = {"c0": 5, "c1": 2, "c2": 10, "c3": 4, "c4": 6}
NUMERIC = ["income", "size"]
POPULATION = 5_000_000
BOUNDS = (0.2, 5.0)
METHODS = ("raking", "linear", "logit")


def make_case(n_rows, seed=0):
    """Rows and targets (counts of every level, totals of income and size)."""
    rng = np.random.default_rng(seed)
    latent = rng.normal(size=n_rows)
    frame = {}
    for name, n_levels in LEVELS.items():
        score = 0.6 * latent + rng.normal(size=n_rows)
        cuts = np.quantile(score, np.linspace(0, 1, n_levels + 1)[1:-1] ** 1.3)
        frame[name] = np.asarray([f"{name}_{k}" for k in range(n_levels)])[
            np.searchsorted(cuts, score)]
    frame["income"] = np.round(np.exp(10 + 0.4 * latent + 0.5 * rng.normal(size=n_rows)), 2)
    frame["size"] = np.clip(rng.poisson(1.5 + (latent > 0), n_rows), 1, 8).astype(float)
    pw = rng.uniform(0.5, 2.0, n_rows) * (1 + 0.3 * (latent > 1))
    # design weights sum to the population, as a design's do: then R's bounds
    # (on w / d) and skbalance's (on w / (d N / sum d)) are the same
    frame["pw"] = pw * POPULATION / pw.sum()
    frame = pd.DataFrame(frame)
    weights = frame["pw"].to_numpy() / frame["pw"].sum()
    targets = {}
    for name in LEVELS:
        share = pd.Series(weights).groupby(frame[name].to_numpy()).sum()
        share *= np.exp(0.15 * rng.normal(size=share.shape[0]))
        targets[name] = (share / share.sum() * POPULATION).to_dict()
    totals = {"income": 1.03, "size": 0.97}
    for name, shift in totals.items():
        targets[name] = float(weights @ frame[name].to_numpy() * shift * POPULATION)
    return frame, targets


def constraint_error(frame, weights, targets):
    """Largest error: shares of the margins, relative error of the totals."""
    total = weights.sum()
    worst = abs(total / POPULATION - 1)
    for name, target in targets.items():
        if isinstance(target, dict):
            share = pd.Series(weights).groupby(frame[name].to_numpy()).sum() / total
            wanted = pd.Series(target) / POPULATION
            worst = max(worst, float((share - wanted.reindex(share.index)).abs().max()))
        else:
            worst = max(worst, abs(float(weights @ frame[name].to_numpy()) / target - 1))
    return worst


def run_skbalance(frame, targets, method, repeat):
    import skbalance as skb

    spec = {name: (skb.Total(t) if not isinstance(t, dict) else t) for name, t in targets.items()}
    bal = skb.MarginalBalancer(targets=spec, distance=method, tol=1e-10, max_iter=10_000,
                               bounds=BOUNDS if method == "logit" else None)
    best = np.inf
    for _ in range(repeat):
        start = time.perf_counter()
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", UserWarning)  # linear: negative weights, said once
            weights = bal.fit(frame, sample_weight=frame["pw"]).weights_
        best = min(best, time.perf_counter() - start)
    return best, weights, bal.n_iter_, bal.n_cells_


R_SCRIPT = textwrap.dedent("""
    suppressMessages(library(survey))
    args <- commandArgs(trailingOnly = TRUE)
    data <- read.csv(args[1], stringsAsFactors = TRUE)
    pop <- read.csv(args[2])
    population <- setNames(pop$value, pop$name)
    design <- svydesign(id = ~1, weights = ~pw, data = data)
    f <- ~c0 + c1 + c2 + c3 + c4 + income + size
    repeat_n <- as.integer(args[5])
    best <- Inf
    for (i in seq_len(repeat_n)) {
      elapsed <- system.time(cal <- calibrate(design, f, population, calfun = args[3],
                              bounds = if (args[3] == "logit") c(%s, %s) else c(-Inf, Inf),
                              epsilon = 1e-10, maxit = 200))[["elapsed"]]
      best <- min(best, elapsed)
    }
    write.csv(data.frame(w = weights(cal)), args[4], row.names = FALSE)
    cat("SECONDS", best, "\\n")
""" % BOUNDS)


def r_population(frame, targets):
    """The named population vector of R's model matrix (treatment contrasts)."""
    names, values = ["(Intercept)"], [POPULATION]
    for name in LEVELS:
        for level in sorted(targets[name])[1:]:
            names.append(f"{name}{level}")
            values.append(targets[name][level])
    for name in NUMERIC:
        names.append(name)
        values.append(targets[name])
    return pd.DataFrame({"name": names, "value": values})


def run_r(csv, frame, targets, method, repeat, folder):
    if shutil.which("Rscript") is None:
        return {"error": "Rscript not installed"}
    script, pop, out = folder / "cal.R", folder / "pop.csv", folder / f"r_{method}.csv"
    script.write_text(R_SCRIPT)
    r_population(frame, targets).to_csv(pop, index=False)
    return run_timed(["Rscript", str(script), str(csv), str(pop), method, str(out),
                      str(repeat)], out)


def run_timed(command, out):
    """Run a peer's script: its "SECONDS s" line and the weights it wrote to ``out``."""
    done = subprocess.run(command, capture_output=True, text=True, timeout=3600)
    seconds = [ln for ln in done.stdout.splitlines() if ln.startswith("SECONDS")]
    if not seconds:
        return {"error": (done.stderr.strip().splitlines() or ["failed"])[-1][:160]}
    return {"seconds": float(seconds[0].split()[1]),
            "weights": pd.read_csv(out)["w"].to_numpy()}


PEER_SCRIPT = textwrap.dedent("""
    import json, sys, time, warnings
    import numpy as np, pandas as pd
    warnings.simplefilter("ignore")
    csv, targets_path, which, out, repeat = sys.argv[1:6]
    frame = pd.read_csv(csv)
    targets = json.load(open(targets_path))
    columns, controls = {"one": np.ones(len(frame))}, {"one": %d}
    for name, levels in targets.items():
        if isinstance(levels, dict):
            for level in sorted(levels)[1:]:
                columns[f"{name}={level}"] = (frame[name] == level).to_numpy(float)
                controls[f"{name}={level}"] = levels[level]
        else:
            columns[name] = frame[name].to_numpy(float)
            controls[name] = levels
    aux = pd.DataFrame(columns)
    best = np.inf
    for _ in range(int(repeat)):
        if which == "samplics":
            from samplics.weighting import SampleWeight
            start = time.perf_counter()
            w = SampleWeight().calibrate(frame["pw"].to_numpy(), aux, controls)
        else:
            import polars as pl, svy
            data = pl.from_pandas(frame)
            sample = svy.Sample(data, svy.Design(wgt="pw"))
            spec = {svy.Cat(n): {k: v for k, v in l.items()} if isinstance(l, dict) else None
                    for n, l in targets.items() if isinstance(l, dict)}
            spec.update({n: l for n, l in targets.items() if not isinstance(l, dict)})
            start = time.perf_counter()
            sample.weighting.calibrate(controls=spec, wgt_name="cw", inplace=True)
            w = sample.data["cw"].to_numpy()
        best = min(best, time.perf_counter() - start)
    pd.DataFrame({"w": np.asarray(w, dtype=float)}).to_csv(out, index=False)
    print("SECONDS", best)
""" % POPULATION)


def run_peer(python, which, csv, targets, repeat, folder):
    script, target_file = folder / "peer.py", folder / "targets.json"
    out = folder / f"{which}.csv"
    script.write_text(PEER_SCRIPT)
    target_file.write_text(json.dumps(targets))
    return run_timed([python, str(script), str(csv), str(target_file), which, str(out),
                      str(repeat)], out)


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--repeat", type=int, default=2)
    parser.add_argument("--peer-python", default=None,
                        help="a Python with samplics and svy installed")
    args = parser.parse_args()
    frame, targets = make_case(args.rows)
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        csv = folder / "rows.csv"
        frame.to_csv(csv, index=False)
        frame = pd.read_csv(csv)  # what every method reads
        ours = {}
        for method in METHODS:
            seconds, weights, n_iter, n_cells = run_skbalance(frame, targets, method,
                                                              args.repeat)
            ours[method] = (seconds, weights)
            rows.append({"distance": method, "library": "skbalance", "seconds": seconds,
                         "weights": weights,
                         "note": f"{n_iter} {'steps' if method == 'raking' else 'Newton'}, "
                                 f"{n_cells:,} cells"})
        for method in METHODS:
            result = run_r(csv, frame, targets, method, args.repeat, folder)
            rows.append({"distance": method, "library": "R survey calibrate", **result,
                         "note": "epsilon 1e-10"})
        if args.peer_python:
            for which in ("samplics", "svy"):
                result = run_peer(args.peer_python, which, csv, targets, args.repeat, folder)
                rows.append({"distance": "linear", "library": which, **result,
                             "note": "GREG only"})
    print(f"\n### calibration: {args.rows:,} rows, 5 margins + 2 totals\n")
    print("| distance | library | seconds | x skbalance | max constraint error | "
          "max rel. weight diff. vs skbalance | note |")
    print("|---|---|---:|---:|---:|---:|---|")
    for row in rows:
        if "error" in row:
            print(f"| {row['distance']} | {row['library']} | - | - | - | - | {row['error']} |")
            continue
        seconds, weights = ours[row["distance"]]
        diff = float(np.max(np.abs(row["weights"] / weights - 1)))
        print(f"| {row['distance']} | {row['library']} | {row['seconds']:.2f} | "
              f"{row['seconds'] / seconds:.1f} | "
              f"{constraint_error(frame, row['weights'], targets):.1e} | {diff:.1e} | "
              f"{row['note']} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
