"""The command line, run as a user runs it.

In-process (``main(argv)`` with its output captured) where a subprocess adds
nothing; the demo runs as ``python -m skbalance``, the entry point itself.
"""

import contextlib
import io
import json
import re
import subprocess
import sys
from types import SimpleNamespace

import numpy as np
import pandas as pd
import pytest

import skbalance as skb
from skbalance._cli import main


def run(*args):
    """``skbalance ARGS`` in this process: its exit status, stdout and stderr."""
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        try:
            code = main([str(a) for a in args])
        except SystemExit as exit:  # argparse: --help, usage errors
            code = exit.code
    return SimpleNamespace(returncode=code, stdout=out.getvalue(), stderr=err.getvalue())


def test_demo_prints_report():
    result = subprocess.run([sys.executable, "-m", "skbalance", "demo"], capture_output=True,
                            text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    out = result.stdout
    assert "converged" in out and "design effect" in out
    assert "641.23" in out  # raked mean (R survey's calibrate + svymean gives 641.23)
    assert "664.71" in out  # population truth
    assert "644.17" in out  # unweighted
    # R survey on the cluster design: SE 23.7036, t interval with 14 df
    assert "SE  23.70" in out and "[590.39, 692.07] (t, 14 df)" in out
    assert "covers the truth" in out and "(7.78)" in out and "which misses it" in out


@pytest.fixture
def files(tmp_path, survey, survey_targets):
    data = survey.assign(id=np.arange(len(survey)) + 1000,
                         pw=np.random.default_rng(0).uniform(1, 3, len(survey)))
    data.to_csv(tmp_path / "data.csv", index=False)
    (tmp_path / "targets.json").write_text(json.dumps(survey_targets))
    return tmp_path, data


def test_rake_writes_weights(files, survey_targets, capsys):
    path, data = files
    code = main(["rake", str(path / "data.csv"), "--targets", str(path / "targets.json"),
                 "--out", str(path / "w.csv"), "--weight-column", "pw", "--id-column",
                 "id", "--tol", "1e-12"])
    assert code == 0
    written = pd.read_csv(path / "w.csv")
    assert list(written.columns) == ["id", "weight"]
    np.testing.assert_array_equal(written["id"], data["id"])
    expected = skb.compute_balancing_weights(data, survey_targets,
                                             sample_weight=data["pw"], tol=1e-12)
    np.testing.assert_allclose(written["weight"], expected, rtol=1e-15)
    assert "converged after" in capsys.readouterr().out


def test_rake_joint_margin_list_form(files):
    path, data = files
    joint = [[[a, s], 1 / 6] for a in ["18-34", "35-54", "55+"] for s in ["F", "M"]]
    spec = [{"columns": ["age", "sex"], "targets": joint},
            {"columns": ["region"], "targets": [["north", 1], ["south", 1], ["east", 1],
                                                ["west", 1]]}]
    (path / "joint.json").write_text(json.dumps(spec))
    result = run("rake", str(path / "data.csv"), "--targets", str(path / "joint.json"),
                 "--out", str(path / "w.csv"))
    assert result.returncode == 2  # proportions and counts mixed: one-line error
    assert result.stderr.count("\n") == 1 and "sum to 4 while" in result.stderr
    spec[1]["targets"] = [["north", 0.25], ["south", 0.25], ["east", 0.25], ["west", 0.25]]
    (path / "joint.json").write_text(json.dumps(spec))
    result = run("rake", str(path / "data.csv"), "--targets", str(path / "joint.json"),
                 "--out", str(path / "w.csv"), "--tol", "1e-12")
    assert result.returncode == 0, result.stderr
    w = pd.read_csv(path / "w.csv")["weight"].to_numpy()
    shares = pd.Series(w).groupby([data["age"], data["sex"]]).sum() / w.sum()
    np.testing.assert_allclose(shares.to_numpy(), 1 / 6, atol=1e-12)


@pytest.mark.parametrize(
    "change, message",
    [
        (lambda p: ["--targets", str(p / "missing.json")], "targets file not found"),
        (lambda p: ["--weight-column", "nope"], "base-weight column 'nope'"),
        (lambda p: ["--bounds", "2", "3"], "bounds must satisfy"),
        (lambda p: ["--targets", str(p / "bad.json")], "not valid JSON"),
        (lambda p: ["--targets", str(p / "level.json")], "has level"),
    ],
)
def test_rake_bad_input_exits_with_one_line(files, change, message):
    path, _ = files
    (path / "bad.json").write_text("{not json")
    (path / "level.json").write_text(json.dumps({"sex": {"F": 1.0}}))
    args = ["rake", str(path / "data.csv"), "--targets", str(path / "targets.json"),
            "--out", str(path / "w.csv"), *change(path)]
    result = run(*args)
    assert result.returncode == 2
    assert result.stderr.startswith("skbalance: error: ")
    assert result.stderr.count("\n") == 1
    assert message in result.stderr


def test_rake_not_converged_warns_and_strict_fails(files):
    path, _ = files
    base = ["rake", str(path / "data.csv"), "--targets", str(path / "targets.json"),
            "--out", str(path / "w.csv"), "--max-iter", "2", "--tol", "1e-12"]
    result = run(*base)
    assert result.returncode == 0 and "skbalance: warning: Raking did not reach" in result.stderr
    assert run(*base, "--strict", "--overwrite").returncode == 3


def test_an_existing_out_file_is_kept_unless_overwrite(files, clus1_files):
    """A user's file is never replaced silently: the command stops before any
    work and leaves it as it was; --overwrite replaces it."""
    path, _ = files
    out = path / "mine.csv"
    out.write_text("precious\n")
    rake = ["rake", str(path / "data.csv"), "--targets", str(path / "targets.json"),
            "--out", str(out)]
    result = run(*rake)
    assert result.returncode == 2 and result.stdout == ""
    assert f"--out {out} exists; pass --overwrite" in result.stderr
    assert out.read_text() == "precious\n"
    assert run(*rake, "--overwrite").returncode == 0
    written = pd.read_csv(out)
    assert list(written.columns) == ["weight"] and len(written) == len(
        pd.read_csv(path / "data.csv"))
    clus1 = clus1_files
    results = clus1 / "results.csv"
    results.write_text("precious\n")
    estimate = ["estimate", str(clus1 / "clus1.csv"), "--weight-column", "pw",
                "--clusters", "dnum", "--y", "api00", "--out", str(results)]
    result = run(*estimate)
    assert result.returncode == 2 and "exists; pass --overwrite" in result.stderr
    assert results.read_text() == "precious\n"
    assert run(*estimate, "--overwrite").returncode == 0
    assert pd.read_csv(results)["outcome"].tolist() == ["api00"]


@pytest.fixture
def clus1_files(tmp_path):
    sample = skb.datasets.load_api("clus1")
    sample.to_csv(tmp_path / "clus1.csv", index=False)
    targets = skb.datasets.api_population_targets(["stype", "sch.wide"])
    (tmp_path / "t.json").write_text(json.dumps(
        {k: {str(level): float(v) for level, v in m.items()} for k, m in targets.items()}))
    return tmp_path


def test_estimate_prints_and_writes_design_based_results(clus1_files, capsys):
    path = clus1_files
    code = main(["estimate", str(path / "clus1.csv"), "--targets", str(path / "t.json"),
                 "--weight-column", "pw", "--clusters", "dnum", "--fpc", "fpc",
                 "--y", "api00", "--tol", "1e-12", "--out", str(path / "r.csv")])
    assert code == 0
    written = pd.read_csv(path / "r.csv")
    assert list(written.columns) == ["statistic", "outcome", "level", "domain", "estimate",
                                     "std_error", "ci_low", "ci_high", "deff", "df", "n"]
    # R survey 4.1-1 (THEORY section 6): 641.2303209268, SE 23.7036168879
    assert written["estimate"].iloc[0] == pytest.approx(641.2303209268, rel=1e-9)
    assert written["std_error"].iloc[0] == pytest.approx(23.7036168879, rel=1e-8)
    assert "23.7036" in capsys.readouterr().out
    code = main(["estimate", str(path / "clus1.csv"), "--targets", str(path / "t.json"),
                 "--weight-column", "pw", "--clusters", "dnum", "--fpc", "fpc", "--y",
                 "api00", "--replicates", "jk1", "--tol", "1e-12", "--by", "comp.imp"])
    assert code == 0
    out = capsys.readouterr().out
    assert "No" in out and "Yes" in out  # one row per domain


def test_estimate_with_satterthwaite_degrees_of_freedom(clus1_files):
    path = clus1_files
    code = main(["estimate", str(path / "clus1.csv"), "--targets", str(path / "t.json"),
                 "--weight-column", "pw", "--clusters", "dnum", "--fpc", "fpc",
                 "--y", "api00", "--tol", "1e-12", "--df", "satterthwaite",
                 "--out", str(path / "s.csv")])
    assert code == 0
    written = pd.read_csv(path / "s.csv")
    sample = skb.datasets.load_api("clus1")
    targets = skb.datasets.api_population_targets(["stype", "sch.wide"])
    est = skb.BalancedFunctionalEstimator(
        skb.MarginalBalancer(targets=targets, tol=1e-12),
        design=skb.SurveyDesign(clusters="dnum", fpc="fpc"), df="satterthwaite")
    est.fit(sample, sample["api00"], sample_weight=sample["pw"])
    assert written["df"].iloc[0] == pytest.approx(est.df_, rel=1e-9)
    assert 1 < written["df"].iloc[0] < 14
    assert written["ci_low"].iloc[0] == pytest.approx(est.confidence_interval()[0], rel=1e-9)


def test_estimate_and_rake_never_write_over_an_input(clus1_files):
    path = clus1_files
    before = (path / "clus1.csv").read_bytes()
    for command in (["estimate", "--y", "api00"], ["rake"]):
        result = run(command[0], str(path / "clus1.csv"), "--targets", str(path / "t.json"),
                     "--weight-column", "pw", "--out", str(path / "clus1.csv"), *command[1:])
        assert result.returncode == 2
        assert "is an input file" in result.stderr
    assert (path / "clus1.csv").read_bytes() == before
    result = run("rake", str(path / "clus1.csv"), "--targets", str(path / "t.json"),
                 "--out", str(path / "missing" / "w.csv"))
    assert result.returncode == 2 and "does not exist" in result.stderr
    result = run("rake", str(path / "clus1.csv"), "--targets", str(path / "t.json"),
                 "--out", str(path))
    assert result.returncode == 2 and "is a directory" in result.stderr
    assert sorted(p.name for p in path.iterdir()) == ["clus1.csv", "t.json"]  # no temp files


@pytest.mark.parametrize("spec, message", [
    ([{"columns": ["age"], "targets": [["18-34"]]}],
     r"must be \[level, value\]; got \[\"18-34\"\]"),
    ([{"columns": ["age"], "targets": 5}], "must be a list of \\[level, value\\] pairs; got 5"),
    ([{"columns": "gh", "targets": []}],
     'must be a list of column names, e.g. \\["age", "sex"\\]; got "gh"'),
    ([{"targets": []}], 'needs "columns"'),
    ({"sex": 0.5}, "must be an object level -> value"),
    ([{"columns": ["age", "sex"], "targets": [["18-34", 1.0]]}], "must be lists of 2 values"),
    ("just text", "must be an object or a list of margins"),
])
def test_malformed_targets_json_is_explained(files, spec, message):
    path, _ = files
    (path / "t.json").write_text(json.dumps(spec))
    result = run("rake", str(path / "data.csv"), "--targets", str(path / "t.json"),
                 "--out", str(path / "w.csv"))
    assert result.returncode == 2 and "Traceback" not in result.stderr
    assert re.search(message, result.stderr), result.stderr


def test_one_column_margin_as_list_of_one_level_lists(files, survey_targets):
    path, data = files
    spec = [{"columns": [c], "targets": [[[level], v] for level, v in m.items()]}
            for c, m in survey_targets.items()]
    (path / "t.json").write_text(json.dumps(spec))
    assert main(["rake", str(path / "data.csv"), "--targets", str(path / "t.json"),
                 "--out", str(path / "w.csv"), "--tol", "1e-12"]) == 0
    expected = skb.compute_balancing_weights(data, survey_targets, tol=1e-12)
    np.testing.assert_allclose(pd.read_csv(path / "w.csv")["weight"], expected, rtol=1e-12)


def test_files_that_are_directories_or_not_utf8(files, tmp_path):
    path, _ = files
    (path / "latin1.json").write_bytes('{"sex": {"F\xe9": 1}}'.encode("latin-1"))
    for args, message in [
        ([str(path), "--targets", str(path / "targets.json")], "is a directory"),
        ([str(path / "data.csv"), "--targets", str(path)], "is a directory"),
        ([str(path / "data.csv"), "--targets", str(path / "latin1.json")],
         "latin1.json is not UTF-8 text"),
    ]:
        result = run("rake", *args, "--out", str(path / "w.csv"))
        assert result.returncode == 2 and message in result.stderr, result.stderr
        assert "Traceback" not in result.stderr


def test_literal_na_levels_and_the_flag_in_hints(tmp_path):
    data = pd.DataFrame({"region": ["NA", "EU", "None", "EU", ""],
                         "pw": [1, 2, 1, 1, 1]})
    data.to_csv(tmp_path / "d.csv", index=False)
    (tmp_path / "t.json").write_text(json.dumps(
        {"region": {"NA": 0.3, "EU": 0.5, "None": 0.2}}))
    result = run("rake", str(tmp_path / "d.csv"), "--targets", str(tmp_path / "t.json"),
                 "--out", str(tmp_path / "w.csv"))
    # "NA" and "None" are levels; only the empty cell is missing, and the hint
    # names the command line's flag
    assert result.returncode == 2
    assert "Column 'region' has 1 missing value(s)" in result.stderr
    assert "--missing-as-level" in result.stderr and "missing='level'" not in result.stderr
    data.iloc[:4].to_csv(tmp_path / "d.csv", index=False)
    result = run("rake", str(tmp_path / "d.csv"), "--targets", str(tmp_path / "t.json"),
                 "--out", str(tmp_path / "w.csv"), "--tol", "1e-12")
    assert result.returncode == 0, result.stderr
    weights = pd.read_csv(tmp_path / "w.csv", keep_default_na=False)["weight"]
    np.testing.assert_allclose(weights, [1.2, 1.0, 0.8, 1.0], rtol=1e-9)


def test_help_shows_targets_format_and_defaults():
    result = run("rake", "--help")
    assert result.returncode == 0
    out = " ".join(result.stdout.split())  # help text wraps
    assert "targets JSON" in out and '{"sex": {"F": 0.52' in out
    for default in ("default: 1000", "default: 1e-08", "default: none",
                    "default: 1 for every"):
        assert default in out


def test_estimate_without_targets_na_rm_and_the_new_options(clus1_files):
    # issue 20: design-weighted estimates need no --targets; --na-rm, --ci-method
    path = clus1_files
    sample = skb.datasets.load_api("clus1")
    y = sample["api00"].astype(float)
    y.iloc[[2, 9, 49, 50, 119]] = np.nan
    sample.assign(y=y).to_csv(path / "na.csv", index=False)
    base = ["estimate", path / "na.csv", "--weight-column", "pw", "--clusters", "dnum",
            "--fpc", "fpc", "--y", "y"]
    result = run(*base)
    assert result.returncode == 2 and "has 5 missing value(s)" in result.stderr
    assert "pass --na-rm" in result.stderr and "na_rm=True" not in result.stderr
    result = run(*base, "--na-rm", "--out", path / "na_out.csv")
    assert result.returncode == 0, result.stderr
    assert "design weights alone" in result.stdout
    written = pd.read_csv(path / "na_out.csv")
    # R: svymean(~y, svydesign(id=~dnum, weights=~pw, fpc=~fpc, data=...), na.rm=TRUE)
    assert written["estimate"].iloc[0] == pytest.approx(644.078651685393, rel=1e-9)
    assert written["std_error"].iloc[0] == pytest.approx(24.3476614622912, rel=1e-9)
    result = run("estimate", path / "clus1.csv", "--weight-column", "pw", "--clusters",
                 "dnum", "--fpc", "fpc", "--y", "awards", "--ci-method", "beta",
                 "--linearization", "cr2", "--df", "bell-mccaffrey", "--out", path / "p.csv")
    assert result.returncode == 0, result.stderr
    written = pd.read_csv(path / "p.csv")
    assert (written["ci_low"] >= 0).all() and (written["ci_high"] <= 1).all()
    assert (written["df"] < 14).all()


def test_estimate_quantiles_by_two_columns(clus1_files):
    path = clus1_files
    result = run("estimate", path / "clus1.csv", "--weight-column", "pw", "--clusters",
                 "dnum", "--fpc", "fpc", "--y", "api00", "--statistic", "quantile",
                 "--quantiles", "0.25", "0.5", "--by", "stype", "sch.wide",
                 "--out", path / "q.csv")
    assert result.returncode == 0, result.stderr
    written = pd.read_csv(path / "q.csv")
    assert len(written) == 12 and set(written["level"]) == {0.25, 0.5}
    sample = skb.datasets.load_api("clus1")
    est = skb.BalancedFunctionalEstimator(
        baseline="empirical", design=skb.SurveyDesign(clusters="dnum", fpc="fpc"),
        statistic="quantile", quantiles=[0.25, 0.5], domain=["stype", "sch.wide"])
    expected = est.fit(sample, sample["api00"], sample_weight=sample["pw"]).results_
    np.testing.assert_allclose(written["estimate"], expected["estimate"])
    np.testing.assert_allclose(written["std_error"], expected["std_error"], rtol=1e-12)


def test_weights_are_written_exactly_as_text_and_parquet(files, survey_targets):
    """Arrow's CSV writer where it writes what pandas would: every weight
    reads back to the same double; an id with a comma is quoted, the header
    is not; a .parquet path writes Parquet."""
    path, data = files
    data.assign(id=[f"unit {i}, batch" for i in range(len(data))]).to_csv(
        path / "text_ids.csv", index=False)
    for source, out in (("data.csv", "w.csv"), ("text_ids.csv", "w_text.csv"),
                        ("data.csv", "w.parquet")):
        code = main(["rake", str(path / source), "--targets", str(path / "targets.json"),
                     "--out", str(path / out), "--weight-column", "pw", "--id-column", "id",
                     "--tol", "1e-12"])
        assert code == 0
    expected = skb.compute_balancing_weights(data, survey_targets, sample_weight=data["pw"],
                                             tol=1e-12)
    lines = (path / "w.csv").read_text().splitlines()
    assert lines[0] == "id,weight"
    as_text = np.array([float(line.rsplit(",", 1)[1]) for line in lines[1:]])  # exact parse
    np.testing.assert_allclose(as_text, np.asarray(expected), rtol=1e-15)
    with_text = (path / "w_text.csv").read_text().splitlines()
    assert with_text[0] == "id,weight" and with_text[1].startswith('"unit 0, batch",')
    assert pd.read_csv(path / "w_text.csv")["id"].iloc[1] == "unit 1, batch"
    pytest.importorskip("pyarrow")
    parquet = pd.read_parquet(path / "w.parquet")
    # the same run's weights, as text and in binary: the text is exact
    np.testing.assert_array_equal(as_text, parquet["weight"].to_numpy())
    np.testing.assert_array_equal(parquet["id"], data["id"])


def test_estimates_by_two_columns_are_written_as_parquet(clus1_files):
    pytest.importorskip("pyarrow")
    path = clus1_files
    result = run("estimate", path / "clus1.csv", "--weight-column", "pw", "--clusters",
                 "dnum", "--fpc", "fpc", "--y", "api00", "--by", "stype", "sch.wide",
                 "--out", path / "by.parquet")
    assert result.returncode == 0, result.stderr
    written = pd.read_parquet(path / "by.parquet")
    sample = skb.datasets.load_api("clus1")
    expected = skb.BalancedFunctionalEstimator(
        baseline="empirical", design=skb.SurveyDesign(clusters="dnum", fpc="fpc"),
        domain=["stype", "sch.wide"]).fit(sample, sample["api00"],
                                          sample_weight=sample["pw"]).results_
    np.testing.assert_array_equal(written["estimate"], expected["estimate"])
    assert list(written["domain"]) == [str(d) for d in expected["domain"]]
