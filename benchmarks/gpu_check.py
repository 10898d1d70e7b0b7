"""GPU check: every kernel on CuPy against NumPy, and two timings.

Run on a machine with an NVIDIA GPU and CuPy (``pip install skbalance[cupy]``)::

    python benchmarks/gpu_check.py [--sinkhorn-size 16384] [--rows 100000000]

It checks that each kernel and estimator, given CuPy arrays (with
scikit-learn's array API dispatch on), returns CuPy arrays on the same GPU
with NumPy's numbers, then times

* Sinkhorn on a dense float32 kernel, against the memory-bandwidth limit
  (each iteration reads the matrix twice; the achievable bandwidth is
  measured with a device-to-device copy);
* raking of 100M rows x 5 integer-coded columns held on the GPU, against
  one read of the data at that bandwidth.

Without CuPy or a GPU it says so and exits with status 0. It is not part of
the test suite.
"""

import argparse
import functools
import os
import sys
import time

# scikit-learn's array API dispatch needs SciPy's, which is read at import.
os.environ.setdefault("SCIPY_ARRAY_API", "1")

import numpy as np  # noqa: E402


def gpu_or_skip():
    try:
        import cupy
    except ImportError:
        print("gpu_check: skipped: CuPy is not installed (pip install 'skbalance[cupy]').")
        sys.exit(0)
    try:
        count = cupy.cuda.runtime.getDeviceCount()
    except Exception as exc:  # the CUDA driver is missing or unusable
        print(f"gpu_check: skipped: no usable CUDA device ({type(exc).__name__}: {exc}).")
        sys.exit(0)
    if count == 0:
        print("gpu_check: skipped: no CUDA device found.")
        sys.exit(0)
    return cupy


class _NumpyStandIn:
    """Just enough of CuPy's interface, backed by NumPy, for --dry-run."""

    ndarray = np.ndarray
    float32, int8, int64 = np.float32, np.int8, np.int64
    asarray = staticmethod(np.asarray)
    asnumpy = staticmethod(np.asarray)
    empty, empty_like, stack = staticmethod(np.empty), staticmethod(np.empty_like), \
        staticmethod(np.stack)

    class random:
        default_rng = staticmethod(np.random.default_rng)

    class cuda:
        class Device:
            def synchronize(self):
                pass

        class runtime:
            @staticmethod
            def getDeviceProperties(index):
                return {"name": "NumPy stand-in (dry run, not a GPU)"}


def timed(function, cupy, repeat=3):
    function()  # warm-up (kernels compile on first use)
    cupy.cuda.Device().synchronize()
    best = np.inf
    for _ in range(repeat):
        start = time.perf_counter()
        function()
        cupy.cuda.Device().synchronize()
        best = min(best, time.perf_counter() - start)
    return best


def check(name, gpu_value, cpu_value, cupy, rtol):
    on_gpu = isinstance(gpu_value, cupy.ndarray)
    gpu_numpy = cupy.asnumpy(gpu_value) if on_gpu else np.asarray(gpu_value)
    error = float(np.max(np.abs(gpu_numpy - cpu_value) / (np.abs(cpu_value) + 1e-300)))
    ok = (on_gpu or np.ndim(cpu_value) == 0) and error <= rtol
    print(f"| {name} | {'device array' if on_gpu else type(gpu_value).__name__} | {error:.1e} | "
          f"{'ok' if ok else 'FAIL'} |")
    return ok


def kernel_checks(cupy):
    import sklearn

    import skbalance as skb
    from skbalance import theory
    from skbalance.kernels import encode_cells, group_sum, rake_cells
    from skbalance.ssl import balanced_contrastive_loss, swav_codes

    rng = np.random.default_rng(0)
    results = []
    print("| check | result type | max relative difference | status |")
    print("|---|---|---:|---|")

    codes = [rng.integers(0, 4, 10_000), rng.integers(0, 3, 10_000)]
    cells, n, cell_codes, counts = encode_cells(codes, [4, 3], return_cell_codes=True,
                                                return_counts=True)
    g_cells, g_n, g_codes, g_counts = encode_cells([cupy.asarray(c) for c in codes], [4, 3],
                                                   return_cell_codes=True,
                                                   return_counts=True)
    # cells may be numbered differently: compare each row's decoded level codes
    decoded = cupy.asnumpy(g_codes[0])[cupy.asnumpy(g_cells)]
    results.append(check("encode_cells (row codes)", cupy.asarray(decoded), codes[0], cupy, 0))
    values = rng.uniform(size=10_000)
    results.append(check("group_sum", group_sum(cupy.asarray(codes[0]), cupy.asarray(values),
                                                4),
                         np.bincount(codes[0], values, minlength=4), cupy, 1e-12))
    base = counts / counts.sum()
    targets = [np.full(4, 0.25), np.array([0.2, 0.3, 0.5])]
    results.append(check(
        "rake_cells (k = 7)",
        rake_cells(cupy.asarray(base), [cupy.asarray(c) for c in cell_codes], targets,
                   max_iter=7, tol=0).cell_factors,
        rake_cells(base, cell_codes, targets, max_iter=7, tol=0).cell_factors, cupy, 1e-10))

    X = rng.integers(0, 3, size=(50_000, 3)).astype(np.float64)
    weights = rng.uniform(1, 2, 50_000)
    margins = {0: {0.0: 0.2, 1.0: 0.3, 2.0: 0.5}, (1, 2): {(i, j): 1 / 9 for i in range(3)
                                                           for j in range(3)}}
    reference = skb.MarginalBalancer(targets=margins, tol=1e-12).fit(X, sample_weight=weights)
    with sklearn.config_context(array_api_dispatch=True):
        fitted = skb.MarginalBalancer(targets=margins, tol=1e-12).fit(
            cupy.asarray(X), sample_weight=cupy.asarray(weights))
        results.append(check("MarginalBalancer.weights_", fitted.weights_,
                             reference.weights_, cupy, 1e-10))
        results.append(check("MarginalBalancer.compute_weights",
                             fitted.compute_weights(cupy.asarray(X[:999])),
                             reference.compute_weights(X[:999]), cupy, 1e-10))
        y = X[:, 0] + rng.normal(size=50_000)
        est = skb.BalancedFunctionalEstimator(skb.MarginalBalancer(targets=margins))
        cpu = est.fit(X, y, sample_weight=weights)
        cpu_values = np.array([cpu.estimate_, cpu.std_error_])
        gpu = skb.BalancedFunctionalEstimator(skb.MarginalBalancer(targets=margins)).fit(
            cupy.asarray(X), cupy.asarray(y), sample_weight=cupy.asarray(weights))
        results.append(check("BalancedFunctionalEstimator (estimate, SE)",
                             np.array([gpu.estimate_, gpu.std_error_]), cpu_values, cupy,
                             1e-9))
        sga = skb.SpectralGapAnalyzer(columns=(1, 2))
        cpu_coords = sga.fit(X, y).transform(X[:500])
        results.append(check("SpectralGapAnalyzer.transform",
                             skb.SpectralGapAnalyzer(columns=(1, 2)).fit(
                                 cupy.asarray(X), cupy.asarray(y)).transform(
                                 cupy.asarray(X[:500])), cpu_coords, cupy, 1e-8))

    K = rng.uniform(0.1, 1.0, size=(300, 200))
    results.append(check("sinkhorn dense (k = 9)",
                         skb.sinkhorn(cupy.asarray(K), max_iter=9, tol=0).plan,
                         skb.sinkhorn(K, max_iter=9, tol=0).plan, cupy, 1e-10))
    batch = rng.uniform(0.1, 1.0, size=(8, 64, 32))
    results.append(check("sinkhorn batched (k = 6)",
                         skb.sinkhorn(cupy.asarray(batch), max_iter=6, tol=0).plan,
                         skb.sinkhorn(batch, max_iter=6, tol=0).plan, cupy, 1e-10))
    scores = rng.normal(size=(200, 16))
    scores /= np.linalg.norm(scores, axis=1, keepdims=True)
    logits = scores @ scores.T / 1e-2
    results.append(check("sinkhorn logits, 1/eps = 100, tol 1e-12",
                         skb.sinkhorn(cupy.asarray(logits), logits=True, tol=1e-12).plan,
                         skb.sinkhorn(logits, logits=True, tol=1e-12).plan, cupy, 1e-6))
    L = rng.normal(size=(64, 64))
    for k in (0, 1, 2, 3):
        gpu_loss, gpu_grad = balanced_contrastive_loss(cupy.asarray(L), n_steps=k,
                                                       return_grad=True)
        cpu_loss, cpu_grad = balanced_contrastive_loss(L, n_steps=k, return_grad=True)
        results.append(check(f"balanced_contrastive_loss k = {k} (gradient)", gpu_grad,
                             cpu_grad, cupy, 1e-10))
    results.append(check("swav_codes", swav_codes(cupy.asarray(L)), swav_codes(L), cupy,
                         1e-10))
    P = theory.random_table((4, 5), random_state=0)
    h = rng.normal(size=(4, 5))
    results.append(check("theory.variance_curve",
                         theory.variance_curve(cupy.asarray(P), cupy.asarray(h), 6)[0],
                         theory.variance_curve(P, h, 6)[0], cupy, 1e-10))
    return all(results)


def timings(cupy, size, rows):
    import sklearn

    import skbalance as skb

    bytes_copied = 2**30
    source = cupy.empty(bytes_copied // 4, dtype=cupy.float32)
    target = cupy.empty_like(source)
    copy_time = timed(lambda: target.__setitem__(Ellipsis, source), cupy)
    bandwidth = 2 * bytes_copied / copy_time  # a copy reads and writes
    print(f"\nmeasured device bandwidth (copy): {bandwidth / 1e9:,.0f} GB/s\n")
    print("| job | size | seconds | bandwidth limit (s) | x limit |")
    print("|---|---|---:|---:|---:|")

    rng = cupy.random.default_rng(0)
    K = rng.random(size=(size, size), dtype=cupy.float32) * 0.9 + 0.1
    steps = 100
    seconds = timed(functools.partial(skb.sinkhorn, K, max_iter=steps, tol=0), cupy)
    limit = steps * K.nbytes / bandwidth  # each step reads K once
    print(f"| Sinkhorn float32, {steps} steps | {size} x {size} | {seconds:.3f} | "
          f"{limit:.3f} | {seconds / limit:.2f} |")
    del K

    columns = [rng.integers(0, n, size=rows, dtype=cupy.int64).astype(cupy.int8)
               for n in (5, 2, 10, 4, 6)]
    X = cupy.stack(columns, axis=1)
    del columns
    targets = {j: {float(v): 1.0 / n for v in range(n)}
               for j, n in enumerate((5, 2, 10, 4, 6))}
    X = X.astype(cupy.float32)
    with sklearn.config_context(array_api_dispatch=True):
        seconds = timed(lambda: skb.MarginalBalancer(targets=targets, tol=1e-6).fit(X), cupy,
                        repeat=2)
    limit = X.nbytes / bandwidth
    print(f"| MarginalBalancer.fit, 5 columns | {rows:,} rows | {seconds:.3f} | "
          f"{limit:.3f} | {seconds / limit:.1f} |")


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sinkhorn-size", type=int, default=16384)
    parser.add_argument("--rows", type=int, default=100_000_000)
    parser.add_argument("--dry-run", action="store_true",
                        help="run the script's logic with NumPy standing in for CuPy")
    args = parser.parse_args()
    cupy = _NumpyStandIn() if args.dry_run else gpu_or_skip()
    name = cupy.cuda.runtime.getDeviceProperties(0)["name"]
    print(f"gpu_check on {name.decode() if isinstance(name, bytes) else name}\n")
    ok = kernel_checks(cupy)
    timings(cupy, args.sinkhorn_size, args.rows)
    sys.exit(0 if ok else 1)


if __name__ == "__main__":
    main()
