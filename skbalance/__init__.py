"""skbalance: data balancing (raking, iterative proportional fitting, Sinkhorn)
for scikit-learn, with the variance theory of k-step balancing."""

from . import datasets, ssl, theory
from ._balancer import (
    MarginalBalancer,
    cbps_balancer,
    compute_balancing_weights,
    entropy_balancing_weights,
    post_stratification,
)
from ._covariate_balance import covariate_balance
from ._design import ReplicateWeights, SurveyDesign
from ._functional import BalancedFunctionalEstimator
from ._inference import compute_replicate_weights
from ._meta import BalancedEstimator
from ._problem import CellProblem
from ._propensity import NonresponseAdjuster, PropensityBalancer
from ._recipe import WeightingRecipe
from ._regression import SurveyClassifier, SurveyRegressor
from ._spectral import SpectralGapAnalyzer
from ._tables import chisq_test, two_way_table
from ._targets import Mean, Total, targets_from_frame
from ._trimming import (
    TrimmedBalancer,
    WeightTrimmer,
    nonresponse_weights,
    trim_weights,
    winsorize_weights,
)
from ._version import __version__
from .kernels import SinkhornResult, sinkhorn

__all__ = [
    "BalancedEstimator",
    "BalancedFunctionalEstimator",
    "CellProblem",
    "MarginalBalancer",
    "Mean",
    "NonresponseAdjuster",
    "PropensityBalancer",
    "ReplicateWeights",
    "SinkhornResult",
    "SpectralGapAnalyzer",
    "SurveyClassifier",
    "SurveyDesign",
    "SurveyRegressor",
    "Total",
    "TrimmedBalancer",
    "WeightTrimmer",
    "WeightingRecipe",
    "__version__",
    "cbps_balancer",
    "chisq_test",
    "compute_balancing_weights",
    "compute_replicate_weights",
    "covariate_balance",
    "datasets",
    "entropy_balancing_weights",
    "nonresponse_weights",
    "post_stratification",
    "sinkhorn",
    "ssl",
    "targets_from_frame",
    "theory",
    "trim_weights",
    "two_way_table",
    "winsorize_weights",
]
