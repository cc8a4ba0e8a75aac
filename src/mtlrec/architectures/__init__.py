"""Multi-task architectures, one module per family, registered in ``ARCHITECTURES``."""

from mtlrec.architectures.base import Architecture
from mtlrec.architectures.moe import MMoE
from mtlrec.architectures.shared_bottom import SharedBottom
from mtlrec.architectures.single_task import SingleTask

ARCHITECTURES: dict[str, type[Architecture]] = {
    "single_task": SingleTask,
    "shared_bottom": SharedBottom,
    "mmoe": MMoE,
}

__all__ = ["ARCHITECTURES", "MMoE", "Architecture", "SharedBottom", "SingleTask"]
