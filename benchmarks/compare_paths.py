"""Check that the fit paths give the same numbers as an older checkout.

``tol=0`` raking (plain, bounded, numeric targets) and the Sinkhorn scaling
path (2-D, batched, sparse; ``tol=0`` and ``tol > 0``) must not change when
the solvers for ``tol > 0`` do; and the balancer's whole fit path (raking,
linear and logit to a tolerance, bounds, new rows, partial_fit, replicate
weights, estimates and standard errors, linearized and replicated) must not
change when the code around the solvers does. Runs each case here and in the older tree
(``git worktree add /tmp/old_tree <commit>``) and prints the largest relative
difference::

    python benchmarks/compare_paths.py /tmp/old_tree
"""

import json
import subprocess
import sys

import numpy as np

CASES = r'''
import json, sys
import numpy as np, pandas as pd
import inspect
import skbalance as skb
from scipy import sparse
# the parameters' names in this checkout (distance and baseline were method before 0.2)
NEW_NAMES = "distance" in inspect.signature(skb.MarginalBalancer).parameters
DISTANCE = "distance" if NEW_NAMES else "method"
def baseline(name):
    return {"baseline": name} if NEW_NAMES else {"method": name}
rng = np.random.default_rng(0)
n = 3000
X = pd.DataFrame({c: rng.choice(list("abcde")[:k], n) for c, k in
                  [("a", 3), ("b", 4), ("c", 5), ("d", 2)]})
X["x"] = rng.normal(size=n)
base = rng.uniform(0.5, 2.0, n)
shares = {c: X[c].value_counts(normalize=True).to_dict() for c in "abcd"}
tilt = {c: {k: v * (1.2 if i == 0 else 0.95) for i, (k, v) in enumerate(s.items())}
        for c, s in shares.items()}
tilt = {c: {k: v / sum(s.values()) for k, v in s.items()} for c, s in tilt.items()}
out = {}
for k in (1, 3, 8, 50):
    out[f"raking k={k}"] = skb.compute_balancing_weights(
        X, tilt, sample_weight=base, max_iter=k, tol=0).tolist()
    out[f"bounded raking k={k}"] = skb.compute_balancing_weights(
        X, tilt, sample_weight=base, max_iter=k, tol=0, bounds=(0.7, 1.6)).tolist()
    out[f"numeric raking k={k}"] = skb.compute_balancing_weights(
        X, {**tilt, "x": skb.Mean(0.1)}, sample_weight=base, max_iter=k, tol=0).tolist()
K = rng.uniform(0.05, 1.0, size=(40, 30))
B = rng.uniform(0.05, 1.0, size=(6, 40, 30))
S = sparse.random(60, 50, density=0.3, random_state=1, format="csr") + sparse.eye(60, 50)
for k in (1, 2, 7, 40):
    out[f"sinkhorn 2-D k={k}"] = skb.sinkhorn(K, max_iter=k, tol=0).plan.ravel().tolist()
    out[f"sinkhorn 3-D k={k}"] = skb.sinkhorn(B, max_iter=k, tol=0).plan.ravel().tolist()
    out[f"sinkhorn sparse k={k}"] = skb.sinkhorn(S, max_iter=k,
                                                 tol=0).plan.toarray().ravel().tolist()
    out[f"sinkhorn logits k={k}"] = skb.sinkhorn(np.log(K), logits=True, max_iter=k,
                                                 tol=0).plan.ravel().tolist()
for k in (1, 6, 31):
    out[f"sinkhorn 2-D errors k={k}"] = list(skb.sinkhorn(K, max_iter=k, tol=0).marginal_error)
    out[f"sinkhorn 3-D errors k={k}"] = list(skb.sinkhorn(B, max_iter=k, tol=0).marginal_error)
out["sinkhorn 2-D tol"] = skb.sinkhorn(K, tol=1e-12, max_iter=10000).plan.ravel().tolist()
out["sinkhorn 3-D tol"] = skb.sinkhorn(B, tol=1e-12, max_iter=10000).plan.ravel().tolist()
new = X.sample(500, random_state=1)
numeric = {**tilt, "x": skb.Mean(0.1)}
fits = {"raking tol": dict(targets=tilt, tol=1e-10),
        "raking steps tol": dict(targets=tilt, tol=1e-10, solver="steps"),
        "bounded raking tol": dict(targets=tilt, tol=1e-10, bounds=(0.7, 1.6)),
        "numeric raking tol": dict(targets=numeric, tol=1e-10),
        "linear tol": dict(targets=numeric, tol=1e-10, **{DISTANCE: "linear"}),
        "logit tol": dict(targets=numeric, tol=1e-10, bounds=(0.5, 2.0), **{DISTANCE: "logit"})}
for name, params in fits.items():
    bal = skb.MarginalBalancer(**params).fit(X, sample_weight=base)
    out[f"{name} weights"] = bal.weights_.tolist()
    out[f"{name} new rows"] = bal.compute_weights(new, sample_weight=base[:500]).tolist()
    out[f"{name} diagnostics"] = bal.diagnostics_[["weighted_share", "residual"]].to_numpy(
        ).ravel().tolist()
    out[f"{name} n_iter"] = [bal.n_iter_, bal.n_newton_iter_, float(bal.converged_)]
chunked = skb.MarginalBalancer(targets=tilt, tol=1e-10)
for part in np.array_split(np.arange(n), 3):
    chunked.partial_fit(X.iloc[part], sample_weight=base[part])
out["partial_fit new rows"] = chunked.compute_weights(new).tolist()
api = skb.datasets.load_api("clus1")
targets = skb.datasets.api_population_targets(["stype", "sch.wide"])
for method in ("raking", "linear"):
    bal = skb.MarginalBalancer(targets=targets, tol=1e-10, **{DISTANCE: method})
    for reps in (None, "jk1", "bootstrap"):
        design = skb.SurveyDesign(clusters="dnum", fpc="fpc", replicates=reps,
                                  random_state=0)
        for domain in (None, "comp.imp"):
            est = skb.BalancedFunctionalEstimator(bal, design=design, domain=domain).fit(
                api, api[["api00", "awards"]], sample_weight=api["pw"])
            out[f"estimates {method} {reps} {domain}"] = est.results_[
                ["estimate", "std_error", "deff"]].to_numpy().ravel().tolist()
    out[f"replicate weights {method}"] = skb.compute_replicate_weights(
        api, bal, skb.SurveyDesign(clusters="dnum", fpc="fpc", replicates="jk1"),
        sample_weight=api["pw"]).weights.ravel().tolist()
for method in ("empirical", "ipwi"):
    est = skb.BalancedFunctionalEstimator(skb.MarginalBalancer(targets=targets), **baseline(method),
                                          design=skb.SurveyDesign(clusters="dnum", fpc="fpc"))
    out[f"estimates {method}"] = est.fit(api, api["api00"], sample_weight=api["pw"]).results_[
        ["estimate", "std_error"]].to_numpy().ravel().tolist()
print(json.dumps(out))
'''


def run(python_path):
    prefix = "" if python_path is None else (
        "import sys\nsys.meta_path = [f for f in sys.meta_path if 'editable' not in "
        "type(f).__name__.lower() and 'Finder' not in type(f).__name__ or "
        f"'PathFinder' in type(f).__name__]\nsys.path.insert(0, {python_path!r})\n")
    done = subprocess.run([sys.executable, "-c", prefix + CASES], capture_output=True,
                          text=True, check=True)
    return json.loads(done.stdout.splitlines()[-1])


def main():
    old, new = run(sys.argv[1]), run(None)
    worst = 0.0
    for name in new:
        a, b = np.array(new[name]), np.array(old[name])
        with np.errstate(invalid="ignore"):  # NaN in both (an undefined deff) is equal
            diff = float(np.nanmax(np.where(np.isnan(a) & np.isnan(b), 0.0, np.abs(a - b)
                                            / np.maximum(np.abs(b), 1e-300))))
        worst = max(worst, diff)
        print(f"{name:40s} largest relative difference {diff:.1e}")
    print(f"worst: {worst:.1e}")


if __name__ == "__main__":
    main()
