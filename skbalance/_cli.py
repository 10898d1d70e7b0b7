"""The ``skbalance`` command line: ``skbalance demo`` and ``skbalance rake``."""

import argparse
import json
import sys
import warnings

import numpy as np
import pandas as pd
from sklearn.exceptions import ConvergenceWarning

from . import __version__
from ._balancer import MarginalBalancer


class CommandError(Exception):
    """A problem with the user's input, reported in one line."""


def _format_diagnostics(diagnostics):
    table = diagnostics.copy()
    for column in ["sample_share", "base_share", "weighted_share", "target_share"]:
        table[column] = table[column].map(lambda v: f"{v:.4f}")
    table["residual"] = table["residual"].map(lambda v: f"{v:+.1e}")
    table["factor"] = table["factor"].map(lambda v: f"{v:.4f}")
    return table.to_string(index=False)


def _summary(balancer):
    status = "converged" if balancer.converged_ else "NOT converged"
    return (
        f"{status} after {balancer.n_iter_} single-margin steps "
        f"(largest marginal error {balancer.marginal_error_[-1].max():.2e}); "
        f"{balancer.n_cells_} distinct cells\n"
        f"weights: total {balancer.weights_.sum():.6g}, "
        f"min {balancer.weights_.min():.4g}, max {balancer.weights_.max():.4g}; "
        f"Kish design effect {balancer.design_effect_:.4f}, "
        f"effective sample size {balancer.effective_sample_size_:.1f}"
    )


def run_demo(out=None):
    """Rake the api cluster sample to population counts and print the report."""
    from .datasets import api_population_targets, load_api

    out = sys.stdout if out is None else out
    sample = load_api("clus1")
    population = load_api("pop")
    targets = api_population_targets(["stype", "sch.wide"])
    balancer = MarginalBalancer(targets=targets, tol=1e-10)
    balancer.fit(sample, sample_weight=sample["pw"])

    outcome = sample["api00"].to_numpy()
    means = {
        "unweighted": outcome.mean(),
        "design-weighted (pw)": np.average(outcome, weights=sample["pw"]),
        "raked (pw x factors)": np.average(outcome, weights=balancer.weights_),
        "population (truth)": population["api00"].mean(),
    }
    print(
        "skbalance demo: the api one-stage cluster sample (183 California schools, "
        "base weights pw)\nraked to the population counts of school type (stype) and "
        "'met school-wide growth target' (sch.wide).\n",
        file=out,
    )
    print(_format_diagnostics(balancer.diagnostics_), file=out)
    print("\n" + _summary(balancer) + "\n", file=out)
    print("mean of api00 (academic performance index, 2000):", file=out)
    for name, value in means.items():
        print(f"  {name:<22} {value:8.2f}", file=out)
    return balancer


def _read_targets(path):
    """Targets from JSON: {column: {level: value}} or a list of margins.

    The list form allows joint margins::

        [{"columns": ["age", "sex"], "targets": [[["18-34", "F"], 0.16], ...]},
         {"columns": ["region"], "targets": [["north", 0.4], ...]}]

    Levels are read as strings, as the data columns are.
    """
    try:
        with open(path, encoding="utf-8") as handle:
            spec = json.load(handle)
    except FileNotFoundError as exc:
        raise CommandError(f"targets file not found: {path}") from exc
    except json.JSONDecodeError as exc:
        raise CommandError(f"targets file {path} is not valid JSON: {exc}") from exc
    if isinstance(spec, dict):
        targets = {}
        for column, levels in spec.items():
            if not isinstance(levels, dict):
                raise CommandError(
                    f"targets of column {column!r} must be an object level -> value."
                )
            targets[column] = {str(level): value for level, value in levels.items()}
        return targets
    if isinstance(spec, list):
        targets = {}
        for margin in spec:
            try:
                columns = [str(c) for c in margin["columns"]]
                pairs = margin["targets"]
            except (TypeError, KeyError) as exc:
                raise CommandError(
                    "each margin in a targets list needs 'columns' and 'targets'."
                ) from exc
            if len(columns) == 1:
                targets[columns[0]] = {str(level): value for level, value in pairs}
            else:
                targets[tuple(columns)] = {
                    tuple(str(v) for v in level): value for level, value in pairs
                }
        return targets
    raise CommandError("targets JSON must be an object or a list of margins.")


def run_rake(args, out=None):
    """Rake a CSV file to the targets of a JSON file and write the weights."""
    out = sys.stdout if out is None else out
    targets = _read_targets(args.targets)
    columns = list(dict.fromkeys(
        c for key in targets for c in (key if isinstance(key, tuple) else (key,))
    ))
    try:
        data = pd.read_csv(
            args.data, dtype={c: str for c in columns},
            keep_default_na=not args.missing_as_level,
        )
    except FileNotFoundError as exc:
        raise CommandError(f"data file not found: {args.data}") from exc
    except (pd.errors.ParserError, pd.errors.EmptyDataError, UnicodeDecodeError) as exc:
        raise CommandError(f"could not read {args.data} as CSV: {exc}") from exc
    sample_weight = None
    if args.weight_column is not None:
        if args.weight_column not in data.columns:
            raise CommandError(
                f"base-weight column {args.weight_column!r} is not in {args.data}."
            )
        sample_weight = pd.to_numeric(data[args.weight_column], errors="coerce")
    balancer = MarginalBalancer(
        targets=targets, max_iter=args.max_iter, tol=args.tol,
        bounds=tuple(args.bounds) if args.bounds else None,
    )
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always", ConvergenceWarning)
        balancer.fit(data, sample_weight=sample_weight)
    for warning in caught:
        print(f"skbalance: warning: {warning.message}", file=sys.stderr)

    result = pd.DataFrame({"weight": balancer.weights_})
    if args.id_column is not None:
        if args.id_column not in data.columns:
            raise CommandError(f"id column {args.id_column!r} is not in {args.data}.")
        result.insert(0, args.id_column, data[args.id_column].to_numpy())
    result.to_csv(args.out, index=False, float_format="%.17g")
    print(_format_diagnostics(balancer.diagnostics_), file=out)
    print("\n" + _summary(balancer), file=out)
    print(f"wrote {len(result)} weights to {args.out}", file=out)
    return 0 if balancer.converged_ or not args.strict else 3


def _parser():
    parser = argparse.ArgumentParser(
        prog="skbalance", description="Data balancing (raking) from the command line."
    )
    parser.add_argument("--version", action="version", version=f"skbalance {__version__}")
    commands = parser.add_subparsers(dest="command", required=True)
    commands.add_parser("demo", help="rake a bundled real data set and print the report")
    rake = commands.add_parser("rake", help="rake a CSV file to target margins")
    rake.add_argument("data", help="CSV file, one row per unit")
    rake.add_argument("--targets", required=True, help="JSON file of target margins")
    rake.add_argument("--out", required=True, help="CSV file to write the weights to")
    rake.add_argument("--weight-column", help="column of base (design) weights")
    rake.add_argument("--id-column", help="column copied next to the weights")
    rake.add_argument("--max-iter", type=int, default=1000, help="single-margin steps")
    rake.add_argument("--tol", type=float, default=1e-8, help="largest marginal error")
    rake.add_argument(
        "--bounds", type=float, nargs=2, metavar=("LOW", "HIGH"),
        help="limits on weight / rescaled base weight",
    )
    rake.add_argument(
        "--missing-as-level", action="store_true",
        help="read cells literally: an empty cell is the level \"\" (give it a target "
        "under the key \"\") instead of a missing value",
    )
    rake.add_argument(
        "--strict", action="store_true", help="exit with status 3 when not converged"
    )
    return parser


def main(argv=None):
    """Entry point of ``skbalance`` and ``python -m skbalance``."""
    args = _parser().parse_args(argv)
    try:
        if args.command == "demo":
            run_demo()
            return 0
        return run_rake(args)
    except (CommandError, ValueError, KeyError, TypeError) as exc:
        message = exc.args[0] if isinstance(exc, KeyError) and exc.args else exc
        print(f"skbalance: error: {message}", file=sys.stderr)
        return 2
