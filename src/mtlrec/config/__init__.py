"""The YAML configuration: pydantic models, loading, ``--set`` overrides and readable errors.

Unknown keys and wrong types are errors naming the config path (``tasks[1].label.column``).
Names that refer to registries (architectures, losses, metrics, weightings) are checked by
:mod:`mtlrec.app.build`, the only package that looks names up in registries.
"""

from mtlrec.config.features import (
    CategoricalFeature,
    CrossFeature,
    MultiValuedFeature,
    NumericFeature,
    SequenceEncoderConfig,
    SequenceFeature,
    SequenceFieldConfig,
)
from mtlrec.config.loading import apply_override, config_to_dict, load_config, load_raw_config, validate_config
from mtlrec.config.models import (
    Config,
    CsvOptions,
    DataConfig,
    DiagnosticsConfig,
    EarlyStoppingConfig,
    EvaluationConfig,
    FeatureSelectionConfig,
    FusionConfig,
    GradientReversalConfig,
    LabelConfig,
    LabelTransform,
    ModelConfig,
    ServingConfig,
    SplitOptions,
    StreamingOptions,
    TaskConfig,
    TrainConfig,
    WeightingConfig,
)
from mtlrec.config.tune import PruningConfig, SearchDimension, TuneConfig

__all__ = [
    "CategoricalFeature",
    "Config",
    "CrossFeature",
    "MultiValuedFeature",
    "SequenceEncoderConfig",
    "SequenceFeature",
    "SequenceFieldConfig",
    "CsvOptions",
    "DataConfig",
    "DiagnosticsConfig",
    "EarlyStoppingConfig",
    "EvaluationConfig",
    "FeatureSelectionConfig",
    "FusionConfig",
    "LabelConfig",
    "LabelTransform",
    "ModelConfig",
    "NumericFeature",
    "ServingConfig",
    "SplitOptions",
    "StreamingOptions",
    "GradientReversalConfig",
    "TaskConfig",
    "TrainConfig",
    "PruningConfig",
    "SearchDimension",
    "TuneConfig",
    "WeightingConfig",
    "apply_override",
    "config_to_dict",
    "load_config",
    "load_raw_config",
    "validate_config",
]
