"""Loss-balancing strategies, one file per method, registered in ``WEIGHTINGS``."""

from mtlrec.weighting.base import LossWeighting, WeightingStrategy
from mtlrec.weighting.static import EqualWeighting, FixedWeighting

WEIGHTINGS: dict[str, type[WeightingStrategy]] = {
    "equal": EqualWeighting,
    "fixed": FixedWeighting,
}

__all__ = ["WEIGHTINGS", "EqualWeighting", "FixedWeighting", "LossWeighting", "WeightingStrategy"]
