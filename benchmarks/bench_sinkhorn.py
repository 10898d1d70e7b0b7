"""Sinkhorn benchmark: skbalance against POT and the two-mat-vec limit.

For n x n problems (n = 2048 and 4096) in float64 and float32, at a fixed
number of iterations (one iteration = a row step and a column step):

* scaling path: ``skbalance.sinkhorn(K, max_iter=2 * iterations, tol=0)``
  against POT's ``ot.sinkhorn(a, b, M, reg, method="sinkhorn")`` and the
  limit: a loop of two plain NumPy matrix-vector products per iteration;
* logits path: ``skbalance.sinkhorn(-M / reg, logits=True, ...)`` against
  POT's ``method="sinkhorn_log"``.

Both run in this process on the same matrices; skbalance's time includes
making the plan (POT returns one). The table reports the best
wall time of ``--repeat`` runs, ratios, and how far the plans agree.

``--part tolerance``: from logits (cosine scores of random unit vectors,
dimension 64, over the temperature), 1024 x 1024 and 2048 x 2048 at
temperatures 1e-2 and 1e-3, to marginal error 1e-9: skbalance (epsilon
scaling, then Newton-CG; its work in kernel passes, ``n_matvec``) beside

* POT's ``sinkhorn_log`` with no iteration cap: it runs in chunks of
  ``POT_CHUNK`` iterations, each warm-started from the last one's potentials
  (the same iterates as one long run), until its own stopping rule holds or
  ``--peer-budget`` seconds are spent;
* ott-jax's ``Sinkhorn`` (log domain, float64) without momentum and with its
  adaptive momentum (Lehmann et al. 2021) from iteration 100 and 500, at most
  ``--ott-iterations`` iterations; compiled before the timed call.

Every error is recomputed from the returned plan.

``--part batched``: 64 batches of 256 x 256, 50 iterations: the 3-D path, a
Python loop of 2-D calls and the limit (a loop of two NumPy matrix-vector
products per iteration); ``swav_codes`` against a plain NumPy port of SwaV's
three Sinkhorn iterations. Medians of interleaved repeats.

Usage::

    pip install -e ".[bench]" pot ott-jax
    python benchmarks/bench_sinkhorn.py [--sizes 2048,4096] [--iterations 50]
    python benchmarks/bench_sinkhorn.py --part tolerance
    python benchmarks/bench_sinkhorn.py --part batched
"""

import argparse
import time
import warnings

import numpy as np

import skbalance as skb


def _with_plan(result):
    """The result with its plan made: what POT returns, and what a caller reads."""
    _ = result.plan  # a cached property: reading it makes the plan
    return result


def best_time(function, repeat):
    best, result = np.inf, None
    for _ in range(repeat):
        start = time.perf_counter()
        result = function()
        best = min(best, time.perf_counter() - start)
    return best, result


def two_matvec_limit(K, a, b, iterations):
    u, v = np.ones_like(a), np.ones_like(b)
    for _ in range(iterations):
        u = a / (K @ v)
        v = b / (u @ K)
    return u, v


def problem(n, dtype, reg):
    rng = np.random.default_rng(0)
    x, y = rng.uniform(size=(n, 2)), rng.uniform(size=(n, 2))
    M = ((x[:, None, :] - y[None, :, :]) ** 2).sum(-1)
    M /= M.max()
    a = np.full(n, 1.0 / n)
    return M.astype(dtype), a.astype(dtype), a.astype(dtype), reg


def cosine_scores(n, seed=0):
    rng = np.random.default_rng(seed)
    x, y = rng.normal(size=(n, 64)), rng.normal(size=(n, 64))
    x /= np.linalg.norm(x, axis=1, keepdims=True)
    y /= np.linalg.norm(y, axis=1, keepdims=True)
    return x @ y.T


def plan_error(plan, a, b):
    plan = np.asarray(plan, dtype=np.float64)
    return max(np.abs(plan.sum(axis=1) - a).max(), np.abs(plan.sum(axis=0) - b).max())


POT_CHUNK = 1000
OTT_MOMENTUM_STARTS = (0, 100, 500)  # 0: no momentum


def pot_without_cap(S, a, temperature, tol, budget):
    """POT's sinkhorn_log to ``tol``, warm-started in chunks until ``budget`` seconds pass."""
    import ot

    warmstart, iterations, start = None, 0, time.perf_counter()
    while True:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # a chunk that stops short warns
            plan, log = ot.sinkhorn(a, a, -S, temperature, method="sinkhorn_log",
                                    numItermax=POT_CHUNK, stopThr=tol, log=True,
                                    warmstart=warmstart)
        iterations += log["niter"] + 1
        warmstart = (log["log_u"], log["log_v"])
        converged = log["niter"] + 1 < POT_CHUNK
        seconds = time.perf_counter() - start
        if converged or seconds > budget:
            return plan, seconds, iterations, converged


def ott_sinkhorn(S, a, temperature, tol, momentum_start, max_iterations):
    """ott-jax's log-domain Sinkhorn, compiled first; returns plan, seconds and its output."""
    import jax

    jax.config.update("jax_enable_x64", True)
    from ott.geometry import geometry
    from ott.problems.linear import linear_problem
    from ott.solvers.linear import acceleration
    from ott.solvers.linear import sinkhorn as ott_solvers

    momentum = acceleration.Momentum(start=momentum_start) if momentum_start else None
    solver = ott_solvers.Sinkhorn(threshold=tol, max_iterations=max_iterations,
                                  lse_mode=True, momentum=momentum)
    cost, weights = jax.numpy.asarray(-S), jax.numpy.asarray(a)

    def solve(cost, weights):
        problem_ = linear_problem.LinearProblem(
            geometry.Geometry(cost_matrix=cost, epsilon=temperature), weights, weights)
        out = solver(problem_)
        return out.matrix, out.n_iters, out.converged

    compiled = jax.jit(solve).lower(cost, weights).compile()  # not timed
    start = time.perf_counter()
    plan, n_iters, converged = compiled(cost, weights)
    plan = np.asarray(plan.block_until_ready())
    return plan, time.perf_counter() - start, int(n_iters), bool(converged)


def to_tolerance(cases, max_steps, peer_budget, ott_iterations, tol=1e-9):
    """Part 2: each contender to tol from logits; errors from the plans."""
    rows = []
    for n, temperature in cases:
        S = cosine_scores(n)
        a = np.full(n, 1.0 / n)
        case = f"{n} x {n}, T={temperature:g}"
        start = time.perf_counter()
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            result = skb.sinkhorn(S / temperature, logits=True, tol=tol, max_iter=max_steps)
        seconds = time.perf_counter() - start
        rows.append({"case": case, "method": "skbalance",
                     "seconds": seconds, "error": plan_error(result.plan, a, a),
                     "work": f"{result.n_iter} steps + {result.n_newton} Newton; "
                             f"{result.n_matvec} kernel passes"})
        print(rows[-1], flush=True)
        try:
            import ot  # noqa: F401
        except ImportError:
            pass
        else:
            plan, seconds, iterations, converged = pot_without_cap(
                S, a, temperature, tol, peer_budget)
            stop = "its stopping rule held" if converged else f"budget of {peer_budget:g} s spent"
            rows.append({"case": case, "method": "POT sinkhorn_log, no iteration cap",
                         "seconds": seconds, "error": plan_error(plan, a, a),
                         "work": f"{iterations} iterations ({2 * iterations} kernel passes); "
                                 f"{stop}"})
            print(rows[-1], flush=True)
        try:
            import ott  # noqa: F401
        except ImportError:
            continue
        for momentum_start in OTT_MOMENTUM_STARTS:
            plan, seconds, iterations, converged = ott_sinkhorn(
                S, a, temperature, tol, momentum_start, ott_iterations)
            setting = (f"adaptive momentum from {momentum_start}" if momentum_start
                       else "no momentum")
            rows.append({"case": case, "method": f"ott-jax Sinkhorn, {setting}",
                         "seconds": seconds, "error": plan_error(plan, a, a),
                         "work": f"{iterations} iterations (cap {ott_iterations}), "
                                 f"converged={converged}"})
            print(rows[-1], flush=True)
    print(f"\nSinkhorn to tolerance {tol:g} from logits (cosine scores / T), float64\n")
    print("| case | method | seconds | marginal error of the plan | work |")
    print("|---|---|---:|---:|---|")
    for r in rows:
        print(f"| {r['case']} | {r['method']} | {r['seconds']:.2f} | {r['error']:.1e} | "
              f"{r['work']} |")


def swav_port(scores, epsilon=0.05, iterations=3):
    """SwaV's distributed_sinkhorn on one process, in plain NumPy."""
    Q = np.exp(scores / epsilon).T
    K, B = Q.shape
    Q /= Q.sum()
    for _ in range(iterations):
        Q /= Q.sum(axis=1, keepdims=True)
        Q /= K
        Q /= Q.sum(axis=0, keepdims=True)
        Q /= B
    Q *= B
    return Q.T


def medians(functions, repeat):
    """Median seconds of each function, rounds interleaved."""
    times = {name: [] for name in functions}
    for _ in range(repeat):
        for name, function in functions.items():
            start = time.perf_counter()
            function()
            times[name].append(time.perf_counter() - start)
    return {name: float(np.median(t)) for name, t in times.items()}


def batched(repeat):
    """Part 3b: the 3-D path and swav_codes against their limits."""
    from skbalance.ssl import swav_codes

    rng = np.random.default_rng(0)
    K = rng.uniform(0.1, 1.0, size=(64, 256, 256))
    a = np.full(256, 1.0 / 256)

    def loop_limit(plan=False):
        plans = []
        for i in range(64):
            u, v = np.ones(256), np.ones(256)
            for _ in range(50):
                u = a / (K[i] @ v)
                v = a / (u @ K[i])
            if plan:
                plans.append(u[:, None] * K[i] * v[None, :])
        return plans

    limit_name = "limit: loop of 2-D mat-vecs, then the plans"
    times = medians({
        "skbalance 3-D (returns the plan)": lambda: skb.sinkhorn(K, max_iter=100, tol=0).plan,
        "loop of 2-D skb.sinkhorn": lambda: [skb.sinkhorn(K[i], max_iter=100, tol=0).plan
                                             for i in range(64)],
        "loop of 2-D mat-vecs only": loop_limit,
        limit_name: lambda: loop_limit(plan=True),
    }, repeat)
    limit = times[limit_name]
    print("\n64 batches of 256 x 256, 50 iterations (float64), median of "
          f"{repeat} interleaved\n")
    print("| method | seconds | x limit |\n|---|---:|---:|")
    for name, seconds in times.items():
        print(f"| {name} | {seconds:.3f} | {seconds / limit:.2f} |")
    print("\nswav_codes (epsilon 0.05, 3 iterations) against a NumPy port of SwaV\n")
    print("| B x K | swav_codes (s) | port (s) | x port | max difference |")
    print("|---|---:|---:|---:|---:|")
    for n_samples, n_prototypes in [(4096, 3000), (256, 3000), (1024, 1024)]:
        scores = rng.uniform(-1, 1, size=(n_samples, n_prototypes))
        times = medians({"ours": lambda: swav_codes(scores),
                         "port": lambda: swav_port(scores)}, repeat)
        difference = float(np.abs(swav_codes(scores) - swav_port(scores)).max())
        print(f"| {n_samples} x {n_prototypes} | {times['ours']:.4f} | {times['port']:.4f} | "
              f"{times['ours'] / times['port']:.2f} | {difference:.1e} |")


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--part", default="fixed", choices=["fixed", "tolerance", "batched"])
    parser.add_argument("--sizes", default="2048,4096")
    parser.add_argument("--iterations", type=int, default=50)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--reg", type=float, default=0.05)
    parser.add_argument("--max-steps", type=int, default=200_000,
                        help="skbalance's step budget in --part tolerance")
    parser.add_argument("--cases", default="1024:1e-2,1024:1e-3,2048:1e-2,2048:1e-3")
    parser.add_argument("--peer-budget", type=float, default=300.0,
                        help="seconds POT may run per case in --part tolerance")
    parser.add_argument("--ott-iterations", type=int, default=30_000,
                        help="ott-jax's max_iterations in --part tolerance")
    args = parser.parse_args()
    if args.part == "tolerance":
        cases = [(int(c.split(":")[0]), float(c.split(":")[1])) for c in args.cases.split(",")]
        to_tolerance(cases, args.max_steps, args.peer_budget, args.ott_iterations)
        return
    if args.part == "batched":
        batched(max(args.repeat, 7))
        return
    try:
        import ot
    except ImportError:
        ot = None
    # Fixed iteration counts are the point here; POT warns that it stopped.
    warnings.filterwarnings("ignore", message="Sinkhorn did not converge")

    rows = []
    for n in map(int, args.sizes.split(",")):
        for dtype in (np.float64, np.float32):
            M, a, b, reg = problem(n, dtype, args.reg)
            K = np.exp(-M / dtype(reg))
            logits = -M / dtype(reg)
            it = args.iterations
            limit, _ = best_time(lambda: two_matvec_limit(K, a, b, it), args.repeat)
            ours, result = best_time(
                lambda: _with_plan(skb.sinkhorn(K, a, b, max_iter=2 * it, tol=0)), args.repeat)
            ours_log, result_log = best_time(
                lambda: _with_plan(skb.sinkhorn(logits, a, b, max_iter=2 * it, tol=0,
                                                logits=True)),
                args.repeat)
            plan = result.plan
            agreement = float(np.abs(result_log.plan - plan).max() / plan.max())
            row = {"n": n, "dtype": np.dtype(dtype).name, "limit": limit, "ours": ours,
                   "ours_log": ours_log, "agree_log": agreement}
            if ot is not None:
                pot, pot_plan = best_time(
                    lambda: ot.sinkhorn(a, b, M, reg, method="sinkhorn", numItermax=it,
                                        stopThr=0.0), args.repeat)
                pot_log, pot_log_plan = best_time(
                    lambda: ot.sinkhorn(a, b, M, reg, method="sinkhorn_log",
                                        numItermax=it, stopThr=0.0), args.repeat)
                row.update(pot=pot, pot_log=pot_log,
                           agree_pot=float(np.abs(pot_plan - plan).max() / plan.max()))
            rows.append(row)
            print(row, flush=True)

    print(f"\nSinkhorn, {args.iterations} iterations (2 single-margin steps each), "
          f"reg {args.reg}, best of {args.repeat}\n")
    print("| n | dtype | two-mat-vec limit (s) | skbalance (s) | x limit | POT sinkhorn (s)"
          " | POT / skbalance | skbalance logits (s) | POT sinkhorn_log (s) "
          "| POT log / skbalance logits | max plan difference vs POT |")
    print("|---:|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
    for r in rows:
        pot = (f"{r['pot']:.3f} | {r['pot'] / r['ours']:.2f}" if "pot" in r else "- | -")
        pot_log = (f"{r['pot_log']:.3f} | {r['pot_log'] / r['ours_log']:.2f}"
                   if "pot_log" in r else "- | -")
        agree = f"{r['agree_pot']:.1e}" if "agree_pot" in r else "-"
        print(f"| {r['n']} | {r['dtype']} | {r['limit']:.3f} | {r['ours']:.3f} | "
              f"{r['ours'] / r['limit']:.2f} | {pot} | {r['ours_log']:.3f} | {pot_log} | "
              f"{agree} |")


if __name__ == "__main__":
    main()
