"""One BLAS thread for vector work, which a thread pool cannot speed up.

A matrix-vector product or a dot product over 1e5-1e6 numbers takes 0.1-1 ms.
Split over OpenBLAS's threads it gains little on an idle machine. On a
machine whose cores are busy (CI runners, shared servers), every product
then waits for its descheduled threads, and runs 1.2-4x slower
(``benchmarks/bench_threads.py``). So the iterative solvers and the
linearized variance run their vector work inside :func:`one_blas_thread`,
while the matrix-matrix products of replicate weights keep every thread.
"""

from contextlib import contextmanager
from functools import lru_cache

__all__ = ["one_blas_thread"]


@lru_cache(maxsize=1)
def _controller():
    """The BLAS libraries loaded (NumPy's and SciPy's), found once: 3 ms."""
    from threadpoolctl import ThreadpoolController

    return ThreadpoolController()


@contextmanager
def one_blas_thread():
    """Run the block with one BLAS thread, then restore the previous count.

    Entering and leaving costs about 15 microseconds. Nested blocks, or
    threads that already run with one, are unaffected.

    Examples
    --------
    >>> import numpy as np
    >>> from skbalance.utils._threads import one_blas_thread
    >>> with one_blas_thread():
    ...     float(np.ones(1000) @ np.ones(1000))
    1000.0
    """
    with _controller().limit(limits=1, user_api="blas"):
        yield
