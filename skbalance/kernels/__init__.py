"""Pure array kernels: cell encoding, raking and Sinkhorn. No estimators here."""

from ._cells import encode_cells, first_occurrence, group_sum
from ._ipf import RakingResult, rake_cells, rake_cells_batch
from ._sinkhorn import SinkhornResult, sinkhorn

__all__ = [
    "RakingResult",
    "SinkhornResult",
    "encode_cells",
    "first_occurrence",
    "group_sum",
    "rake_cells",
    "rake_cells_batch",
    "sinkhorn",
]
