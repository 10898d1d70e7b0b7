"""Pure array kernels: cell encoding and raking. No scikit-learn imports."""

from ._cells import encode_cells, first_occurrence, group_sum
from ._ipf import RakingResult, rake_cells

__all__ = ["RakingResult", "encode_cells", "first_occurrence", "group_sum", "rake_cells"]
