"""Predictor: load an artifact (checked by sha256) and score Arrow tables with it.

The one path from raw rows to scores for batch prediction and the HTTP server: raw columns →
``FeaturePipeline.transform_features`` (vectorised; unseen categories map to OOV) → the model's
inputs by the manifest's names → the exported graph → {task: score, ..., "score": fused}. A
request's context (the user, their behaviour sequence) can be encoded once and given to the graph
with one row beside the candidates' N rows (:meth:`Predictor.predict_shared`).
"""

from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from mtlrec.errors import DataError, RunDirError
from mtlrec.export import FEATURES, RUNTIMES, read_manifest
from mtlrec.features import FeaturePipeline
from mtlrec.io import CsvFormat, split_text_lists, string_lists
from mtlrec.serving.lookup import FusedLookup


class Predictor:
    """Scores rows with an exported artifact. Build it with :meth:`Predictor.load`.

    Args:
        root: the artifact directory.
        manifest: its verified manifest.
        pipeline: the fitted feature pipeline.
        model: the exported graph, loaded (``OnnxRuntimeModel`` or ``TorchScriptModel``).
    """

    #: Rows per run of the exported graph: larger inputs are scored in slices (bounds the runtime's memory).
    max_batch_rows = 16384

    def __init__(self, root: Path, manifest: dict[str, Any], pipeline: FeaturePipeline, model: Any):
        self.root, self.manifest, self.pipeline, self.model = root, manifest, pipeline, model
        self.output_names: list[str] = list(manifest["outputs"])
        self.input_names: list[str] = [spec["name"] for spec in manifest["inputs"]]
        self._columns = pipeline.column_types(include_labels=False)
        self._separators = pipeline.separators()
        self._fused: FusedLookup | None = None  # built on the first request (serving only)
        self._class_counts = {t["name"]: len(t["classes"]) for t in manifest["tasks"] if t.get("classes")}

    @classmethod
    def load(cls, path: str | Path, threads: int | None = None) -> Predictor:
        """Open the artifact in ``path``: check its format and every file's sha256, then load it.

        Args:
            path: the artifact directory (written by ``mtlrec export``).
            threads: intra-op threads of the runtime (default: every available core).

        Raises:
            RunDirError: not an artifact, unknown format version, a missing or modified file.
        """
        root = Path(path)
        manifest = read_manifest(root)
        try:
            model_format, model_file = manifest["model"]["format"], manifest["model"]["file"]
            pipeline = FeaturePipeline.from_dict(json.loads((root / FEATURES).read_text()))
            input_names = [spec["name"] for spec in manifest["inputs"]]
        except (KeyError, TypeError, ValueError) as exc:
            raise RunDirError(f"{root}: malformed artifact ({type(exc).__name__}: {exc})") from None
        if input_names != [spec.name for spec in pipeline.inputs()]:
            raise RunDirError(f"{root}: the manifest's inputs differ from the feature pipeline's")
        if model_format not in RUNTIMES or not {model_file, FEATURES} <= set(manifest["files"]):
            raise RunDirError(f"{root}: unknown model format {model_format!r}, or model/features not in the manifest")
        model = RUNTIMES[model_format](root / model_file, threads, input_names)
        graph_outputs = getattr(model, "output_names", manifest["outputs"])
        if list(graph_outputs) != list(manifest["outputs"]):
            raise RunDirError(f"{root}: the graph's outputs {graph_outputs} differ from the manifest's")
        return cls(root, manifest, pipeline, model)

    @property
    def metadata(self) -> dict[str, Any]:
        """JSON-safe description: tasks, inputs, raw columns, outputs, fusion, parity, model format and sha256."""
        meta = {key: copy.deepcopy(value) for key, value in self.manifest.items() if key != "files"}
        meta["model"]["sha256"] = self.manifest["files"][meta["model"]["file"]]
        meta["files"] = dict(self.manifest["files"])
        return meta

    @property
    def input_columns(self) -> dict[str, pa.DataType]:
        """The raw columns a table must hold, and the Arrow type each is read as."""
        return dict(self._columns)

    @property
    def separators(self) -> dict[str, str]:
        """The separator of each list column's text form (``a|b|c``)."""
        return dict(self._separators)

    @property
    def task_names(self) -> list[str]:
        """Task names, in output order (the fused ``"score"`` not included)."""
        return [task["name"] for task in self.manifest["tasks"]]

    @property
    def csv_format(self) -> CsvFormat:
        """How the run read CSV files (delimiter, null values, ...), for batch prediction."""
        options = dict(self.manifest.get("csv") or {})
        for key in ("column_names", "null_values"):
            if options.get(key) is not None:
                options[key] = tuple(options[key])
        return CsvFormat(**options)

    def conform(self, table: pa.Table, source: str = "input", required: bool = True) -> pa.Table:
        """The input columns of ``table`` with the types the encoders expect (casting where needed).

        Args:
            required: every input column must be present (else: only those present are returned).

        Raises:
            DataError: a column is missing, or cannot be read as its type (the message names it).
        """
        present = set(table.column_names)  # (``column_names`` builds a new list on every call)
        missing = [name for name in self._columns if name not in present]
        if missing and required:
            raise DataError(
                f"{source}: missing column(s) {', '.join(repr(m) for m in missing)}; "
                f"the model needs {', '.join(self._columns)}"
            )
        names = [name for name in self._columns if name in present]
        separators = self._separators
        arrays = [
            _cast(table.column(name), self._columns[name], name, source, separators.get(name, "|")) for name in names
        ]
        return pa.Table.from_arrays(arrays, names=names)

    def predict(self, table: pa.Table, source: str = "input", log_missing: bool = True) -> dict[str, np.ndarray]:
        """Scores of every row: {task: (N,) or (N, C) class probabilities, ..., "score": (N,) fused}.

        Args:
            table: the raw input columns (extra columns are ignored).
            source: how errors name the input (a file name, "request").
            log_missing: log a warning per numeric column with missing values (filled); servers turn it off.

        Raises:
            DataError: a missing column or a value of the wrong type.
        """
        return self.score(self.encode(table, source, log_missing))

    def encode(self, table: pa.Table, source: str = "input", log_missing: bool = True) -> dict[str, np.ndarray]:
        """Model inputs of the raw rows, by input name (see :meth:`predict`)."""
        return self.pipeline.transform_features(self.conform(table, source), source, log_missing)

    def predict_shared(self, candidates: pa.Table, context: pa.Table, source: str = "request") -> dict[str, np.ndarray]:
        """Scores of N candidates that share one context row (see :meth:`encode_shared`)."""
        return self.score(self.encode_shared(candidates, context, source), candidates.num_rows)

    def predict_merged(
        self, candidates: pa.Table, contexts: pa.Table, owners: np.ndarray, source: str = "request"
    ) -> dict[str, np.ndarray]:
        """Scores of the candidates of several requests in one run: candidate i has context row ``owners[i]``.

        Args:
            candidates: the N candidates of R requests, one after another.
            contexts: R rows, one per request: the columns every request gives once.
            owners: (N,) the context row of each candidate (0 … R-1).
        """
        return self.score(self.encode_shared(candidates, contexts, source, owners), candidates.num_rows)

    def encode_shared(
        self, candidates: pa.Table, context: pa.Table, source: str = "request", owners: np.ndarray | None = None
    ) -> dict[str, np.ndarray]:
        """Inputs of N candidates and their context rows (columns given once for all of them).

        The plain vocabulary features are looked up together (:class:`~mtlrec.serving.lookup.FusedLookup`:
        the same ids, a third of the time for a request's rows). A feature whose columns are all in
        ``context`` is encoded once per context row: with one row
        (one request) its inputs keep that one row (the exported graph broadcasts them); with several
        (requests merged by the server's batcher) each candidate gets its own context row's inputs,
        picked by ``owners``. Any other feature is encoded per candidate, reading its context columns
        repeated.

        Args:
            owners: (N,) the context row of each candidate (default: row 0 for all).
        """
        shared = set(context.column_names)
        given = shared | set(candidates.column_names)
        missing = [name for name in self._columns if name not in given]
        if missing:
            raise DataError(f"{source}: missing column(s) {', '.join(repr(m) for m in missing)}")
        context = self.conform(context, source, required=False)
        candidates = self.conform(candidates, source, required=False)
        owners = np.zeros(candidates.num_rows, dtype=np.int64) if owners is None else np.asarray(owners, np.int64)
        encoders = self.pipeline.encoders
        once = [set(encoder.columns()) <= shared for encoder in encoders]
        repeated = {name for encoder, is_once in zip(encoders, once) if not is_once
                    for name in encoder.columns() if name in shared}  # context columns a per-candidate feature reads
        candidates = _with_context_columns(candidates, context, [name for name in self._columns if name in repeated],
                                           owners)
        fused = {  # the plain vocabulary features: one lookup for those of the context, one for the others'
            **self._fused_lookup(context, [e for e, is_once in zip(encoders, once) if is_once]),
            **self._fused_lookup(candidates, [e for e, is_once in zip(encoders, once) if not is_once]),
        }
        inputs: dict[str, np.ndarray] = {}
        for encoder, is_once in zip(encoders, once):
            if encoder.name in fused:
                encoded = {encoder.name: fused[encoder.name]}
            else:
                encoded = encoder.transform(context if is_once else candidates, source)  # (reads its own columns)
            if is_once and context.num_rows > 1:
                encoded = {k: v[owners] for k, v in encoded.items()}
            inputs.update(encoded)
        return inputs

    def _fused_lookup(self, table: pa.Table, encoders: list[Any]) -> dict[str, np.ndarray]:
        """Ids of the features among ``encoders`` that the fused lookup covers (string columns only)."""
        if self._fused is None:
            self._fused = FusedLookup(self.pipeline.encoders)
        types = dict(zip(table.column_names, table.schema.types))
        covered = [e for e in encoders if self._fused.covers(e) and types.get(e.column) == pa.string()]
        return self._fused.transform(table, covered)

    def score(self, inputs: dict[str, np.ndarray], rows: int | None = None) -> dict[str, np.ndarray]:
        """Outputs of encoded rows (inputs of one row are shared by all), run in slices of at most
        ``max_batch_rows`` (bounded memory)."""
        rows = max(len(value) for value in inputs.values()) if rows is None else rows
        if rows == 0:
            return {name: np.zeros((0, *self.output_shape(name)), np.float32) for name in self.output_names}
        step = self.max_batch_rows

        def part(start: int) -> dict[str, np.ndarray]:
            return {name: value if len(value) == 1 < rows else value[start : start + step]
                    for name, value in inputs.items()}

        parts = [self.model.run(part(start)) for start in range(0, rows, step)]
        if len(parts) == 1:
            return dict(zip(self.output_names, parts[0]))
        return {name: np.concatenate([part[index] for part in parts]) for index, name in enumerate(self.output_names)}

    def output_shape(self, name: str) -> tuple[int, ...]:
        """Per-row shape of an output: () for a single score, (C,) for a multi-class task's probabilities."""
        return (self._class_counts[name],) if name in self._class_counts else ()


def _with_context_columns(candidates: pa.Table, context: pa.Table, names: list[str], owners: np.ndarray) -> pa.Table:
    """The candidates with these context columns, each candidate's row (``owners``) repeated, in place of
    any of their own."""
    if not names:
        return candidates
    repeat = pa.array(owners)
    candidates = candidates.drop_columns([name for name in names if name in candidates.column_names])
    for name in names:
        candidates = candidates.append_column(name, context.column(name).take(repeat))
    return candidates


def _cast(column: pa.ChunkedArray, dtype: pa.DataType, name: str, source: str, separator: str = "|") -> pa.ChunkedArray:
    if column.type == dtype:
        return column
    if pa.types.is_list(dtype) and (pa.types.is_string(column.type) or pa.types.is_large_string(column.type)):
        return split_text_lists(column, separator)
    if pa.types.is_list(dtype) and pa.types.is_list(column.type):
        return pa.chunked_array([string_lists(column)])
    if pa.types.is_dictionary(column.type):
        column = pc.cast(column, column.type.value_type)
    try:
        return pc.cast(column, dtype)
    except (pa.ArrowInvalid, pa.ArrowNotImplementedError) as exc:
        raise DataError(f"{source}: column '{name}' of type {column.type} cannot be read as {dtype} ({exc})") from None
