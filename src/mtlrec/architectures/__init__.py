"""Multi-task architectures, one module per family, registered in ``ARCHITECTURES``."""

from mtlrec.architectures.adatt import AdaTT
from mtlrec.architectures.aitm import AITM
from mtlrec.architectures.base import Architecture
from mtlrec.architectures.cross_stitch import CrossStitch
from mtlrec.architectures.dbmtl import DBMTL
from mtlrec.architectures.esmm import ESMM
from mtlrec.architectures.home import HoME
from mtlrec.architectures.moe import MMoE, MultiLevelMMoE, OMoE
from mtlrec.architectures.pepnet import PEPNet
from mtlrec.architectures.ple import CGC, PLE
from mtlrec.architectures.shared_bottom import SharedBottom
from mtlrec.architectures.single_task import SingleTask
from mtlrec.architectures.sluice import Sluice
from mtlrec.architectures.soft_sharing import L2SoftSharing
from mtlrec.architectures.star import STAR
from mtlrec.architectures.stem import STEM

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
    "dbmtl": DBMTL,
    "pepnet": PEPNet,
    "stem": STEM,
    "adatt": AdaTT,
    "home": HoME,
}

__all__ = [
    "AITM",
    "AdaTT",
    "ARCHITECTURES",
    "CGC",
    "ESMM",
    "HoME",
    "CrossStitch",
    "DBMTL",
    "L2SoftSharing",
    "MMoE",
    "PEPNet",
    "PLE",
    "MultiLevelMMoE",
    "OMoE",
    "Architecture",
    "SharedBottom",
    "STAR",
    "STEM",
    "SingleTask",
    "Sluice",
]
