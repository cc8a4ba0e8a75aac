"""Export: a trained model + its encoders + task metadata + fusion as a self-contained artifact.

``fusion`` (score fusion, compiled into the graph), ``scoring`` (the module that is exported),
``exporters`` (ONNX, TorchScript), ``quantize`` and ``onnx_int8`` (int8 ONNX, bf16 TorchScript),
``runtime`` (running an exported file), ``parity`` (exported vs eager), ``accuracy`` (held-out AUC
of both), ``artifact`` (directory layout, manifest, sha256, atomic write) and ``package`` (all of it
in order). Imports no config: the composition root (``mtlrec.app.api``) hands in plain objects.
"""

from mtlrec.export.accuracy import LabelledRows, measure_accuracy
from mtlrec.export.artifact import FEATURES, FORMAT_NAME, FORMAT_VERSION, MANIFEST, is_artifact, read_manifest
from mtlrec.export.exporters import EXPORTERS, MODEL_FILES, ONNX_OPSET
from mtlrec.export.fusion import FUSION_KINDS, Fusion, FusionModule
from mtlrec.export.package import export_artifact, scoring_model
from mtlrec.export.parity import TOLERANCE, ParityResult, check_parity
from mtlrec.export.quantize import PARITY_TOLERANCES, QUANTIZATIONS, QUANTIZED_FORMATS
from mtlrec.export.runtime import RUNTIMES, OnnxRuntimeModel, TorchScriptModel
from mtlrec.export.scoring import FUSED_OUTPUT, ScoringModel

__all__ = [
    "EXPORTERS",
    "FEATURES",
    "FORMAT_NAME",
    "FORMAT_VERSION",
    "FUSED_OUTPUT",
    "FUSION_KINDS",
    "MANIFEST",
    "MODEL_FILES",
    "ONNX_OPSET",
    "PARITY_TOLERANCES",
    "QUANTIZATIONS",
    "QUANTIZED_FORMATS",
    "RUNTIMES",
    "TOLERANCE",
    "Fusion",
    "FusionModule",
    "LabelledRows",
    "OnnxRuntimeModel",
    "ParityResult",
    "ScoringModel",
    "TorchScriptModel",
    "check_parity",
    "export_artifact",
    "is_artifact",
    "measure_accuracy",
    "read_manifest",
    "scoring_model",
]
