"""Multi-task architectures, one module per family, registered in ``ARCHITECTURES``."""

from mtlrec.architectures.aitm import AITM
from mtlrec.architectures.base import Architecture
from mtlrec.architectures.cross_stitch import CrossStitch
from mtlrec.architectures.esmm import ESMM
from mtlrec.architectures.moe import MMoE, MultiLevelMMoE, OMoE
from mtlrec.architectures.ple import CGC, PLE
from mtlrec.architectures.shared_bottom import SharedBottom
from mtlrec.architectures.single_task import SingleTask
from mtlrec.architectures.sluice import Sluice
from mtlrec.architectures.soft_sharing import L2SoftSharing
from mtlrec.architectures.star import STAR

ARCHITECTURES: dict[str, type[Architecture]] = {
    "single_task": SingleTask,
    "shared_bottom": SharedBottom,
    "omoe": OMoE,
    "mmoe": MMoE,
    "multi_level_mmoe": MultiLevelMMoE,
    "cgc": CGC,
    "ple": PLE,
    "esmm": ESMM,
    "aitm": AITM,
    "star": STAR,
    "cross_stitch": CrossStitch,
    "sluice": Sluice,
    "l2_soft_sharing": L2SoftSharing,
}

__all__ = [
    "AITM",
    "ARCHITECTURES",
    "CGC",
    "ESMM",
    "CrossStitch",
    "L2SoftSharing",
    "MMoE",
    "PLE",
    "MultiLevelMMoE",
    "OMoE",
    "Architecture",
    "SharedBottom",
    "STAR",
    "SingleTask",
    "Sluice",
]
