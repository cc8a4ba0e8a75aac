"""Feature encoders (scikit-learn style fit/transform) and the pipeline that applies them."""

from mtlrec.features.categorical import OOV_ID, PADDING_ID, CategoricalEncoder, NotFittedError, fnv1a_64
from mtlrec.features.label_spec import LabelSpec
from mtlrec.features.labels import BinaryLabel, ClassLabel, LabelRule, RegressionLabel
from mtlrec.features.numeric import NumericEncoder
from mtlrec.features.pipeline import FeaturePipeline, FeatureSpec

__all__ = [
    "OOV_ID",
    "PADDING_ID",
    "BinaryLabel",
    "CategoricalEncoder",
    "ClassLabel",
    "FeaturePipeline",
    "FeatureSpec",
    "LabelRule",
    "LabelSpec",
    "NotFittedError",
    "NumericEncoder",
    "RegressionLabel",
    "fnv1a_64",
]
