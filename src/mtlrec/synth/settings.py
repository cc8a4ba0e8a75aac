"""Settings of the synthetic cascade generator, checked when built (errors are :class:`ConfigError`)."""

from __future__ import annotations

import re
from dataclasses import dataclass, fields

from mtlrec.errors import ConfigError

DEFAULT_RATES = (0.04, 0.10, 0.30)  # CTR, CVR | click, next stage | conversion (and any later stage)
_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")


@dataclass(frozen=True)
class CascadeSettings:
    """What the synthetic cascade looks like (see :mod:`mtlrec.synth.cascade` for the model).

    Attributes:
        stages: label names of the funnel stages, in order (the first is the click).
        rates: target P(stage k | stage k−1) per stage; None means 4%, 10%, then 30% for each later stage.
        num_categorical: categorical id columns ``c0..``.
        min_cardinality: distinct ids of the smallest categorical column.
        max_cardinality: distinct ids of the largest; the others are spaced geometrically between.
        zipf_exponent: a in P(id of popularity rank r) ∝ r^-a.
        num_numeric: numeric columns ``x0..`` (even ones log-normal, odd ones Gaussian).
        num_domains: 0 for no ``domain`` column, else its number of domains (different base rates).
        domain_spread: standard deviation of the domains' logit offsets.
        num_interactions: pairs of categorical columns with a low-rank interaction effect (None: up to 2).
        stage_correlation: correlation ρ of each parameter between stages (0 unrelated, 1 the same).
        signal: standard deviation of each stage's logit before bias (higher = easier labels).
        id_type: ``int`` or ``str`` values in the categorical and domain columns.
        calibration_rows: rows of the sample the group scales and biases are fitted on.
    """

    stages: tuple[str, ...] = ("click", "conversion")
    rates: tuple[float, ...] | None = None
    num_categorical: int = 8
    min_cardinality: int = 10
    max_cardinality: int = 100_000
    zipf_exponent: float = 1.1
    num_numeric: int = 4
    num_domains: int = 0
    domain_spread: float = 0.5
    num_interactions: int | None = None
    stage_correlation: float = 0.6
    signal: float = 1.2
    id_type: str = "int"
    calibration_rows: int = 200_000

    def __post_init__(self) -> None:
        object.__setattr__(self, "stages", tuple(self.stages))
        if self.num_interactions is None:
            object.__setattr__(self, "num_interactions", min(2, self.num_categorical * (self.num_categorical - 1) // 2))
        if self.rates is not None:
            object.__setattr__(self, "rates", tuple(float(rate) for rate in self.rates))
        self._check_stages()
        self._check_counts()
        if not 0.0 <= self.stage_correlation <= 1.0:
            raise ConfigError(f"stage_correlation must be in [0, 1], got {self.stage_correlation}")
        if self.signal < 0 or self.domain_spread < 0 or self.zipf_exponent <= 0:
            raise ConfigError("signal and domain_spread must be >= 0 and zipf_exponent > 0")
        if self.id_type not in ("int", "str"):
            raise ConfigError(f"id_type must be 'int' or 'str', got {self.id_type!r}")

    def _check_stages(self) -> None:
        if not self.stages:
            raise ConfigError("stages: give at least one stage name, e.g. click,conversion")
        for stage in self.stages:
            if not isinstance(stage, str) or not _NAME.match(stage):
                raise ConfigError(f"stages: {stage!r} is not a valid name (letters, digits and _, no leading digit)")
        taken = set(self.categorical_names()) | set(self.numeric_names()) | set(self.probability_names())
        if self.num_domains:
            taken.add("domain")
        if len(set(self.stages)) != len(self.stages):
            raise ConfigError(f"stages: names must be distinct, got {list(self.stages)}")
        clashes = sorted(set(self.stages) & taken)
        if clashes:
            raise ConfigError(f"stages: {clashes} would clash with generated feature or probability columns")
        if self.rates is not None and len(self.rates) != len(self.stages):
            raise ConfigError(f"rates: {len(self.rates)} given for {len(self.stages)} stages")
        if not all(0.0 < rate < 1.0 for rate in self.resolved_rates()):
            raise ConfigError(f"rates must be in (0, 1), got {list(self.resolved_rates())}")

    def _check_counts(self) -> None:
        for name in ("num_categorical", "num_numeric", "num_domains", "num_interactions"):
            if getattr(self, name) < 0:
                raise ConfigError(f"{name} must be >= 0, got {getattr(self, name)}")
        if self.num_categorical + self.num_numeric == 0:
            raise ConfigError("give at least one categorical or numeric column")
        if not 2 <= self.min_cardinality <= self.max_cardinality <= 10_000_000:
            raise ConfigError("cardinalities must satisfy 2 <= min_cardinality <= max_cardinality <= 10,000,000")
        pairs = self.num_categorical * (self.num_categorical - 1) // 2
        if self.num_interactions > pairs:
            count = self.num_categorical
            raise ConfigError(f"num_interactions={self.num_interactions}, but {count} columns make {pairs} pairs")
        if self.calibration_rows < 1000:
            raise ConfigError(f"calibration_rows must be >= 1000, got {self.calibration_rows}")

    @classmethod
    def resolve(cls, settings: CascadeSettings | None, options: dict) -> CascadeSettings:
        """``settings`` or, when None, settings built from keyword ``options`` (not both)."""
        if settings is not None and options:
            raise ConfigError(f"give settings or keyword options, not both (got {sorted(options)})")
        if settings is not None:
            return settings
        unknown = sorted(set(options) - {f.name for f in fields(cls)})
        if unknown:
            raise ConfigError(f"unknown cascade settings {unknown}; choose from {[f.name for f in fields(cls)]}")
        return cls(**options)

    @staticmethod
    def check_run(**values: int) -> None:
        """Raise ConfigError unless each value is an integer >= 1 (>= 0 for ``seed``), e.g. ``rows=...``."""
        for name, value in values.items():
            low = 0 if name == "seed" else 1
            if isinstance(value, bool) or not isinstance(value, int) or value < low:
                raise ConfigError(f"{name} must be an integer >= {low}, got {value!r}")

    def resolved_rates(self) -> tuple[float, ...]:
        """Target P(stage k | stage k−1) per stage."""
        if self.rates is not None:
            return self.rates
        return tuple(DEFAULT_RATES[min(k, len(DEFAULT_RATES) - 1)] for k in range(len(self.stages)))

    def categorical_names(self) -> list[str]:
        return [f"c{j}" for j in range(self.num_categorical)]

    def numeric_names(self) -> list[str]:
        return [f"x{m}" for m in range(self.num_numeric)]

    def probability_names(self) -> list[str]:
        return [f"p_{stage}" for stage in self.stages]
