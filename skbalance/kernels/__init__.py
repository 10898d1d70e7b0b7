"""Pure array kernels: cell encoding, raking and Sinkhorn. No estimators here."""

from ._blocks import MarginBlocks
from ._calibrate import (
                         CalibrationResult,
                         ConstraintMatrix,
                         calibrate_cells,
                         calibration_factor,
                         linear_predictor,
                         mean_range,
                         numeric_scaling,
)
from ._cells import (
    SplitColumn,
    distinct_row_count,
    encode_cells,
    first_occurrence,
    group_sum,
    group_sums,
)
from ._ipf import RakingResult, rake_cells, rake_cells_batch
from ._sinkhorn import SinkhornResult, sinkhorn

__all__ = [
    "CalibrationResult",
    "ConstraintMatrix",
    "MarginBlocks",
    "calibrate_cells",
    "calibration_factor",
    "linear_predictor",
    "mean_range",
    "numeric_scaling",
    "RakingResult",
    "SinkhornResult",
    "SplitColumn",
    "distinct_row_count",
    "encode_cells",
    "first_occurrence",
    "group_sum",
    "group_sums",
    "rake_cells",
    "rake_cells_batch",
    "sinkhorn",
]
