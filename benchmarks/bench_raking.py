"""Raking benchmark: skbalance against peer libraries on the same data.

Two cases, each written once to CSV and read back, so that string columns are
what a reader makes of them:

* ``five``: 1,000,000 rows x 5 correlated string columns with 5, 2, 10, 4
  and 6 levels, non-uniform base weights, tol 1e-10.
* ``eight``: 1,000,000 rows x 8 correlated columns of 10 levels each
  (10**8 possible cells, about a million observed).
* ``autumn``: the shape users cite (the R package autumn's README: 108,660
  rows x 17 variables raked in 47 s and 20.8 GB; anesrake 8.15 min and
  238.6 GB): 108,660 rows (whatever ``--rows``) x 17 correlated columns of 2
  to 12 levels, every row its own cell.

R survey runs too (``--rscript``, default ``Rscript``): ``rake`` and
``calibrate(calfun="raking")`` on ``svydesign(ids=~1, weights=~pw)``, one
Rscript per round, the CSV read and the design built outside the timed
call; its memory is R's ``gc()`` "max used" during the call (the data
included), its read limit the pandas one of this process.

Honest by construction:

* Strings are read with the same storage in every process: pandas' ``str``
  dtype with pyarrow storage (``pd.StringDtype("pyarrow", na_value=nan)``).
* Every method goes from the frame to one weight per row, and its largest
  marginal error is recomputed from those weights (in proportions), so a peer
  that stops early shows it.
* Each contender is timed against its own read limit, in its own process and
  round: the fastest pass that turns the balancing columns into integer codes
  (``pandas.factorize``, the call skbalance makes, for pandas strings;
  ``cast(pl.Categorical).to_physical()`` for polars; reading ``.cat.codes``
  for pandas categoricals).
* Rounds are interleaved (every contender once per round, the order rotated)
  and the table reports medians.
* Peers run on their exact paths in their own environments (``--peer
  NAME=PYTHON``), each as a long-lived worker with a timeout per run and a
  memory cap: balance with a target frame (the population's weights, not its
  approximate ``target_margins``), ipfn on the table of cells, weightipy
  (no base weights: from equal weights), svy.

Usage::

    python benchmarks/bench_raking.py --peer balance=/venv1/bin/python \\
        --peer svy=/venv2/bin/python --peer ipfn=/venv3/bin/python \\
        --peer weightipy=/venv3/bin/python --out results.md
    OPENBLAS_NUM_THREADS=1 python benchmarks/bench_raking.py --cases autumn \\
        --only "skbalance,R survey rake,R survey calibrate,balance,svy" \\
        --peer balance=/venv1/bin/python --peer svy=/venv2/bin/python
    OPENBLAS_NUM_THREADS=1 python benchmarks/bench_raking.py --cases eight \\
        --only skbalance --repeat 7

Columns of the table: median wall time, its ratio to the read limit of the
same process and round (median), the largest absolute marginal error, the
peak memory the call added (resident set size sampled every 2 ms) and what
skbalance's solver did.
"""

import argparse
import json
import os
import resource
import select
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import numpy as np
import pandas as pd

PEERS = ["balance", "svy", "ipfn", "weightipy"]
R_CONTENDERS = ["R survey rake", "R survey calibrate"]
TOL = 1e-10
STORAGE = "pandas str dtype, pyarrow storage"


# --------------------------------------------------------------------------
# data
# --------------------------------------------------------------------------

AUTUMN_ROWS = 108_660  # the shape the R package autumn reports (47 s, 20.8 GB)


def make_case(name, n_rows, directory):
    """Write the case's CSV and targets; return their paths."""
    if name == "autumn":
        n_rows = AUTUMN_ROWS
    rng = np.random.default_rng(12345)
    latent = rng.normal(size=(n_rows, 2))
    columns = {}
    if name == "five":
        spec = [("age", 5), ("sex", 2), ("region", 10), ("education", 4), ("income", 6)]
    elif name == "autumn":  # 17 variables of 2 to 12 levels
        spec = [(f"v{j:02d}", 2 + (j * 5) % 11) for j in range(17)]
    else:
        spec = [(f"q{j}", 10) for j in range(8)]
    for j, (column, n_levels) in enumerate(spec):
        loading = np.array([np.cos(j), np.sin(j)]) * 0.8
        score = latent @ loading + rng.normal(size=n_rows)
        cuts = np.quantile(score, np.linspace(0, 1, n_levels + 1)[1:-1])
        level = np.searchsorted(cuts, score)
        labels = np.array([f"{column}_{i:02d}" for i in range(n_levels)])
        columns[column] = labels[level]
    frame = pd.DataFrame(columns)
    frame["pw"] = np.round(rng.lognormal(0.0, 0.5, size=n_rows), 6)
    # Targets: the margins under a smooth reweighting (so they are reachable);
    # "tw" is that reweighting, the population weights of a target frame.
    frame["tw"] = frame["pw"].to_numpy() * np.exp(0.4 * latent[:, 0] - 0.2 * latent[:, 1])
    truth = frame["tw"].to_numpy()
    targets = {}
    for column, _ in spec:
        shares = pd.Series(truth).groupby(frame[column].to_numpy()).sum() / truth.sum()
        targets[column] = {str(k): float(v) for k, v in shares.items()}
    data_path = Path(directory) / f"{name}.csv"
    frame.to_csv(data_path, index=False)
    targets_path = Path(directory) / f"{name}.json"
    targets_path.write_text(json.dumps(targets))
    return data_path, targets_path


def load_case(data_path, targets_path):
    """The CSV with every balancing column as pyarrow-backed pandas strings."""
    targets = json.loads(Path(targets_path).read_text())
    strings = pd.StringDtype("pyarrow", na_value=np.nan)
    frame = pd.read_csv(data_path, dtype={column: strings for column in targets})
    return frame, targets


def max_margin_error(frame, weights, targets):
    weights = np.asarray(weights, dtype=np.float64)
    worst = 0.0
    for column, target in targets.items():
        shares = pd.Series(weights).groupby(frame[column].to_numpy()).sum() / weights.sum()
        for level, value in target.items():
            worst = max(worst, abs(shares.get(level, 0.0) - value))
    return worst


# --------------------------------------------------------------------------
# measurement
# --------------------------------------------------------------------------

def _rss_bytes():
    with open("/proc/self/statm") as handle:
        return int(handle.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")


def peak_memory(function):
    """Run ``function`` once; return (result, peak added RSS in bytes)."""
    start = _rss_bytes()
    peak = [start]
    done = threading.Event()

    def sample():
        while not done.is_set():
            peak[0] = max(peak[0], _rss_bytes())
            time.sleep(0.002)

    thread = threading.Thread(target=sample, daemon=True)
    thread.start()
    try:
        result = function()
    finally:
        done.set()
        thread.join()
    peak[0] = max(peak[0], _rss_bytes())
    return result, peak[0] - start


# --------------------------------------------------------------------------
# contenders: a frame prepared once, then (frame, targets) -> weights per row;
# each with the read limit of its input kind
# --------------------------------------------------------------------------

def limit_pandas(frame, targets):
    for column in targets:
        pd.factorize(frame[column])


def limit_categorical(frame, targets):
    for column in targets:
        frame[column].cat.codes.to_numpy()


def limit_polars(frame, targets):
    import polars as pl

    for column in targets:
        frame.get_column(column).cast(pl.Categorical).to_physical().to_numpy()


def as_categorical(frame, targets):
    return frame.astype({column: "category" for column in targets})


def as_polars(frame, targets):
    import polars as pl

    return pl.from_pandas(frame)


def run_skbalance(frame, targets, solver="auto"):
    import skbalance as skb

    bal = skb.MarginalBalancer(targets=targets, tol=TOL, max_iter=10000, solver=solver)
    bal.fit(frame, sample_weight=frame["pw"].to_numpy())
    return bal.weights_, f"{bal.n_iter_} steps ({bal.n_newton_iter_} Newton)"


def run_skbalance_steps(frame, targets):
    return run_skbalance(frame, targets, solver="steps")


def run_ipfn(frame, targets):
    # ipfn works on a table: aggregate the rows to cells (as its docs do),
    # fit, and map the fitted cell totals back onto the rows.
    from ipfn.ipfn import ipfn

    columns = list(targets)
    cells = frame.groupby(columns, observed=True, sort=True)
    table = cells["pw"].sum().rename("total").reset_index()
    start_total = table["total"].copy()
    total = table["total"].sum()
    aggregates = [
        pd.Series({k: v * total for k, v in targets[c].items()}).rename_axis(c)
        for c in columns
    ]
    fitted = ipfn(table, aggregates, [[c] for c in columns], weight_col="total",
                  convergence_rate=TOL, rate_tolerance=0.0, max_iteration=10000).iteration()
    fitted = fitted.set_index(columns)["total"]
    factor = (fitted / start_total.set_axis(fitted.index)).to_numpy()
    return frame["pw"].to_numpy() * factor[cells.ngroup().to_numpy()], ""


def run_balance(frame, targets):
    # the exact path: a target frame (here the rows with the population's
    # weights "tw", whose margins are the targets), not target_margins
    from balance.weighting_methods.rake import rake

    columns = list(targets)
    result = rake(frame[columns], frame["pw"], frame[columns], frame["tw"],
                  variables=columns, transformations=None, convergence_rate=TOL,
                  rate_tolerance=0.0, max_iteration=10000)
    return result["weight"].to_numpy(), ""


def run_weightipy(frame, targets):
    # weightipy takes no base weights: it rakes from equal weights.
    import weightipy as wp

    scheme = wp.scheme_from_dict(
        {c: {k: 100 * v for k, v in t.items()} for c, t in targets.items()},
        rim_params={"convcrit": 1e-12, "max_iterations": 10000},
    )
    return wp.weight(frame[list(targets)], scheme).to_numpy(), ""


def run_svy(frame, targets):
    import polars as pl
    import svy

    sample = svy.Sample(pl.from_pandas(frame[list(targets) + ["pw"]]),
                        svy.Design(wgt="pw"))
    raked = sample.weighting.rake(shares=targets, tol=TOL, max_iter=10000)
    return raked.data["rk_wgt"].to_numpy(), "pandas -> polars conversion included"


# name: (prepare the input once, read limit of that input, method)
CONTENDERS = {
    "skbalance": (None, limit_pandas, run_skbalance),
    "skbalance solver='steps'": (None, limit_pandas, run_skbalance_steps),
    "skbalance (polars frame)": (as_polars, limit_polars, run_skbalance),
    "skbalance (pandas categorical)": (as_categorical, limit_categorical, run_skbalance),
    "ipfn": (None, limit_pandas, run_ipfn),
    "balance": (None, limit_pandas, run_balance),
    "weightipy": (None, limit_pandas, run_weightipy),
    "svy": (None, limit_pandas, run_svy),
}
NOTES = {
    "ipfn": "rows grouped to cells first (pandas), then ipfn's DataFrame mode",
    "weightipy": "no base-weight support: rakes from equal weights",
    "balance": "exact path: target frame with population weights",
}


class Contender:
    """One contender in this process: its input, read limit and method."""

    def __init__(self, name, frame, targets):
        prepare, self.limit, self.method = CONTENDERS[name]
        self.name, self.targets, self.reference = name, targets, frame
        self.frame = frame if prepare is None else prepare(frame, targets)

    def run_once(self):
        """One round: (seconds, read-limit seconds, error, peak MB, note)."""
        start = time.perf_counter()
        self.limit(self.frame, self.targets)
        limit = time.perf_counter() - start
        (weights, note), peak = peak_memory(lambda: self._timed())
        return {"seconds": self._seconds, "read_limit": limit,
                "max_error": max_margin_error(self.reference, weights, self.targets),
                "peak_mb": peak / 2**20, "note": note or NOTES.get(self.name, "")}

    def _timed(self):
        start = time.perf_counter()
        result = self.method(self.frame, self.targets)
        self._seconds = time.perf_counter() - start
        return result


# --------------------------------------------------------------------------
# peers in their own environments: long-lived workers, one run per request
# --------------------------------------------------------------------------

def worker(args):
    frame, targets = load_case(args.data, args.targets)
    try:
        contender = Contender(args.worker, frame, targets)
    except Exception as exc:  # report, do not crash the whole benchmark
        print("RESULT " + json.dumps({"error": f"{type(exc).__name__}: {exc}"[:200]}),
              flush=True)
        return
    print("READY", flush=True)
    for line in sys.stdin:
        if line.strip() != "run":
            break
        try:
            row = contender.run_once()
        except Exception as exc:
            row = {"error": f"{type(exc).__name__}: {exc}"[:200]}
        print("RESULT " + json.dumps(row), flush=True)


R_RAKE = r"""
suppressMessages(library(survey))
args <- commandArgs(TRUE)  # data, long targets, weights out, "rake" or "calibrate", tol
data <- read.csv(args[1], stringsAsFactors = TRUE)
long <- read.csv(args[2], stringsAsFactors = FALSE, colClasses = "character")
columns <- unique(long$column)
total <- sum(data$pw)
design <- svydesign(ids = ~1, weights = ~pw, data = data)
tol <- as.numeric(args[5])
gc(reset = TRUE)
if (args[4] == "rake") {
  margins <- lapply(columns, function(c) as.formula(paste0("~", c)))
  population <- lapply(columns, function(c) {
    rows <- long[long$column == c, ]
    frame <- data.frame(factor(rows$level, levels = levels(data[[c]])),
                        as.numeric(rows$value) * total)
    names(frame) <- c(c, "Freq")
    frame
  })
  seconds <- system.time(fit <- rake(design, margins, population,
                                     control = list(maxit = 1000, epsilon = tol * total)))
} else {
  formula <- as.formula(paste("~", paste(columns, collapse = " + ")))
  counts <- function(c) {
    rows <- long[long$column == c, ]
    setNames(as.numeric(rows$value) * total, paste0(c, rows$level))
  }
  wanted <- colnames(model.matrix(formula, data))
  all <- c(`(Intercept)` = total, unlist(lapply(columns, counts)))
  seconds <- system.time(fit <- calibrate(design, formula, all[wanted], calfun = "raking",
                                          maxit = 1000, epsilon = tol))
}
peak <- sum(gc()[, 6])  # MB at most in use since the reset (Ncells and Vcells)
write.csv(data.frame(weight = weights(fit)), args[3], row.names = FALSE)
cat(sprintf("RESULT %.6f %.1f
", seconds[["elapsed"]], peak))
"""


class RSurvey:
    """R survey's ``rake`` or ``calibrate(calfun="raking")``, one Rscript per round
    (the CSV read and the design built outside the timed call)."""

    def __init__(self, name, rscript, data_path, targets_path, frame, targets, timeout):
        self.name, self.rscript, self.timeout = name, rscript, timeout
        self.function = "calibrate" if "calibrate" in name else "rake"
        self.data_path, self.frame, self.targets = data_path, frame, targets
        self.folder = Path(data_path).parent
        self.script = self.folder / "rake.R"
        self.script.write_text(R_RAKE)
        self.long = self.folder / f"{Path(targets_path).stem}_long.csv"
        pd.DataFrame([(c, level, value) for c, shares in targets.items()
                      for level, value in shares.items()],
                     columns=["column", "level", "value"]).to_csv(self.long, index=False)
        self.error = None if subprocess.run([rscript, "-e", "library(survey)"],
                                            capture_output=True).returncode == 0 else (
            "R survey not installed (apt-get install r-cran-survey)")

    def run_once(self):
        out = self.folder / "r_weights.csv"
        try:
            done = subprocess.run([self.rscript, str(self.script), str(self.data_path),
                                   str(self.long), str(out), self.function, str(TOL)],
                                  capture_output=True, text=True, timeout=self.timeout)
        except subprocess.TimeoutExpired:
            return {"error": f"timed out after {self.timeout} s"}
        lines = [line for line in done.stdout.splitlines() if line.startswith("RESULT ")]
        if done.returncode != 0 or not lines:
            errors = [line for line in done.stderr.splitlines() if line.startswith("Error")]
            detail = done.stderr.strip().splitlines()
            return {"error": " ".join((errors or detail or ["failed"])[:1] + detail[1:2])[:200]}
        seconds, peak = map(float, lines[-1].split()[1:])
        weights = pd.read_csv(out)["weight"].to_numpy()
        return {"seconds": seconds, "read_limit": limit_pandas_seconds(self.frame, self.targets),
                "max_error": max_margin_error(self.frame, weights, self.targets),
                "peak_mb": peak, "note": f"R survey's {self.function}; peak: R's gc max used"}


def limit_pandas_seconds(frame, targets):
    start = time.perf_counter()
    limit_pandas(frame, targets)
    return time.perf_counter() - start


class Peer:
    """A worker process of another environment, capped in memory."""

    def __init__(self, name, python, data_path, targets_path, timeout, memory_gb):
        self.name, self.timeout = name, timeout
        cap = int(memory_gb * 2**30)

        def limit_memory():
            resource.setrlimit(resource.RLIMIT_AS, (cap, cap))

        self.process = subprocess.Popen(
            [python, __file__, "--worker", name, "--data", str(data_path),
             "--targets", str(targets_path)],
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
            text=True, preexec_fn=limit_memory)
        self.error = None
        ready = self._line(timeout)
        if ready != "READY":
            self.error = self._failure(ready)

    def _line(self, timeout):
        deadline = time.monotonic() + timeout
        while True:
            left = deadline - time.monotonic()
            if left <= 0 or not select.select([self.process.stdout], [], [], left)[0]:
                return None
            line = self.process.stdout.readline()
            if not line:
                return ""
            if line.startswith(("READY", "RESULT ")):
                return line.strip()

    def _failure(self, line):
        if line is None:
            self.stop()
            return f"did not finish in {self.timeout} s"
        if line.startswith("RESULT "):
            return json.loads(line[len("RESULT "):]).get("error", "failed")
        self.process.wait()
        if self.process.returncode < 0:
            return f"killed by signal {-self.process.returncode}"
        errors = [ln for ln in self.process.stderr.read().splitlines()
                  if "Error" in ln or "error" in ln]
        return (errors or ["failed (out of memory?)"])[-1][:200]

    def run_once(self):
        self.process.stdin.write("run\n")
        self.process.stdin.flush()
        line = self._line(self.timeout)
        if line is None or not line.startswith("RESULT "):
            self.error = self._failure(line)
            return {"error": self.error}
        row = json.loads(line[len("RESULT "):])
        if "error" in row:
            self.error = row["error"]
        return row

    def stop(self):
        if self.process.poll() is None:
            self.process.kill()
            self.process.wait()


def importable(name):
    try:
        __import__(name)
        return True
    except ImportError:
        return False


def summarise(name, rounds):
    """Medians over the rounds a contender completed."""
    done = [r for r in rounds if "error" not in r]
    errors = [r["error"] for r in rounds if "error" in r]
    if not done:
        return {"method": name, "error": errors[0] if errors else "not run"}
    return {"method": name, "rounds": len(done),
            "seconds": float(np.median([r["seconds"] for r in done])),
            "read_limit": float(np.median([r["read_limit"] for r in done])),
            "ratio": float(np.median([r["seconds"] / r["read_limit"] for r in done])),
            "max_error": max(r["max_error"] for r in done),
            "peak_mb": max(r["peak_mb"] for r in done), "note": done[-1]["note"],
            "failed_rounds": errors}


def format_table(case, rows, n_rows, fastest):
    lines = [
        f"\n### {case}: {n_rows:,} rows\n",
        "| method | median s | x its read limit | x skbalance | max margin error "
        "| peak memory (MB) | note |",
        "|---|---:|---:|---:|---:|---:|---|",
    ]
    for row in rows:
        if "error" in row:
            lines.append(f"| {row['method']} | - | - | - | - | - | {row['error']} |")
            continue
        note = row["note"] + (f"; {len(row['failed_rounds'])} round(s) failed"
                              if row["failed_rounds"] else "")
        lines.append(
            f"| {row['method']} | {row['seconds']:.3f} | {row['ratio']:.2f} | "
            f"{row['seconds'] / fastest:.1f} | {row['max_error']:.1e} | "
            f"{row['peak_mb']:.0f} | {note} |")
    return "\n".join(lines)


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--cases", default="five,eight")
    parser.add_argument("--repeat", type=int, default=5, help="interleaved rounds")
    parser.add_argument("--peer", action="append", default=[],
                        help="NAME=PYTHON: run a peer in another environment")
    parser.add_argument("--timeout", type=int, default=300, help="seconds per peer run")
    parser.add_argument("--memory-gb", type=float, default=12.0, help="memory cap per peer")
    parser.add_argument("--only", help="comma-separated contenders to run (default: all)")
    parser.add_argument("--rscript", default="Rscript",
                        help="Rscript for R survey's rake and calibrate")
    parser.add_argument("--out", help="also write the markdown table here")
    parser.add_argument("--worker", help=argparse.SUPPRESS)
    parser.add_argument("--data", help=argparse.SUPPRESS)
    parser.add_argument("--targets", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker:
        worker(args)
        return

    external = dict(item.split("=", 1) for item in args.peer)
    wanted = args.only.split(",") if args.only else list(CONTENDERS) + R_CONTENDERS
    report = [f"Raking benchmark ({args.rows:,} rows, tol {TOL:g}, median of "
              f"{args.repeat} interleaved rounds; strings: {STORAGE} in every process)"]
    with tempfile.TemporaryDirectory() as directory:
        for case in args.cases.split(","):
            data_path, targets_path = make_case(case, args.rows, directory)
            frame, targets = load_case(data_path, targets_path)
            contenders, unavailable = {}, []
            for name in wanted:
                if name.startswith("R survey"):
                    r_peer = RSurvey(name, args.rscript, data_path, targets_path, frame,
                                     targets, args.timeout)
                    if r_peer.error:
                        unavailable.append({"method": name, "error": r_peer.error})
                    else:
                        contenders[name] = r_peer
                elif name in external:
                    peer = Peer(name, external[name], data_path, targets_path,
                                args.timeout, args.memory_gb)
                    if peer.error:
                        unavailable.append({"method": name, "error": peer.error})
                    else:
                        contenders[name] = peer
                elif name.startswith("skbalance") or importable(name):
                    contenders[name] = Contender(name, frame, targets)
                else:
                    unavailable.append({"method": name, "error":
                                        f"not installed (pass --peer {name}=PYTHON)"})
            rounds = {name: [] for name in contenders}
            for name in contenders:  # warm-up (imports, caches), not timed
                row = contenders[name].run_once()
                if "error" in row:
                    rounds[name].append(row)
            for index in range(args.repeat):
                names = list(contenders)
                names = names[index % len(names):] + names[:index % len(names)]
                for name in names:
                    if any("error" in r for r in rounds[name]):
                        continue  # failed (timed out, out of memory) once: not again
                    row = contenders[name].run_once()
                    rounds[name].append(row)
                    print(f"[{case} round {index + 1}] {name}: "
                          f"{row.get('seconds', row.get('error'))}", file=sys.stderr)
            for contender in contenders.values():
                if isinstance(contender, Peer):
                    contender.stop()
            rows = [summarise(name, rounds[name]) for name in contenders] + unavailable
            fastest = rows[0]["seconds"] if "seconds" in rows[0] else 1.0
            n_cells = frame.groupby(list(targets), observed=True).ngroups
            report.append(format_table(f"{case} ({len(targets)} columns, {n_cells:,} "
                                       "observed cells)", rows, len(frame), fastest))
    text = "\n".join(report)
    print(text)
    if args.out:
        Path(args.out).write_text(text + "\n")


if __name__ == "__main__":
    main()
