"""Features: the Encoder contract and its registry (``ENCODERS``), vocabularies, labels, the pipeline."""

from mtlrec.features.categorical import CategoricalEncoder
from mtlrec.features.cross import CrossEncoder
from mtlrec.features.encoder import Encoder, FitLimits, InputSpec
from mtlrec.features.fitting import PipelineFit
from mtlrec.features.label_spec import LabelSpec
from mtlrec.features.labels import BinaryLabel, ClassLabel, LabelRule, RegressionLabel
from mtlrec.features.lists import Jagged, jagged_from_padded, padded_from_jagged
from mtlrec.features.multi_valued import MultiValuedEncoder
from mtlrec.features.numeric import NumericEncoder
from mtlrec.features.pipeline import FeaturePipeline
from mtlrec.features.registry import ENCODERS
from mtlrec.features.sequence import SequenceEncoder, SequenceField
from mtlrec.features.vocabulary import OOV_ID, PADDING_ID, NotFittedError, Vocabulary, fnv1a_64

__all__ = [
    "ENCODERS",
    "OOV_ID",
    "PADDING_ID",
    "BinaryLabel",
    "CategoricalEncoder",
    "ClassLabel",
    "CrossEncoder",
    "Encoder",
    "FeaturePipeline",
    "FitLimits",
    "InputSpec",
    "Jagged",
    "LabelRule",
    "LabelSpec",
    "MultiValuedEncoder",
    "NotFittedError",
    "NumericEncoder",
    "PipelineFit",
    "RegressionLabel",
    "SequenceEncoder",
    "SequenceField",
    "Vocabulary",
    "fnv1a_64",
    "jagged_from_padded",
    "padded_from_jagged",
]
