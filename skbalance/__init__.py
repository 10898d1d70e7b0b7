"""skbalance: data balancing (raking, iterative proportional fitting, Sinkhorn)
for scikit-learn, with the variance theory of k-step balancing."""

from . import datasets, theory
from ._balancer import MarginalBalancer, compute_balancing_weights
from ._functional import BalancedFunctionalEstimator
from ._meta import BalancedEstimator
from ._spectral import SpectralGapAnalyzer

__version__ = "0.1.0"

__all__ = [
    "BalancedEstimator",
    "BalancedFunctionalEstimator",
    "MarginalBalancer",
    "SpectralGapAnalyzer",
    "__version__",
    "compute_balancing_weights",
    "datasets",
    "theory",
]
