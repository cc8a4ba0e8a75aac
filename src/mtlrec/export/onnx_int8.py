"""int8 ONNX graphs: ONNX Runtime's dynamic quantization, with the rewrites it needs to help a ranking model.

``onnxruntime.quantization.quantize_dynamic`` stores weights as int8 and quantizes each MatMul's
input to uint8 at run time (one scale for the whole batch); ONNX Runtime then runs
``DynamicQuantizeMatMul`` (VNNI/AMX int8 GEMMs). Three steps come first, each chosen by measurement
on the 1M-row synthetic benchmark (MMoE, 4 experts of [256, 128], towers [64]; 100k test rows) and
a census PLE (1000 test rows):

1. ``Gemm`` → ``MatMul`` (+ ``Add``): dynamic quantization handles ``MatMul`` only, and the torch
   exporter writes ``nn.Linear`` and the experts' fused first layer as ``Gemm``. A Gemm whose
   constant is its *first* operand (the experts' feature-major ``W·xᵀ``) becomes
   ``Transpose(x·Wᵀ + b)``.
2. Smoothing (Xiao et al., 2023, SmoothQuant): a model's input concatenates embeddings (|x| ≤ 0.2)
   with standardized numbers (|x| up to 6), so one activation scale per batch rounds the embeddings
   away: quantizing as is moved the synthetic click AUC by −0.0010 and scores by up to 0.11. Each
   input column j of a 2-D layer is divided by s_j = max|x_j|^α / max|W_j|^(1−α) (max|x_j| over the
   calibration rows, floored at 1% of the largest so that dead units stay harmless) and the weight's
   row j multiplied by it: the same function in float. No single α suits every model (0.9 gave
   0.007 on the synthetic MMoE but 0.024 on census; 0.5: 0.015 and 0.009), so each layer takes the
   α of ``SMOOTHING_ALPHAS`` (or none) whose simulated int8 product is closest to the float one on
   the calibration rows: 0.5 and 0.4 there, largest score differences 0.015 and 0.008, AUC within
   6e-5 of fp32.
3. Only the large layers: MatMuls with at least ``LAYER_SHARE`` of the largest layer's weights (the
   experts, not the towers or heads), which took 1.06× more rows/s than quantizing all of them and
   halved the largest score difference.

Not done, also by measurement: per-channel weights (no AUC gain, 12% slower; and ONNX Runtime
rejects its zero points on the experts' 3-D weights), int8 embedding tables (``Gather``: a 3.5×
smaller file and the same AUC, but 10% slower, each lookup being dequantized).
"""

from __future__ import annotations

import logging
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import numpy as np

from mtlrec.errors import ExportError

#: SmoothQuant's migration strengths α tried on each layer (see the module docstring).
SMOOTHING_ALPHAS = (0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9, 1.0)
#: A layer is quantized when its weight has at least this share of the largest layer's elements.
LAYER_SHARE = 1 / 8
#: Smoothing floors each column's calibration range at this share of the largest column's.
RANGE_FLOOR = 0.01


def quantize_int8(source: Path, target: Path, calibration: Mapping[str, np.ndarray]) -> dict[str, Any]:
    """Write an int8 version of the float ONNX graph ``source`` to ``target``; returns what was done.

    Args:
        source: the float32 graph (``torch.onnx.export``'s).
        target: the quantized graph to write.
        calibration: encoded rows (inputs by name) whose activation ranges set the smoothing.

    Returns:
        For the manifest: method, weight and activation types, layer counts, smoothing settings.

    Raises:
        ExportError: the graph has no layer with a constant weight to quantize.
    """
    import onnx  # the `serve` extra
    from onnxruntime.quantization import QuantType, quantize_dynamic

    model = onnx.load(str(source))
    chosen = _gemms_to_matmuls(model, _large_layers(model))
    layers = [node for node in model.graph.node if node.op_type == "MatMul" and _output(node) in chosen]
    if not layers:  # quantize_dynamic reads an empty node list as "every node"
        raise ExportError("--quantize int8: the model has no dense layer with constant weights to quantize")
    for node in layers:
        node.name = node.name or f"{_output(node)}/MatMul"  # quantize_dynamic picks nodes by name
    smoothed = _smooth(model, [node for node in layers if _weight_rank(model, node) == 2], calibration)
    with _quiet_quantizer():
        quantize_dynamic(
            model,
            str(target),
            op_types_to_quantize=["MatMul"],
            nodes_to_quantize=[node.name for node in layers],
            per_channel=False,
            weight_type=QuantType.QInt8,
            extra_options={"MatMulConstBOnly": True},
        )
    rows = len(next(iter(calibration.values())))
    return {
        "method": "onnxruntime.quantization.quantize_dynamic",
        "weights": "int8, one scale per layer",
        "activations": "uint8, one dynamic scale per layer and batch",
        "quantized_layers": len(layers),
        "float_layers": _dense_layer_count(model) - len(layers),
        "smoothing": {"alphas": smoothed, "calibration_rows": rows},
    }


def _output(node: Any) -> str:
    """A node's first output: unique in a graph, so it identifies the node (names may repeat or be empty)."""
    return node.output[0]


def _initializers(model: Any) -> dict[str, Any]:
    return {tensor.name: tensor for tensor in model.graph.initializer}


def _constant_weight(node: Any, initializers: Mapping[str, Any]) -> Any | None:
    """The constant weight of a Gemm (either operand, the other not constant) or MatMul (B), if any."""
    if node.op_type == "MatMul":
        return initializers.get(node.input[1]) if node.input[0] not in initializers else None
    if node.op_type == "Gemm":
        a, b = (initializers.get(name) for name in node.input[:2])
        if (a is None) == (b is None):
            return None
        bias = node.input[2] if len(node.input) > 2 else ""
        return (a if b is None else b) if not bias or bias in initializers else None
    return None


def _weight_rank(model: Any, node: Any) -> int:
    return len(_initializers(model)[node.input[1]].dims)


def _large_layers(model: Any) -> set[str]:
    """Outputs of the Gemm and MatMul nodes with a constant weight of at least ``LAYER_SHARE`` of the largest."""
    initializers = _initializers(model)
    sizes = {}
    for node in model.graph.node:
        weight = _constant_weight(node, initializers)
        if weight is not None:
            sizes[_output(node)] = int(np.prod(weight.dims))
    if not sizes:
        return set()
    largest = max(sizes.values())
    return {output for output, size in sizes.items() if size >= LAYER_SHARE * largest}


def _dense_layer_count(model: Any) -> int:
    initializers = _initializers(model)
    return sum(_constant_weight(node, initializers) is not None for node in model.graph.node)


def _gemms_to_matmuls(model: Any, chosen: set[str]) -> set[str]:
    """Replace each chosen Gemm by MatMul (+ Add) with the constant as MatMul's second operand.

    Returns ``chosen`` with each replaced Gemm's output swapped for its MatMul's.
    """
    initializers = _initializers(model)
    nodes, layers = [], set(chosen)
    for node in model.graph.node:
        if node.op_type == "Gemm" and _output(node) in chosen:
            replacement = _gemm_as_matmul(model, node, initializers)
            layers.discard(_output(node))
            layers.update(_output(new) for new in replacement if new.op_type == "MatMul")
            nodes.extend(replacement)
        else:
            nodes.append(node)
    del model.graph.node[:]
    model.graph.node.extend(nodes)
    _drop_unused_initializers(model)
    return layers


def _gemm_as_matmul(model: Any, node: Any, initializers: Mapping[str, Any]) -> list[Any]:
    """Y = α·A'·B' + β·C as MatMul nodes; with a constant A, computed as (B'ᵀ·A'ᵀ + β·Cᵀ)ᵀ."""
    from onnx import helper, numpy_helper

    attributes = {attribute.name: helper.get_attribute_value(attribute) for attribute in node.attribute}
    alpha, beta = attributes.get("alpha", 1.0), attributes.get("beta", 1.0)
    trans_a, trans_b = attributes.get("transA", 0), attributes.get("transB", 0)
    a, b = node.input[0], node.input[1]
    bias = node.input[2] if len(node.input) > 2 and node.input[2] else None
    c = None if bias is None else beta * numpy_helper.to_array(initializers[bias]).astype(np.float32)
    prefix, output = _output(node), _output(node)
    constant_first = b not in initializers
    if constant_first:  # W·xᵀ (+ b): x·Wᵀ (+ bᵀ), transposed back
        weight = numpy_helper.to_array(initializers[a])
        weight = (weight.T if trans_a else weight).T
        x, transpose_x = b, not trans_b
        c = None if c is None else np.atleast_2d(c).T
    else:
        weight = numpy_helper.to_array(initializers[b])
        weight = weight.T if trans_b else weight
        x, transpose_x = a, bool(trans_a)
    nodes = []
    if transpose_x:
        nodes.append(helper.make_node("Transpose", [x], [f"{prefix}/x_t"], f"{prefix}/TransposeX", perm=[1, 0]))
        x = f"{prefix}/x_t"
    _add_initializer(model, f"{prefix}/weight", (alpha * weight).astype(np.float32))
    result = f"{prefix}/matmul" if constant_first or c is not None else output
    nodes.append(helper.make_node("MatMul", [x, f"{prefix}/weight"], [result], f"{prefix}/MatMul"))
    if c is not None:
        _add_initializer(model, f"{prefix}/bias", c.astype(np.float32))
        summed = f"{prefix}/add" if constant_first else output
        nodes.append(helper.make_node("Add", [result, f"{prefix}/bias"], [summed], f"{prefix}/Add"))
        result = summed
    if constant_first:
        nodes.append(helper.make_node("Transpose", [result], [output], f"{prefix}/TransposeY", perm=[1, 0]))
    return nodes


def _smooth(model: Any, layers: list[Any], calibration: Mapping[str, np.ndarray]) -> list[float | None]:
    """Move each 2-D layer's input column ranges into its weight (see the module docstring).

    Returns each layer's migration strength α (None: left as it is, which simulated best).
    """
    from onnx import helper, numpy_helper

    if not layers:
        return []
    initializers = _initializers(model)
    activations = _layer_inputs(model, [node.input[0] for node in layers], calibration)
    chosen: dict[str, tuple[float | None, np.ndarray | None]] = {}
    for node in layers:
        weight = numpy_helper.to_array(initializers[node.input[1]]).astype(np.float32)
        chosen[_output(node)] = _best_smoothing(activations[node.input[0]], weight)
    nodes = []
    for node in model.graph.node:
        alpha, scale = chosen.get(_output(node), (None, None))
        if scale is not None:
            weight = numpy_helper.to_array(initializers[node.input[1]]).astype(np.float32)
            prefix = _output(node)
            _add_initializer(model, f"{prefix}/smoothing", (1.0 / scale).astype(np.float32))
            inputs = [node.input[0], f"{prefix}/smoothing"]
            nodes.append(helper.make_node("Mul", inputs, [f"{prefix}/smoothed"], f"{prefix}/Smoothing"))
            initializers[node.input[1]].CopyFrom(numpy_helper.from_array(weight * scale[:, None], node.input[1]))
            node.input[0] = f"{prefix}/smoothed"
        nodes.append(node)
    del model.graph.node[:]
    model.graph.node.extend(nodes)
    return [alpha for alpha, _ in chosen.values()]


def _best_smoothing(x: np.ndarray, weight: np.ndarray) -> tuple[float | None, np.ndarray | None]:
    """The α of ``SMOOTHING_ALPHAS`` (or none) whose simulated int8 product x·W is closest to the float one.

    Args:
        x: (rows, K) the layer's input on the calibration rows.
        weight: (K, N).

    Returns:
        (α, s) or (None, None) when no smoothing simulates best.
    """
    reference = x @ weight
    column_range = np.abs(x).max(axis=0)
    candidates: list[tuple[float | None, np.ndarray | None]] = [(None, None)]
    candidates += [(alpha, _smoothing_scale(column_range, weight, alpha)) for alpha in SMOOTHING_ALPHAS]
    errors = [_simulated_error(x, weight, scale, reference) for _, scale in candidates]
    return candidates[int(np.argmin(errors))]


def _simulated_error(x: np.ndarray, weight: np.ndarray, scale: np.ndarray | None, reference: np.ndarray) -> float:
    """Squared error of x·W with x as uint8 (one scale, as ``DynamicQuantizeLinear``) and W as int8 (one scale)."""
    if scale is not None:
        x, weight = x / scale, weight * scale[:, None]
    return float(np.square(_fake_uint8(x) @ _fake_int8(weight) - reference).sum())


def _fake_uint8(x: np.ndarray) -> np.ndarray:
    low, high = min(float(x.min()), 0.0), max(float(x.max()), 0.0)
    step = (high - low) / 255 or 1.0
    zero = np.round(-low / step)
    return (np.clip(np.round(x / step) + zero, 0, 255) - zero) * step


def _fake_int8(weight: np.ndarray) -> np.ndarray:
    step = float(np.abs(weight).max()) / 127 or 1.0
    return np.clip(np.round(weight / step), -127, 127) * step


def _smoothing_scale(column_range: np.ndarray, weight: np.ndarray, alpha: float) -> np.ndarray:
    """s_j = max|x_j|^α / max|W_j|^(1−α), ranges floored (dead columns must not blow up 1/s)."""
    activation = np.maximum(column_range, max(RANGE_FLOOR * float(column_range.max()), 1e-6))
    weight_range = np.maximum(np.abs(weight).max(axis=1), 1e-6)
    return (activation**alpha / weight_range ** (1 - alpha)).astype(np.float32)


def _layer_inputs(model: Any, names: list[str], calibration: Mapping[str, np.ndarray]) -> dict[str, np.ndarray]:
    """Each named tensor on the calibration rows (the float graph run), as (rows, last axis) float64."""
    import onnx
    import onnxruntime
    from onnx import helper

    probe = onnx.ModelProto()
    probe.CopyFrom(model)
    outputs = {output.name for output in probe.graph.output}
    probe.graph.output.extend(helper.make_empty_tensor_value_info(name) for name in names if name not in outputs)
    session = onnxruntime.InferenceSession(probe.SerializeToString(), providers=["CPUExecutionProvider"])
    feed = {node.name: calibration[node.name] for node in session.get_inputs()}
    values = session.run(list(names), feed)
    return {name: value.reshape(-1, value.shape[-1]).astype(np.float64) for name, value in zip(names, values)}


def _add_initializer(model: Any, name: str, value: np.ndarray) -> None:
    from onnx import numpy_helper

    model.graph.initializer.append(numpy_helper.from_array(np.ascontiguousarray(value), name))


def _drop_unused_initializers(model: Any) -> None:
    used = {name for node in model.graph.node for name in node.input}
    kept = [tensor for tensor in model.graph.initializer if tensor.name in used]
    del model.graph.initializer[:]
    model.graph.initializer.extend(kept)


class _DropPreprocessHint(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        return "pre-processing before quantization" not in record.getMessage()


@contextmanager
def _quiet_quantizer() -> Iterator[None]:
    """Hide quantize_dynamic's advice to run its pre-processing (a shape-inference pass this graph does not need).

    It is logged with ``logging.warning``, which configures the root logger (a lasting stderr handler)
    when that has no handler: ``logging.lastResort`` stands in meanwhile, so other warnings still show.
    """
    root = logging.getLogger()
    hint = _DropPreprocessHint()
    stand_in = logging.lastResort if not root.handlers else None
    if stand_in is not None:
        root.addHandler(stand_in)
    root.addFilter(hint)
    try:
        yield
    finally:
        root.removeFilter(hint)
        if stand_in is not None:
            root.removeHandler(stand_in)
