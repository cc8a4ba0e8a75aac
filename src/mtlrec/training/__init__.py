"""Training: the loop, optimizers, checkpoints and early stopping."""

from mtlrec.training.checkpoint import load_checkpoint, load_weights, save_checkpoint, save_weights
from mtlrec.training.early_stopping import EarlyStopping
from mtlrec.training.optim import CompositeOptimizer, make_optimizer
from mtlrec.training.trainer import Trainer, TrainResult, TrainSettings

__all__ = [
    "CompositeOptimizer",
    "EarlyStopping",
    "TrainResult",
    "TrainSettings",
    "Trainer",
    "load_checkpoint",
    "load_weights",
    "make_optimizer",
    "save_checkpoint",
    "save_weights",
]
