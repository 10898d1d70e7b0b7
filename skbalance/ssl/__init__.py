"""Balancing for self-supervised learning: contrastive losses, SwaV codes,
metadata curation."""

from ._contrastive import balanced_contrastive_loss
from ._curation import MetadataCurator, match_entries
from ._swav import swav_codes

__all__ = ["MetadataCurator", "balanced_contrastive_loss", "match_entries", "swav_codes"]
