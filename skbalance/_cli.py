"""The ``skbalance`` command line: ``demo``, ``rake`` and ``estimate``."""

import argparse
import json
import os
import sys
import tempfile
import warnings

import pandas as pd
from sklearn.exceptions import ConvergenceWarning

from ._balancer import MarginalBalancer
from ._design import SurveyDesign
from ._functional import BalancedFunctionalEstimator
from ._targets import Mean, Total
from ._version import __version__

# pandas' default missing-value strings, for the columns that are not levels
_DEFAULT_NA = ("", "#N/A", "#N/A N/A", "#NA", "-1.#IND", "-1.#QNAN", "-NaN", "-nan", "1.#IND",
               "1.#QNAN", "<NA>", "N/A", "NA", "NULL", "NaN", "None", "n/a", "nan", "null")


class CommandError(Exception):
    """A problem with the user's input, reported in one line."""


def _format_diagnostics(diagnostics):
    table = diagnostics.copy()
    for column in ["sample_share", "base_share", "weighted_share", "target_share"]:
        table[column] = table[column].map(lambda v: f"{v:.4f}")
    table["residual"] = table["residual"].map(lambda v: f"{v:+.1e}")
    table["factor"] = table["factor"].map(  # fixed point where it is readable
        lambda v: f"{v:.4f}" if v == 0 or 1e-4 <= abs(v) < 1e6 else f"{v:.3e}")
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
    design = SurveyDesign(clusters="dnum", fpc="fpc")
    estimator = BalancedFunctionalEstimator(balancer, design=design)
    estimator.fit(sample, sample["api00"], sample_weight=sample["pw"])
    balancer = estimator.balancer_
    design_weighted = BalancedFunctionalEstimator(balancer, design=design,
                                                  baseline="empirical")
    design_weighted.fit(sample, sample["api00"], sample_weight=sample["pw"])
    iid = BalancedFunctionalEstimator(balancer).fit(sample, sample["api00"],
                                                    sample_weight=sample["pw"])
    raked = estimator.results_.iloc[0]
    truth = population["api00"].mean()
    print(
        "skbalance demo: the api one-stage cluster sample (15 California school "
        "districts, all\ntheir 183 schools; base weights pw) raked to the population "
        "counts of school type\n(stype) and 'met school-wide growth target' (sch.wide).\n",
        file=out,
    )
    print(_format_diagnostics(balancer.diagnostics_), file=out)
    print("\n" + _summary(balancer) + "\n", file=out)
    print("mean of api00 (academic performance index, 2000), standard errors for the "
          "cluster design:", file=out)
    print(f"  {'unweighted':<22} {sample['api00'].mean():8.2f}", file=out)
    print(f"  {'design-weighted (pw)':<22} {design_weighted.estimate_:8.2f}   SE "
          f"{design_weighted.std_error_:6.2f}", file=out)
    print(f"  {'raked (pw x factors)':<22} {raked.estimate:8.2f}   SE {raked.std_error:6.2f}"
          f"   95% CI [{raked.ci_low:.2f}, {raked.ci_high:.2f}] (t, {raked.df} df)",
          file=out)
    print(f"  {'population (truth)':<22} {truth:8.2f}", file=out)
    covers = raked.ci_low <= truth <= raked.ci_high
    iid_low, iid_high = iid.confidence_interval()
    iid_covers = iid_low <= truth <= iid_high
    print(
        f"\nThe raked mean sits {abs(raked.estimate - truth):.1f} points from the truth "
        f"({abs(raked.estimate - truth) / raked.std_error:.1f} SE): raking fixes the\n"
        "school-type and target-met shares, not which 15 districts were drawn, and its "
        f"interval\n{'covers' if covers else 'misses'} the truth. The SE that ignores the "
        f"clusters ({iid.std_error_:.2f}) gives [{iid_low:.2f}, {iid_high:.2f}],\n"
        f"which {'covers' if iid_covers else 'misses'} it.",
        file=out,
    )
    return balancer


TARGETS_HELP = """\
targets JSON: an object {column: {level: value}}, values proportions or counts:
  {"sex": {"F": 0.52, "M": 0.48}, "region": {"north": 0.4, "south": 0.6}}
or a list of margins, joint margins naming several columns, numeric columns
with a "total" or a "mean" instead of "targets":
  [{"columns": ["age", "sex"], "targets": [[["18-34", "F"], 0.16], ...]},
   {"columns": ["region"], "targets": [["north", 0.4], ["south", 0.6]]},
   {"columns": ["income"], "total": 81200000}]
Levels are read as text, as the CSV's columns are; numeric columns as numbers."""


def _read_targets(path):
    """Targets from JSON: {column: {level: value}} or a list of margins.

    The list form allows joint margins::

        [{"columns": ["age", "sex"], "targets": [[["18-34", "F"], 0.16], ...]},
         {"columns": ["region"], "targets": [["north", 0.4], ...]}]

    Levels are read as strings, as the data columns are.
    """
    if os.path.isdir(path):
        raise CommandError(f"targets file {path} is a directory.")
    try:
        with open(path, encoding="utf-8") as handle:
            spec = json.load(handle)
    except FileNotFoundError as exc:
        raise CommandError(f"targets file not found: {path}") from exc
    except UnicodeDecodeError as exc:
        raise CommandError(f"targets file {path} is not UTF-8 text: {exc}") from exc
    except json.JSONDecodeError as exc:
        raise CommandError(f"targets file {path} is not valid JSON: {exc}") from exc
    if isinstance(spec, dict):
        targets = {}
        for column, levels in spec.items():
            if not isinstance(levels, dict):
                raise CommandError(
                    f"targets of column {column!r} in {path} must be an object level -> "
                    f'value, e.g. {{"F": 0.52, "M": 0.48}}; got {json.dumps(levels)[:60]}.'
                )
            targets[column] = {str(level): value for level, value in levels.items()}
        return targets
    if isinstance(spec, list):
        return dict(_margin_from_json(margin, i, path) for i, margin in enumerate(spec))
    raise CommandError(f"targets JSON in {path} must be an object or a list of margins.\n"
                       + TARGETS_HELP)


def _margin_from_json(margin, i, path):
    """(key, {level: value}) of the i-th margin of the list form, checked."""
    where = f"margin {i} of {path}"
    numeric = [k for k in ("total", "mean") if isinstance(margin, dict) and k in margin]
    if not isinstance(margin, dict) or "columns" not in margin or (
            ("targets" in margin) + len(numeric) != 1):
        raise CommandError(f"{where} needs \"columns\" (a list of column names) and one of "
                           "\"targets\" (a list of [level, value] pairs), \"total\" or "
                           "\"mean\" (a number, for one numeric column).")
    if numeric:
        return _numeric_margin(margin, numeric[0], where)
    columns, pairs = margin["columns"], margin["targets"]
    if not isinstance(columns, list) or not columns or not all(
            isinstance(c, (str, int)) for c in columns):
        raise CommandError(f"\"columns\" of {where} must be a list of column names, e.g. "
                           f'["age", "sex"]; got {json.dumps(columns)[:60]}.')
    columns = [str(c) for c in columns]
    if not isinstance(pairs, list):
        raise CommandError(f"\"targets\" of {where} must be a list of [level, value] pairs; "
                           f"got {json.dumps(pairs)[:60]}.")
    levels = {}
    for pair in pairs:
        if not (isinstance(pair, list) and len(pair) == 2):
            raise CommandError(f"each entry of \"targets\" of {where} must be [level, value]; "
                               f"got {json.dumps(pair)[:60]}.")
        level, value = pair
        if len(columns) == 1:
            if isinstance(level, list):  # a one-column level written as [level]
                if len(level) != 1:
                    raise CommandError(f"level {json.dumps(level)} of {where} has "
                                       f"{len(level)} parts for 1 column.")
                level = level[0]
            levels[str(level)] = value
        else:
            if not isinstance(level, list) or len(level) != len(columns):
                raise CommandError(f"levels of the joint margin {columns} in {where} must "
                                   f"be lists of {len(columns)} values; got "
                                   f"{json.dumps(level)[:60]}.")
            levels[tuple(str(v) for v in level)] = value
    return (columns[0] if len(columns) == 1 else tuple(columns)), levels


def _numeric_margin(margin, kind, where):
    """(column, Total or Mean) of a numeric margin of the list form, checked."""
    columns, value = margin["columns"], margin[kind]
    if not (isinstance(columns, list) and len(columns) == 1
            and isinstance(columns[0], (str, int))):
        raise CommandError(f"\"{kind}\" of {where} needs exactly one column, e.g. "
                           f'"columns": ["income"]; got {json.dumps(columns)[:60]}.')
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise CommandError(f"\"{kind}\" of {where} must be a number; got "
                           f"{json.dumps(value)[:60]}.")
    try:
        return str(columns[0]), (Total if kind == "total" else Mean)(value)
    except ValueError as exc:
        raise CommandError(f"{where}: {exc}") from exc


def _check_destination(path, inputs, overwrite):
    """Raise unless ``path`` may be written: never one of the inputs, never a
    directory, and an existing file only with ``--overwrite``."""
    target = os.path.realpath(path)
    for source in inputs:
        if source is not None and os.path.exists(source) and (
            os.path.realpath(source) == target
        ):
            raise CommandError(f"--out {path} is an input file; choose another path.")
    folder = os.path.dirname(target) or "."
    if os.path.isdir(target):
        raise CommandError(f"--out {path} is a directory; give a file path.")
    if not os.path.isdir(folder):
        raise CommandError(f"--out {path}: the directory {folder} does not exist.")
    if os.path.exists(target) and not overwrite:
        raise CommandError(f"--out {path} exists; pass --overwrite to replace it, or choose "
                           "another path.")
    return target, folder


def _write_csv(frame, path, inputs, overwrite=False):
    """Write ``frame`` to ``path`` atomically, never over one of the inputs,
    nor over an existing file without ``overwrite``."""
    target, folder = _check_destination(path, inputs, overwrite)
    parquet = path.lower().endswith(".parquet")
    handle, temporary = tempfile.mkstemp(dir=folder, prefix=".skbalance-",
                                         suffix=".parquet" if parquet else ".csv")
    try:
        if parquet:
            os.close(handle)
            import pyarrow.parquet

            pyarrow.parquet.write_table(_parquet_table(frame, path), temporary)
        elif _arrow_writable(frame):
            import pyarrow
            import pyarrow.csv

            # Arrow writes the shortest text that reads back to the same double
            # (as %.17g does, several times faster), and quotes only where a
            # cell needs it; the header line is pandas'
            with os.fdopen(handle, "wb") as stream:
                stream.write(frame.head(0).to_csv(index=False).encode())
                pyarrow.csv.write_csv(
                    pyarrow.Table.from_pandas(frame, preserve_index=False), stream,
                    pyarrow.csv.WriteOptions(include_header=False, quoting_style="needed"))
        else:
            with os.fdopen(handle, "w", newline="") as stream:
                frame.to_csv(stream, index=False, float_format="%.17g")
        os.replace(temporary, target)
    except BaseException:
        if os.path.exists(temporary):
            os.unlink(temporary)
        raise


def _arrow_writable(frame):
    """Whether pyarrow can write ``frame`` as pandas would: numbers and text
    only (pandas and Arrow spell booleans, dates and missing text differently)."""
    try:
        import pyarrow.csv  # noqa: F401
    except ImportError:
        return False
    for column in frame.columns:
        values = frame[column]
        if values.dtype.kind in "iuf":
            continue
        if pd.api.types.is_string_dtype(values.dtype) and not values.isna().any() and all(
                isinstance(v, str) for v in values.head(1000)):
            continue
        return False
    return True


def _parquet_table(frame, path):
    """``frame`` as an Arrow table for Parquet (labels that are not text,
    such as the tuples of several domain columns, written as text)."""
    try:
        import pyarrow
    except ImportError as exc:
        raise CommandError(f"--out {path}: writing Parquet needs pyarrow "
                           "(pip install pyarrow), or give a .csv path.") from exc
    converted = frame.copy()
    for column in converted.columns:
        if converted[column].dtype == object:  # labels: text, missing as null
            converted[column] = [None if pd.isna(v) else str(v) for v in converted[column]]
    return pyarrow.Table.from_pandas(converted, preserve_index=False)


def _read_data(args, columns, text_columns=()):
    """The data CSV, with the balancing (and other categorical) columns as text.

    In those columns only an empty cell is missing: "NA", "None" and the like
    are levels, as they are written (``--missing-as-level`` makes an empty
    cell the level "" too). Other columns read missing values as pandas does.
    """
    if os.path.isdir(args.data):
        raise CommandError(f"data file {args.data} is a directory.")
    text = [*columns, *text_columns]
    try:
        header = pd.read_csv(args.data, nrows=0).columns
        others = {c: list(_DEFAULT_NA) for c in header if c not in text}
        empty = [] if args.missing_as_level else [""]
        return pd.read_csv(args.data, dtype={c: str for c in text}, keep_default_na=False,
                           na_values={**others, **{c: empty for c in text}})
    except FileNotFoundError as exc:
        raise CommandError(f"data file not found: {args.data}") from exc
    except UnicodeDecodeError as exc:
        raise CommandError(f"data file {args.data} is not UTF-8 text: {exc}") from exc
    except (pd.errors.ParserError, pd.errors.EmptyDataError) as exc:
        raise CommandError(f"could not read {args.data} as CSV: {exc}") from exc


def _targets_columns(targets):
    """The categorical columns of the targets (read as text; numeric ones are not)."""
    return list(dict.fromkeys(
        c for key, spec in targets.items() if not isinstance(spec, (Total, Mean))
        for c in (key if isinstance(key, tuple) else (key,))
    ))


def _base_weights(args, data):
    if args.weight_column is None:
        return None
    if args.weight_column not in data.columns:
        raise CommandError(f"base-weight column {args.weight_column!r} is not in {args.data}.")
    return pd.to_numeric(data[args.weight_column], errors="coerce")


def run_rake(args, out=None):
    """Rake a CSV file to the targets of a JSON file and write the weights."""
    out = sys.stdout if out is None else out
    _check_destination(args.out, [args.data, args.targets], args.overwrite)  # before the work
    targets = _read_targets(args.targets)
    data = _read_data(args, _targets_columns(targets))
    sample_weight = _base_weights(args, data)
    balancer = MarginalBalancer(
        targets=targets, max_iter=args.max_iter, tol=args.tol,
        bounds=tuple(args.bounds) if args.bounds else None, distance=args.distance,
        bounds_relative_to=args.bounds_relative_to,
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
    _write_csv(result, args.out, [args.data, args.targets], args.overwrite)
    print(_format_diagnostics(balancer.diagnostics_), file=out)
    print("\n" + _summary(balancer), file=out)
    print(f"wrote {len(result)} weights to {args.out}", file=out)
    return 0 if balancer.converged_ or not args.strict else 3


def run_estimate(args, out=None):
    """Balance a CSV file and print design-based estimates of its outcomes."""
    out = sys.stdout if out is None else out
    if args.out is not None:  # before the work
        _check_destination(args.out, [args.data, args.targets], args.overwrite)
    targets = None if args.targets is None else _read_targets(args.targets)
    by = args.by or []
    text = [c for c in (*by, *(args.clusters or []), *(args.strata or [])) if c]
    data = _read_data(args, [] if targets is None else _targets_columns(targets), text)
    for column in [*args.y, *(c for c in [args.denominator, *by] if c)]:
        if column not in data.columns:
            raise CommandError(f"column {column!r} is not in {args.data}.")
    replicate_columns = None
    if args.replicate_columns:
        replicate_columns = [c for c in data.columns if pd.Series([c]).str.fullmatch(
            args.replicate_columns).iloc[0]]
        if len(replicate_columns) < 2:
            raise CommandError(f"--replicate-columns {args.replicate_columns!r} matches "
                               f"{len(replicate_columns)} column(s) of {args.data}.")
    design = SurveyDesign(
        clusters=args.clusters, strata=args.strata, fpc=args.fpc, nest=args.nest,
        lonely_psu=args.lonely_psu, replicates=args.replicates,
        replicate_weights=replicate_columns, n_replicates=args.n_replicates,
        random_state=args.seed,
    )
    balancer = None
    if targets is not None:
        balancer = MarginalBalancer(targets=targets, max_iter=args.max_iter, tol=args.tol,
                                    bounds=tuple(args.bounds) if args.bounds else None,
                                    distance=args.distance,
                                    bounds_relative_to=args.bounds_relative_to)
    estimator = BalancedFunctionalEstimator(
        balancer, baseline="empirical" if balancer is None else None, design=design,
        statistic=args.statistic, domain=(by[0] if len(by) == 1 else by) or None,
        quantiles=args.quantiles, df=args.df, denominator=args.denominator,
        linearization=args.linearization, ci_method=args.ci_method, na_rm=args.na_rm,
    )
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always", ConvergenceWarning)
        estimator.fit(data, data[args.y], sample_weight=_base_weights(args, data))
    for warning in caught:
        print(f"skbalance: warning: {warning.message}", file=sys.stderr)
    results = estimator.results_
    print((_summary(estimator.balancer_) if balancer is not None else
           "design weights alone (no --targets: no balancing)") + "\n", file=out)
    print(results.to_string(index=False, float_format=lambda v: f"{v:.6g}"), file=out)
    if args.out is not None:
        _write_csv(results, args.out, [args.data, args.targets], args.overwrite)
        print(f"wrote {len(results)} rows to {args.out}", file=out)
    converged = balancer is None or estimator.balancer_.converged_
    return 0 if converged or not args.strict else 3


def _add_balancing_options(command, targets_required=True):
    command.add_argument("data", help="CSV file, one row per unit")
    command.add_argument("--targets", required=targets_required,
                         help="JSON file of target margins" + (
                             "" if targets_required else
                             " (omit it for estimates from the design weights alone)"))
    command.add_argument("--weight-column",
                         help="column of base (design) weights (default: 1 for every row)")
    command.add_argument("--max-iter", type=int, default=1000,
                         help="single-margin steps (default: %(default)s)")
    command.add_argument("--tol", type=float, default=1e-8,
                         help="largest marginal error (default: %(default)s)")
    command.add_argument(
        "--bounds", type=float, nargs=2, metavar=("LOW", "HIGH"),
        help="limits on weight / rescaled base weight (default: none)",
    )
    command.add_argument(
        "--bounds-relative-to", choices=["rescaled", "base"], default="rescaled",
        help="--bounds limit weight / base weight rescaled to the total (default), or "
        "weight / base weight (R survey's calibrate)",
    )
    command.add_argument(
        "--distance", "--method", choices=["raking", "linear", "logit"], default="raking",
        help="distance: raking (default), linear (GREG) or logit (needs --bounds); "
        "--method is its old name",
    )
    command.add_argument(
        "--missing-as-level", action="store_true",
        help="read cells literally: an empty cell is the level \"\" (give it a target "
        "under the key \"\") instead of a missing value",
    )
    command.add_argument(
        "--strict", action="store_true", help="exit with status 3 when not converged"
    )


def _parser():
    parser = argparse.ArgumentParser(
        prog="skbalance", description="Data balancing (raking) from the command line."
    )
    formatted = {"formatter_class": argparse.RawDescriptionHelpFormatter,
                 "epilog": TARGETS_HELP}
    parser.add_argument("--version", action="version", version=f"skbalance {__version__}")
    commands = parser.add_subparsers(dest="command", required=True)
    commands.add_parser("demo", help="rake a bundled real data set and print the report")
    rake = commands.add_parser("rake", help="rake a CSV file to target margins",
                               **formatted)
    _add_balancing_options(rake)
    rake.add_argument("--out", required=True, help="file to write the weights to: CSV, or "
                      "Parquet for a name ending in .parquet")
    rake.add_argument("--id-column", help="column copied next to the weights")
    rake.add_argument("--overwrite", action="store_true",
                      help="replace --out if it exists (without it, an existing file is an "
                      "error)")
    estimate = commands.add_parser(
        "estimate", help="balance a CSV file and estimate means, totals, proportions or "
        "ratios with design-based standard errors", **formatted,
    )
    _add_balancing_options(estimate, targets_required=False)
    estimate.add_argument("--y", nargs="+", required=True, help="outcome column(s)")
    estimate.add_argument("--statistic", choices=["mean", "total", "ratio", "quantile"],
                          default="mean",
                          help="default: %(default)s (categorical outcomes: proportions)")
    estimate.add_argument("--denominator", help="denominator column of --statistic ratio")
    estimate.add_argument("--by", nargs="+",
                          help="domain column(s): estimates within each level (each "
                          "observed combination of levels)")
    estimate.add_argument("--quantiles", type=float, nargs="+", default=[0.5],
                          help="with --statistic quantile (default: %(default)s)")
    estimate.add_argument("--clusters", nargs="+", help="cluster column(s), one per stage")
    estimate.add_argument("--strata", nargs="+", help="stratum column(s), one per stage")
    estimate.add_argument("--fpc", nargs="+",
                          help="fpc column(s): population counts or sampling fractions")
    estimate.add_argument("--nest", action="store_true",
                          help="cluster labels repeat across strata")
    estimate.add_argument("--lonely-psu", default="fail",
                          choices=["fail", "remove", "certainty", "adjust", "average"],
                          help="a stratum with one unit (default: %(default)s)")
    estimate.add_argument(
        "--replicates", choices=["jk1", "jkn", "subbootstrap", "canty-davison",
                                 "bootstrap", "brr", "fay", "successive-difference",
                                 "other"],
        help="replicate-weight variance (built from the design, or the kind of "
        "--replicate-columns)",
    )
    estimate.add_argument("--replicate-columns", metavar="REGEX",
                          help="supplied replicate weights: columns matching REGEX")
    estimate.add_argument("--n-replicates", type=int, default=200,
                          help="bootstrap replicates (default: %(default)s)")
    estimate.add_argument("--seed", type=int, help="seed of the bootstrap")
    estimate.add_argument("--df", choices=["design", "satterthwaite", "normal",
                                           "bell-mccaffrey", "domain"],
                          default="design",
                          help="degrees of freedom of the intervals: PSUs minus strata "
                          "(default), Satterthwaite's (few, unequal clusters), normal "
                          "(R's confint default), Bell-McCaffrey's (with --linearization "
                          "cr2), or each domain's PSUs minus strata (R's svyciprop)")
    estimate.add_argument("--linearization", choices=["design", "cr2"], default="design",
                          help="the linearized variance (default), or its bias-reduced "
                          "form (few clusters of unequal sizes)")
    estimate.add_argument("--ci-method", choices=["logit", "xlogit", "asin", "beta", "likelihood",
                                                  "mean"],
                          help="interval of a proportion (default: logit, as R's "
                          "svyciprop; mean: Wald's), or of the share below a quantile "
                          "(default: mean, as R's svyquantile)")
    estimate.add_argument("--na-rm", action="store_true",
                          help="leave rows with a missing outcome out of the estimates "
                          "(R's na.rm=TRUE); without it they are an error")
    estimate.add_argument("--out", help="also write the results table to this file (CSV, or "
                          "Parquet for a name ending in .parquet)")
    estimate.add_argument("--overwrite", action="store_true",
                          help="replace --out if it exists (without it, an existing file is "
                          "an error)")
    return parser


def main(argv=None):
    """Entry point of ``skbalance`` and ``python -m skbalance``."""
    args = _parser().parse_args(argv)
    try:
        if args.command == "demo":
            run_demo()
            return 0
        if args.command == "estimate":
            return run_estimate(args)
        return run_rake(args)
    except (CommandError, ValueError, KeyError, TypeError, OSError) as exc:
        message = str(exc.args[0] if isinstance(exc, KeyError) and exc.args else exc)
        message = message.replace("pass missing='level'", "pass --missing-as-level").replace(
            "pass na_rm=True", "pass --na-rm")
        print(f"skbalance: error: {message}", file=sys.stderr)
        return 2
