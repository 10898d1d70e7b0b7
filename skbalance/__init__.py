"""skbalance: data balancing (raking, iterative proportional fitting, Sinkhorn)
for scikit-learn, with the variance theory of k-step balancing."""

from . import datasets
from ._balancer import MarginalBalancer, compute_balancing_weights

__version__ = "0.1.0"

__all__ = ["MarginalBalancer", "__version__", "compute_balancing_weights", "datasets"]
