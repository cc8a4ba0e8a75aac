"""The configuration's pydantic models: data, features, tasks, model, weighting, training."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import Field, field_validator, model_validator

from mtlrec.config.base import Strict
from mtlrec.config.easyrec import translate_task_towers
from mtlrec.config.features import EVERY_FEATURE, Feature, resolve_groups
from mtlrec.config.tune import TuneConfig

SplitName = Literal["train", "valid", "test"]


class CsvOptions(Strict):
    """How CSV files are parsed (pyarrow's CSV reader underneath)."""

    delimiter: str = Field(",", min_length=1, max_length=1)
    header: bool = Field(True, description="The first line holds the column names.")
    column_names: list[str] | None = Field(
        None, description="Column names when the file has no header (or to rename the header's)."
    )
    null_values: list[str] = Field(
        default_factory=lambda: ["", "NA", "NaN", "nan", "null", "NULL", "?"],
        description="Strings read as missing values.",
    )
    strip_whitespace: bool = Field(True, description="Strip spaces around string values.")
    bad_rows: Literal["error", "skip"] = Field(
        "error", description="Rows with the wrong number of fields: stop with an error, or skip and count."
    )


class SplitOptions(Strict):
    """Carve splits out of one file at random (seeded); the source split keeps the remaining rows."""

    source: SplitName
    fractions: dict[SplitName, float]
    seed: int = 0
    ordered: bool = Field(
        False,
        description="Take the fractions from the end of the file, one block per split in the order given (a "
        "time-ordered log: train on the earlier rows, test on the later), instead of at random.",
    )

    @model_validator(mode="after")
    def _check(self) -> SplitOptions:
        if self.source in self.fractions:
            raise ValueError(f"fractions must not name the source split '{self.source}'")
        if any(not 0.0 < f < 1.0 for f in self.fractions.values()):
            raise ValueError("every fraction must be in (0, 1)")
        if sum(self.fractions.values()) >= 1.0:
            raise ValueError("fractions must add up to less than 1 (the source split keeps the rest)")
        return self


class StreamingOptions(Strict):
    """Training data streamed from disk (bounded memory) instead of read whole into memory."""

    shuffle_buffer_rows: int = Field(
        262144, ge=0, description="Rows held by the shuffle buffer (0: only the file/row-group order is shuffled)."
    )
    prefetch_batches: int = Field(8, ge=0, description="Batches a background thread prepares ahead (0: no thread).")
    fit_sample_rows: int = Field(
        1_000_000, gt=0, description="Values sampled per numeric column for a median fill and quantile buckets."
    )
    max_distinct_values: int = Field(
        5_000_000,
        gt=0,
        description="Distinct values counted per categorical column; beyond, the feature is hashed into "
        "max_vocab_size (or this many) buckets, with a warning.",
    )


class DataConfig(Strict):
    """Where the data is and how to read it."""

    format: Literal["csv", "parquet"] | None = Field(
        None, description="File format; inferred from the extension (.csv, .csv.gz, .parquet) when absent."
    )
    train: str = Field(description="A file, a directory of .csv/.parquet files, or a glob (data/part-*.parquet).")
    valid: str | None = None
    test: str | None = None
    split: SplitOptions | None = None
    csv: CsvOptions = Field(default_factory=CsvOptions)
    read_batch_rows: int = Field(65536, gt=0, description="Rows per record batch read from disk.")
    streaming: StreamingOptions | None = Field(
        None,
        description="true (or options): stream the training data in record batches through a shuffle buffer "
        "instead of holding it in memory; valid/test stay in memory.",
    )

    @field_validator("streaming", mode="before")
    @classmethod
    def _streaming_flag(cls, value: Any) -> Any:
        if value is True:
            return {}
        return None if value is False else value

    @model_validator(mode="after")
    def _check_split(self) -> DataConfig:
        if self.split is not None and self.streaming is not None:
            raise ValueError("split needs the whole table in memory; with streaming, give valid/test files")
        if self.split is not None:
            if getattr(self, self.split.source) is None:
                raise ValueError(f"split.source '{self.split.source}' has no file")
            for target in self.split.fractions:
                if getattr(self, target) is not None:
                    raise ValueError(f"split would overwrite '{target}', which already has a file")
        return self


class LabelTransform(Strict):
    """Transforms of a regression target, applied in this order; predictions come back in the original unit."""

    clip: tuple[float, float] | None = Field(None, description="[low, high] bounds applied first.")
    log1p: bool = Field(False, description="Learn log(1 + y) (e.g. watch time).")
    standardize: bool = Field(False, description="Learn (y - mean) / std with the training mean and std.")

    @property
    def active(self) -> bool:
        return self.clip is not None or self.log1p or self.standardize

    @model_validator(mode="after")
    def _check(self) -> LabelTransform:
        if self.clip is not None and not self.clip[0] < self.clip[1]:
            raise ValueError("clip needs [low, high] with low < high")
        return self


class LabelConfig(Strict):
    """How a task's label is read: a binary rule (positive values or threshold) or a number."""

    column: str
    positive: list[str | int | float] | None = Field(None, min_length=1, description="Values that mean 1.")
    negative: list[str | int | float] | None = Field(
        None, description="Values that mean 0; with `positive`, any other value is an error."
    )
    threshold: float | None = Field(None, description="label = 1 if value > threshold.")
    classes: list[str | int | float] | None = Field(
        None, min_length=2, description="Class values of a multi-class (softmax_ce) task, in output order."
    )
    transform: LabelTransform = Field(default_factory=LabelTransform, description="Regression targets only.")
    missing: Literal["error", "mask"] = Field(
        "error", description="A missing (null/NaN) label: stop with an error naming the row, or mask the row."
    )

    @model_validator(mode="after")
    def _check(self) -> LabelConfig:
        if self.threshold is not None and (self.positive is not None or self.negative is not None):
            raise ValueError("use either threshold or positive/negative values, not both")
        if self.classes is not None and (self.positive is not None or self.threshold is not None):
            raise ValueError("classes make a multi-class label; do not combine them with positive/threshold")
        if self.negative is not None and self.positive is None:
            raise ValueError("negative values need positive values too")
        return self


class GradientReversalConfig(Strict):
    """The gradient reversal in front of an adversarial task's tower (Ganin & Lempitsky, ICML 2015)."""

    strength: float = Field(1.0, gt=0.0, description="λ: the reversed gradient's scale once ramped up.")
    ramp_steps: int = Field(
        0, ge=0, description="Training steps over which λ rises from 0 on the paper's schedule (0: constant)."
    )


TaskRole = Literal["main", "auxiliary", "adversarial"]


class TaskConfig(Strict):
    """One prediction task: its label, loss, metrics, static weight, sample space and tower."""

    name: str
    label: LabelConfig
    loss: str = Field("bce", description="A loss from `mtlrec list` (bce, focal, mse, huber, softmax_ce).")
    loss_params: dict[str, Any] = Field(
        default_factory=dict, description="The loss's parameters, e.g. {gamma: 2} for focal, {delta: 1} for huber."
    )
    metrics: list[str] | None = Field(None, description="Defaults: auc+logloss (binary), rmse+mae (regression).")
    weight: float = Field(1.0, ge=0.0, description="Used by the `fixed` weighting.")
    sample_space: str | None = Field(
        None,
        description="A condition over data columns, e.g. 'click == 1': the task learns and is evaluated "
        "only on rows where it holds.",
    )
    sample_weight: str | None = Field(
        None,
        description="Each row's loss weight: a column name or a formula over columns, e.g. '1 + 2*like + 5*share'.",
    )
    tower_hidden_units: list[int] | None = Field(
        None, description="This task's tower widths (overrides the architecture's tower_hidden_units)."
    )
    role: TaskRole = Field(
        "main",
        description="main: selected on, exported and served. auxiliary: trained and evaluated only to help the "
        "main tasks (out of default model selection, exports, serving, predictions and fusion). adversarial: an "
        "auxiliary task whose tower reads the shared representation through a gradient reversal, so that the "
        "shared part learns not to carry its label (e.g. the scenario).",
    )
    reversal: GradientReversalConfig | None = Field(
        None, description="Adversarial tasks: the gradient reversal's strength and ramp (default: strength 1)."
    )

    @model_validator(mode="after")
    def _reversal_for_adversarial(self) -> TaskConfig:
        if self.reversal is not None and self.role != "adversarial":
            raise ValueError(f"reversal applies to role 'adversarial' only; this task's role is '{self.role}'")
        return self

    @property
    def served(self) -> bool:
        """Whether the task is a main task: selected on by default, exported, served and fused."""
        return self.role == "main"


class FeatureSelectionConfig(Strict):
    """Per-task feature selection: every task learns a gate in (0, 2) per input field (or feature group)."""

    over: Literal["fields", "groups"] = Field(
        "fields", description="Gate each feature (an embedding, a pooled list, a dense value) or each input group."
    )
    sparsity: float = Field(0.0, ge=0.0, description="L1 penalty on the gates (mean gate value), towards 0.")


class ModelConfig(Strict):
    """The architecture and its parameters (validated against its constructor by build)."""

    architecture: str
    embedding_dim: int = Field(16, gt=0, description="Width of every embedding table that sets none of its own.")
    embedding_dropout: float = Field(
        0.0,
        ge=0.0,
        lt=1.0,
        description="Dropout on the embedded inputs (ids, bags, encoded sequences) while training; the "
        "architecture's own 'dropout' param covers experts and towers.",
    )
    input_groups: list[str] | None = Field(
        None,
        description="Feature groups concatenated into the architecture's input, in order; default: every group "
        "the architecture does not read by role (e.g. star's 'domain').",
    )
    params: dict[str, Any] = Field(default_factory=dict)
    feature_selection: FeatureSelectionConfig | None = Field(
        None,
        description="Per-task feature gates in front of the architecture (which task reads which features; "
        "drawn in the report). Costs T× the architecture's compute: it runs once per task's gated input.",
    )

    @model_validator(mode="before")
    @classmethod
    def _moved_keys(cls, raw: Any) -> Any:
        if isinstance(raw, dict) and "domain_feature" in raw:
            raise ValueError(
                "domain_feature is now a feature group: write feature_groups: {all: ['*'], domain: "
                f"[{raw['domain_feature']}]}} and remove model.domain_feature"
            )
        return raw


class WeightingConfig(Strict):
    name: str = "equal"
    params: dict[str, Any] = Field(default_factory=dict)


class EarlyStoppingConfig(Strict):
    """Model selection and early stopping on validation metrics (the validation split only)."""

    metric: str | None = Field(
        None,
        description="The criterion on the validation split: 'task.metric', or a formula over them, e.g. "
        "'0.7 * click.auc + 0.3 * conversion.auc'; default: the first task's first metric.",
    )
    mode: Literal["max", "min"] | None = Field(
        None, description="Maximise or minimise the criterion; inferred from the metrics' directions when they agree."
    )
    constraints: list[str] = Field(
        default_factory=list,
        description="Conditions on validation metrics, e.g. 'conversion.auc >= 0.8': an evaluation that meets them "
        "all is always preferred to one that does not.",
    )
    patience: int = Field(
        3, ge=1, description="Evaluations without improvement before stopping (epochs, or train.eval_every_steps)."
    )
    min_delta: float = Field(0.0, ge=0.0)


class TrainConfig(Strict):
    batch_size: int = Field(1024, gt=0)
    epochs: int = Field(10, gt=0)
    max_steps: int | None = Field(
        None,
        gt=0,
        description="End training after this many steps (batches), even inside an epoch; the learning-rate "
        "schedule then spans these steps.",
    )
    eval_every_steps: int | None = Field(
        None,
        gt=0,
        description="Also evaluate on the validation split every N steps (besides each epoch's end): model "
        "selection, early stopping (patience counts evaluations) and the resumable checkpoint then work at "
        "that granularity.",
    )
    optimizer: Literal["adam", "adamw"] = "adam"
    lr: float = Field(1e-3, gt=0.0)
    embedding_lr: float | None = Field(None, gt=0.0, description="Sparse Adam on embeddings; default: lr.")
    lr_schedule: Literal["constant", "cosine"] = Field(
        "constant",
        description="A function of the global step. cosine: decay every learning rate to 0 over the run's steps "
        "(all epochs', or max_steps).",
    )
    warmup_steps: int = Field(0, ge=0, description="Linear learning-rate warm-up steps.")
    weight_decay: float = Field(0.0, ge=0.0, description="Dense parameters only.")
    embedding_weight_decay: float = Field(
        0.0,
        ge=0.0,
        description="Lazy L2 on the embedding rows each batch touches (λ·e added to their gradient, as "
        "EasyRec's embedding_regularization penalises looked-up embeddings); untouched rows are left alone.",
    )
    seed: int = 0
    threads: int | None = Field(None, gt=0, description="torch intra-op threads; default: torch's choice.")
    eval_batch_size: int = Field(16384, gt=0)
    precision: Literal["auto", "fp32", "bf16"] = Field(
        "auto",
        description="bf16: the training forward pass runs under bfloat16 autocast (matmuls in bf16; weights, "
        "losses and optimizer in fp32); auto: bf16 where the device computes it natively (a CPU with "
        "avx512_bf16/AMX, a GPU with bf16), else fp32. Evaluation stays fp32.",
    )
    compile: bool | Literal["auto"] = Field(
        False,
        description="Compile the architecture and the sequence encoders with torch.compile (forward and "
        "backward; embedding lookups stay eager). auto: compile when a probe on the first batch shows a "
        "gain. The first step then takes the compilation (seconds to a minute).",
    )
    early_stopping: EarlyStoppingConfig | None = Field(default_factory=EarlyStoppingConfig)
    log_every: int = Field(200, gt=0, description="Steps between plain log lines when not on a TTY.")
    device: Literal["auto", "cpu", "cuda"] = Field(
        "auto", description="auto: the GPU (cuda:LOCAL_RANK) when torch sees one, else the CPU."
    )


class EvaluationConfig(Strict):
    """How metrics are computed."""

    group_by: str | None = Field(
        None,
        description="Data column grouping rows for the gauc metric (e.g. user_id): AUC per group, "
        "impression-weighted; groups with one class only are skipped.",
    )


class DiagnosticsConfig(Strict):
    """Training diagnostics written to the run's ``diagnostics.json`` (and read by ``mtlrec report``)."""

    every_steps: int = Field(
        200,
        ge=0,
        description="Sample per-task gradient cosines, gate weights and loss weights every N training steps "
        "(0: off; the label correlation is still computed).",
    )
    gate_collapse_share: float = Field(
        0.9, gt=0.0, le=1.0, description="Alarm when one expert's mean share of a gate reaches this."
    )
    dead_expert_share: float = Field(
        0.01, ge=0.0, lt=1.0, description="Alarm when an expert's largest mean share over all gates is at most this."
    )
    tensorboard: bool = Field(
        False, description="Also log the sampled values to TensorBoard (RUN_DIR/tensorboard; needs `tensorboard`)."
    )


class FusionConfig(Strict):
    """How task scores combine into the one ranking score of an exported model; exactly one key.

    Scores are in their original unit (probabilities, regression values); multi-class tasks cannot enter.
    """

    formula: str | None = Field(
        None, description="An expression over task names, e.g. 'ctr * log1p(duration)' or 'ctr^0.5 * cvr'."
    )
    weighted_sum: dict[str, float] | None = Field(None, description="{task: weight}: sum of weight * score.")
    weighted_product: dict[str, float] | None = Field(
        None, description="{task: exponent}: product of score ^ exponent."
    )

    @model_validator(mode="after")
    def _exactly_one(self) -> FusionConfig:
        given = [name for name in ("formula", "weighted_sum", "weighted_product") if getattr(self, name) is not None]
        if len(given) != 1:
            raise ValueError(f"give exactly one of formula, weighted_sum, weighted_product (got {given or 'none'})")
        weights = self.weighted_sum if self.weighted_sum is not None else self.weighted_product
        if weights is not None and not weights:
            raise ValueError(f"{given[0]} needs at least one task")
        return self


class ServingConfig(Strict):
    """What an exported model serves besides the task scores."""

    fusion: FusionConfig | None = Field(
        None, description="The fused score ('score'); default: the first binary or regression task's score."
    )


class Config(Strict):
    """The whole run configuration."""

    data: DataConfig
    features: list[Feature] = Field(min_length=1)
    feature_groups: dict[str, list[str]] | None = Field(
        None,
        description="Named groups of features, e.g. {user: [...], item: [...]} ('*' = every feature); default: one "
        "group 'all' of every feature. An architecture reads its input groups side by side, and some read a group "
        "by role (star's 'domain').",
    )
    tasks: list[TaskConfig] = Field(min_length=1)
    model: ModelConfig
    weighting: WeightingConfig = Field(default_factory=WeightingConfig)
    train: TrainConfig = Field(default_factory=TrainConfig)
    evaluation: EvaluationConfig = Field(default_factory=EvaluationConfig)
    diagnostics: DiagnosticsConfig = Field(default_factory=DiagnosticsConfig)
    serving: ServingConfig = Field(default_factory=ServingConfig)
    tune: TuneConfig | None = Field(None, description="The search space of `mtlrec tune` (ignored by training).")

    @model_validator(mode="before")
    @classmethod
    def _translate_task_towers(cls, raw: Any) -> Any:
        """Accept EasyRec's ``task_towers`` list in place of ``tasks``."""
        return translate_task_towers(raw)

    @model_validator(mode="after")
    def _unique_names(self) -> Config:
        for section, names in (("features", [f.name for f in self.features]), ("tasks", [t.name for t in self.tasks])):
            duplicates = sorted({n for n in names if names.count(n) > 1})
            if duplicates:
                raise ValueError(f"{section}: duplicate names {duplicates}")
        return self

    @model_validator(mode="after")
    def _a_main_task(self) -> Config:
        if not any(task.served for task in self.tasks):
            raise ValueError("tasks: every task is auxiliary or adversarial; at least one needs role 'main'")
        return self

    @model_validator(mode="after")
    def _groups_name_features(self) -> Config:
        names = [f.name for f in self.features]
        for group, members in (self.feature_groups or {}).items():
            unknown = [m for m in members if m not in names and m != EVERY_FEATURE]
            if unknown:
                raise ValueError(f"feature_groups.{group}: unknown feature(s) {unknown}; the features are {names}")
            if not members:
                raise ValueError(f"feature_groups.{group}: an empty group")
        grouped = {m for members in self.groups.values() for m in members}
        queries = {q for f in self.features if f.kind == "sequence" for q in f.encoder.query}
        unused = [name for name in names if name not in grouped | queries]
        if unused:
            raise ValueError(f"feature(s) {unused} are in no feature group: add them to one, or remove them")
        return self

    @property
    def groups(self) -> dict[str, list[str]]:
        """The feature groups with '*' expanded (default: {all: every feature})."""
        return resolve_groups(self.feature_groups, self.features)
