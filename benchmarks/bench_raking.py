"""Raking benchmark: skbalance against peer libraries on the same data.

Two cases, each written once to CSV and read back with pandas so that string
columns are what a reader makes of them:

* ``five``: 1,000,000 rows x 5 correlated string columns with 5, 2, 10, 4
  and 6 levels, non-uniform base weights, tol 1e-10.
* ``eight``: 1,000,000 rows x 8 correlated columns of 10 levels each
  (10**8 possible cells, a few hundred thousand observed).

Every method goes from the DataFrame (and the base-weight column) to one
weight per row. The "read limit" is one ``pandas.factorize`` pass over the
same balancing columns in the same process: any raking method has to look
at every value once. Peers run in the same process when importable, else in
their own environment (``--peer NAME=PYTHON``), which reads the same CSV and
measures its own read limit, so that every ratio is taken within one process.

Usage::

    python benchmarks/bench_raking.py                       # in-process peers only
    python benchmarks/bench_raking.py --peer balance=/path/to/venv/bin/python \\
        --peer svy=/other/venv/bin/python --out results.md

Columns of the table: best wall time of ``--repeat`` runs, the ratio to the
read limit, the largest absolute marginal error of the result in
proportions, and the peak memory the call added (resident set size sampled
every 2 ms, so native allocations count too).
"""

import argparse
import json
import os
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import numpy as np
import pandas as pd

PEERS = ["ipfn", "balance", "weightipy", "svy"]
TOL = 1e-10


# --------------------------------------------------------------------------
# data
# --------------------------------------------------------------------------

def make_case(name, n_rows, directory):
    """Write the case's CSV and targets; return their paths."""
    rng = np.random.default_rng(12345)
    latent = rng.normal(size=(n_rows, 2))
    columns = {}
    if name == "five":
        spec = [("age", 5), ("sex", 2), ("region", 10), ("education", 4), ("income", 6)]
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
    # Targets: the margins under a smooth reweighting (so they are reachable).
    truth = frame["pw"].to_numpy() * np.exp(0.4 * latent[:, 0] - 0.2 * latent[:, 1])
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
    targets = json.loads(Path(targets_path).read_text())
    frame = pd.read_csv(data_path)
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


def best_time(function, repeat):
    times, result = [], None
    for _ in range(repeat):
        start = time.perf_counter()
        result = function()
        times.append(time.perf_counter() - start)
    return min(times), result


# --------------------------------------------------------------------------
# methods: DataFrame + targets + base-weight column -> weights per row
# --------------------------------------------------------------------------

def read_limit(frame, targets):
    for column in targets:
        pd.factorize(frame[column])


def run_skbalance(frame, targets):
    import skbalance as skb

    bal = skb.MarginalBalancer(targets=targets, tol=TOL, max_iter=10000)
    return bal.fit(frame, sample_weight=frame["pw"]).weights_


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
    return frame["pw"].to_numpy() * factor[cells.ngroup().to_numpy()]


def run_balance(frame, targets):
    from balance.weighting_methods.rake import rake

    columns = list(targets)
    result = rake(frame[columns], frame["pw"], None, None, variables=columns,
                  transformations=None, target_margins=targets,
                  target_margins_max_length=1_000_000,
                  convergence_rate=TOL, rate_tolerance=0.0, max_iteration=10000)
    return result["weight"].to_numpy()


def run_weightipy(frame, targets):
    # weightipy takes no base weights: it rakes from equal weights.
    import weightipy as wp

    scheme = wp.scheme_from_dict(
        {c: {k: 100 * v for k, v in t.items()} for c, t in targets.items()},
        rim_params={"convcrit": 1e-12, "max_iterations": 10000},
    )
    return wp.weight(frame[list(targets)], scheme).to_numpy()


def run_svy(frame, targets):
    import polars as pl
    import svy

    sample = svy.Sample(pl.from_pandas(frame[list(targets) + ["pw"]]),
                        svy.Design(wgt="pw"))
    raked = sample.weighting.rake(shares=targets, tol=TOL, max_iter=10000)
    return raked.data["rk_wgt"].to_numpy()


METHODS = {"skbalance": run_skbalance, "ipfn": run_ipfn, "balance": run_balance,
           "weightipy": run_weightipy, "svy": run_svy}
NOTES = {
    "ipfn": "rows grouped to cells first (pandas), then ipfn's DataFrame mode",
    "weightipy": "no base-weight support: rakes from equal weights",
    "svy": "pandas -> polars conversion included",
    "balance": "targets realised as a 10**6-row synthetic frame (its margin API)",
}


def measure(name, frame, targets, repeat):
    """Time one method and the read limit in this process."""
    limit, _ = best_time(lambda: read_limit(frame, targets), repeat)
    seconds, weights = best_time(lambda: METHODS[name](frame, targets), repeat)
    _, peak = peak_memory(lambda: METHODS[name](frame, targets))
    return {
        "method": name,
        "seconds": seconds,
        "read_limit": limit,
        "ratio": seconds / limit,
        "max_error": max_margin_error(frame, weights, targets),
        "peak_mb": peak / 2**20,
        "note": NOTES.get(name, ""),
    }


def worker(args):
    frame, targets = load_case(args.data, args.targets)
    try:
        row = measure(args.worker, frame, targets, args.repeat)
    except Exception as exc:  # report, do not crash the whole benchmark
        row = {"method": args.worker, "error": f"{type(exc).__name__}: {exc}"[:200]}
    print("RESULT " + json.dumps(row))


def run_peer(name, python, data_path, targets_path, repeat, timeout):
    command = [python, __file__, "--worker", name, "--data", str(data_path),
               "--targets", str(targets_path), "--repeat", str(repeat)]
    try:
        done = subprocess.run(command, capture_output=True, text=True, timeout=timeout)
    except subprocess.TimeoutExpired:
        return {"method": name, "error": f"did not finish in {timeout} s"}
    for line in done.stdout.splitlines():
        if line.startswith("RESULT "):
            return json.loads(line[len("RESULT "):])
    if done.returncode < 0:
        return {"method": name, "error": f"killed by signal {-done.returncode} "
                                         "(out of memory?)"}
    errors = [ln for ln in done.stderr.splitlines() if "Error" in ln or "error" in ln]
    return {"method": name, "error": (errors or ["failed"])[-1][:200]}


def importable(name):
    try:
        __import__(name)
        return True
    except ImportError:
        return False


def format_table(case, rows, n_rows):
    lines = [
        f"\n### {case}: {n_rows:,} rows\n",
        "| method | seconds | x read limit | max margin error | peak memory (MB) | note |",
        "|---|---:|---:|---:|---:|---|",
    ]
    for row in rows:
        if "error" in row:
            lines.append(f"| {row['method']} | - | - | - | - | {row['error']} |")
            continue
        lines.append(
            f"| {row['method']} | {row['seconds']:.3f} | {row['ratio']:.2f} | "
            f"{row['max_error']:.1e} | {row['peak_mb']:.0f} | {row['note']} |"
        )
    reads = [r["read_limit"] for r in rows if "read_limit" in r]
    lines.append(f"\nread limit (pandas.factorize over the balancing columns): "
                 f"{min(reads):.3f} s in the fastest process")
    return "\n".join(lines)


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--cases", default="five,eight")
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--peer", action="append", default=[],
                        help="NAME=PYTHON: run a peer in another environment")
    parser.add_argument("--timeout", type=int, default=900, help="seconds per peer run")
    parser.add_argument("--only", help="comma-separated peers to run (default: all)")
    parser.add_argument("--out", help="also write the markdown table here")
    parser.add_argument("--worker", help=argparse.SUPPRESS)
    parser.add_argument("--data", help=argparse.SUPPRESS)
    parser.add_argument("--targets", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker:
        worker(args)
        return

    external = dict(item.split("=", 1) for item in args.peer)
    report = [f"Raking benchmark ({args.rows:,} rows, tol {TOL:g}, best of {args.repeat})"]
    with tempfile.TemporaryDirectory() as directory:
        for case in args.cases.split(","):
            data_path, targets_path = make_case(case, args.rows, directory)
            frame, targets = load_case(data_path, targets_path)
            rows = [measure("skbalance", frame, targets, args.repeat)]
            print(f"[{case}] skbalance: {rows[-1]['seconds']:.3f} s", file=sys.stderr)
            if "skbalance" in external:  # the same code in another environment
                row = run_peer("skbalance", external["skbalance"], data_path,
                               targets_path, args.repeat, args.timeout)
                row["method"] = "skbalance (--peer env)"
                rows.append(row)
            for peer in PEERS:
                if args.only and peer not in args.only.split(","):
                    continue
                if peer in external:
                    row = run_peer(peer, external[peer], data_path, targets_path,
                                   args.repeat, args.timeout)
                elif importable(peer):
                    row = measure(peer, frame, targets, args.repeat)
                else:
                    row = {"method": peer,
                           "error": f"not installed (pass --peer {peer}=PYTHON)"}
                print(f"[{case}] {peer}: {row.get('seconds', row.get('error'))}",
                      file=sys.stderr)
                rows.append(row)
            n_cells = frame.groupby(list(targets), observed=True).ngroups
            report.append(format_table(f"{case} ({len(targets)} columns, "
                                       f"{n_cells:,} observed cells)", rows, len(frame)))
    text = "\n".join(report)
    print(text)
    if args.out:
        Path(args.out).write_text(text + "\n")


if __name__ == "__main__":
    main()
