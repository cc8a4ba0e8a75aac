"""The ``tune`` section: the hyper-parameter search space of ``mtlrec tune`` and how the search runs."""

from __future__ import annotations

from typing import Any

from pydantic import Field, model_validator

from mtlrec.config.base import Strict


class SearchDimension(Strict):
    """One searched value: a list of ``choices``, or a range from ``low`` to ``high``.

    A range of integers (``low``, ``high`` and any ``step`` integers) draws integers; ``log: true``
    draws uniformly in log space (learning rates, regularisation strengths).
    """

    choices: list[Any] | None = Field(
        None, min_length=1, description="The values to choose from (numbers, strings, lists such as [256, 128])."
    )
    low: float | None = Field(None, description="Smallest value of a range.")
    high: float | None = Field(None, description="Largest value of a range.")
    log: bool = Field(False, description="Draw the range in log space (needs low > 0).")
    step: float | None = Field(None, gt=0, description="Grid step of the range (not with log).")

    @model_validator(mode="after")
    def _choices_or_range(self) -> SearchDimension:
        ranged = self.low is not None or self.high is not None
        if (self.choices is None) == (not ranged):
            raise ValueError("give either choices or low and high")
        if ranged:
            if self.low is None or self.high is None:
                raise ValueError("a range needs both low and high")
            if self.low >= self.high:
                raise ValueError(f"low ({self.low:g}) must be below high ({self.high:g})")
            if self.log and self.low <= 0:
                raise ValueError("log needs low > 0")
            if self.log and self.step is not None:
                raise ValueError("give log or step, not both")
        return self

    @property
    def integer(self) -> bool:
        """Whether the range draws integers (bounds and step given as integers)."""
        values = [self.low, self.high] + ([self.step] if self.step is not None else [])
        return self.choices is None and all(float(v).is_integer() and not isinstance(v, bool) for v in values)

    def extremes(self) -> list[Any]:
        """The values a config must accept: every choice, or both ends of the range."""
        if self.choices is not None:
            return list(self.choices)
        return [int(self.low), int(self.high)] if self.integer else [self.low, self.high]


class PruningConfig(Strict):
    """Stop bad trials early: Optuna's median rule over the step-level validation (``train.eval_every_steps``).

    A trial is compared with the others at the same number of training rows seen, so trials of different
    batch sizes meet where their evaluations coincide.
    """

    startup_trials: int = Field(5, ge=0, description="Trials that always run to the end before any is pruned.")
    warmup_evaluations: int = Field(
        1, ge=0, description="Evaluations of a trial before it may be pruned (its first ones are noisy)."
    )


class TuneConfig(Strict):
    """What ``mtlrec tune`` searches and how.

    Each trial trains the config with one value per dimension and is scored by its model-selection
    criterion on the validation split (``train.early_stopping.metric``); test metrics are recorded, never
    used to choose.
    """

    space: dict[str, SearchDimension] = Field(
        min_length=1,
        description="{config path: dimension}, e.g. {train.lr: {low: 1e-4, high: 1e-2, log: true}}. A path may "
        "name a list item by its name (features.c19.min_count, tasks.click.weight) or every item that has the "
        "key with '*' (features.*.min_count).",
    )
    trials: int = Field(30, gt=0, description="Trials in the whole search (mtlrec tune --trials overrides).")
    seed: int = Field(0, description="Seed of the TPE sampler.")
    pruning: PruningConfig | None = Field(
        default_factory=PruningConfig, description="null: every trial runs to its end."
    )
