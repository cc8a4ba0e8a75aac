"""The full model: the input layer (embeddings, sequence encoders, feature groups) and an architecture."""

from mtlrec.model.inputs import ModelInputs, SequenceInput
from mtlrec.model.multitask import IndependentTaskModels, MultiTaskModel

__all__ = ["IndependentTaskModels", "ModelInputs", "MultiTaskModel", "SequenceInput"]
