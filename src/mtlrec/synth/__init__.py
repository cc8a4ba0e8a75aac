"""Synthetic data with a known ground truth: click → conversion → ... cascades for ESMM/AITM experiments."""

from mtlrec.synth.cascade import BLOCK_ROWS, CascadeModel, draw_model, generate_cascade
from mtlrec.synth.output import meta_path, output_format, write_cascade
from mtlrec.synth.settings import DEFAULT_RATES, CascadeSettings

__all__ = [
    "BLOCK_ROWS",
    "DEFAULT_RATES",
    "CascadeModel",
    "CascadeSettings",
    "draw_model",
    "generate_cascade",
    "meta_path",
    "output_format",
    "write_cascade",
]
