"""Loss-balancing strategies, one file per method, registered in ``WEIGHTINGS``."""

from mtlrec.weighting.base import GradientWeighting, LossWeighting, WeightingStrategy
from mtlrec.weighting.cagrad import CAGrad
from mtlrec.weighting.dwa import DynamicWeightAverage
from mtlrec.weighting.dynamic import DynamicWeighting
from mtlrec.weighting.famo import FAMO
from mtlrec.weighting.gradnorm import GradNorm
from mtlrec.weighting.imtl import IMTLG
from mtlrec.weighting.metabalance import MetaBalance
from mtlrec.weighting.mgda import MGDA
from mtlrec.weighting.pareto import ParetoWeighting
from mtlrec.weighting.pcgrad import PCGrad
from mtlrec.weighting.rlw import RandomLossWeighting
from mtlrec.weighting.static import EqualWeighting, FixedWeighting
from mtlrec.weighting.uncertainty import UncertaintyWeighting

WEIGHTINGS: dict[str, type[WeightingStrategy]] = {
    "equal": EqualWeighting,
    "fixed": FixedWeighting,
    "dynamic": DynamicWeighting,
    "uncertainty": UncertaintyWeighting,
    "dwa": DynamicWeightAverage,
    "rlw": RandomLossWeighting,
    "gradnorm": GradNorm,
    "famo": FAMO,
    "mgda": MGDA,
    "pcgrad": PCGrad,
    "cagrad": CAGrad,
    "imtl": IMTLG,
    "metabalance": MetaBalance,
    "pe_ltr": ParetoWeighting,
}

__all__ = [
    "WEIGHTINGS",
    "CAGrad",
    "DynamicWeightAverage",
    "DynamicWeighting",
    "EqualWeighting",
    "FAMO",
    "FixedWeighting",
    "GradNorm",
    "GradientWeighting",
    "IMTLG",
    "LossWeighting",
    "MGDA",
    "MetaBalance",
    "ParetoWeighting",
    "PCGrad",
    "RandomLossWeighting",
    "UncertaintyWeighting",
    "WeightingStrategy",
]
