"""Serving: score rows with an exported artifact (``Predictor``), in batch or over HTTP.

Imports export, features, batch and io only: never training, weighting or config.
"""

from mtlrec.serving.predictor import Predictor

__all__ = ["Predictor"]
