"""The command line's cost next to its floor (issue 24, item 2).

``skbalance rake`` on a CSV of ``--rows`` rows (an id, three categorical
columns of 5, 2 and 10 levels, a base weight), writing the weights with the
ids, against its floor: a process that imports skbalance, reads the same
CSV with ``pandas.read_csv`` and fits the same raking (no writing). Both run
as fresh processes (Python's start and the imports count on both sides), in
alternating pairs; medians of wall and CPU time (of the child processes)
and of the per-pair ratios. Goal: the command within 1.5x its floor.

Usage::

    OPENBLAS_NUM_THREADS=1 python benchmarks/bench_cli.py [--rows 1000000] [--out .parquet]
"""

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd

FLOOR = """
import json, sys
import pandas as pd
import skbalance as skb
data, targets = sys.argv[1], json.load(open(sys.argv[2]))
frame = pd.read_csv(data)
skb.MarginalBalancer(targets=targets).fit(frame[list(targets)].astype(str),
                                          sample_weight=frame["w"])
"""


def child_times(command):
    """Wall seconds and CPU seconds of a child process."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    wall = time.perf_counter()
    subprocess.run(command, check=True, stdout=subprocess.DEVNULL)
    wall = time.perf_counter() - wall
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    return wall, (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--pairs", type=int, default=4)
    parser.add_argument("--out", default=".csv", choices=[".csv", ".parquet"],
                        help="the output's format, by its suffix")
    args = parser.parse_args()
    rng = np.random.default_rng(0)
    n = args.rows
    frame = pd.DataFrame({"id": np.arange(n), "a": rng.choice([f"a{k}" for k in range(5)], n),
                          "b": rng.choice(["b0", "b1"], n),
                          "c": rng.choice([f"c{k}" for k in range(10)], n),
                          "w": rng.uniform(1, 3, n)})
    targets = {c: (frame[c].value_counts(normalize=True) * 0.9 + 0.1 / frame[c].nunique())
               .to_dict() for c in "abc"}
    with tempfile.TemporaryDirectory() as folder:
        folder = Path(folder)
        frame.to_csv(folder / "data.csv", index=False)
        (folder / "targets.json").write_text(json.dumps(targets))
        command = [sys.executable, "-m", "skbalance", "rake", str(folder / "data.csv"),
                   "--targets", str(folder / "targets.json"), "--weight-column", "w",
                   "--id-column", "id"]
        floor = [sys.executable, "-c", FLOOR, str(folder / "data.csv"),
                 str(folder / "targets.json")]
        runs = {"cli": [], "floor": []}
        for pair in range(args.pairs):
            order = ["cli", "floor"] if pair % 2 == 0 else ["floor", "cli"]
            for name in order:
                out = folder / f"weights{pair}{args.out}"
                runs[name].append(child_times(command + ["--out", str(out)] if name == "cli"
                                              else floor))
    cli, floor_runs = np.asarray(runs["cli"]), np.asarray(runs["floor"])
    ratios = cli[:, 0] / floor_runs[:, 0]
    print(f"{n} rows, OPENBLAS_NUM_THREADS={os.environ.get('OPENBLAS_NUM_THREADS', 'unset')}, "
          f"load {os.getloadavg()[0]:.2f}, {args.pairs} alternating pairs (medians)")
    for label, values in ((f"skbalance rake --out weights{args.out}", cli),
                          ("floor: import, read_csv, fit", floor_runs)):
        wall, cpu = np.median(values, axis=0)
        print(f"{label:40s} {wall:6.2f} s wall {cpu:6.2f} s CPU")
    print(f"per-pair ratio (wall): median {np.median(ratios):.2f}x, range "
          f"{ratios.min():.2f}-{ratios.max():.2f}x")


if __name__ == "__main__":
    main()
