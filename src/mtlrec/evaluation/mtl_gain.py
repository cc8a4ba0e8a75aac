"""MTL gain against single-task baselines over several seeds: means, t intervals, Δm and the seesaw flag.

Pure functions of per-seed metric values; nothing here trains or reads a config.

* MTL gain of task t (Tang, Liu, Zhao, Gong, "Progressive Layered Extraction (PLE)", RecSys 2020,
  Eq. 11): ``M_MTL − M_single`` for a metric where higher is better (AUC), ``M_single − M_MTL``
  where lower is better (MSE, logloss). A positive gain always means multi-task learning helped.
* Its interval is Welch's t interval for the difference of two means (unequal variances, Welch–
  Satterthwaite degrees of freedom) over the per-seed values of the two models. Runs are **not**
  paired by seed: a seed fixes the initialisation and batch order of one model, which share nothing
  with the other model's run of the same seed.
* Δm (Maninis, Radosavovic, Kokkinos, CVPR 2019; Vandenhende et al., TPAMI 2021):
  ``100/T · Σ_t (−1)^{l_t} (M_m,t − M_b,t) / M_b,t`` in percent, ``l_t = 1`` when lower is better.
* Seesaw (the phenomenon named in the PLE paper's introduction): some task's gain interval lies entirely above 0
  while another's lies entirely below 0.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np
from scipy import stats


@dataclass(frozen=True)
class SeedSummary:
    """Mean of a metric over N seeds with its Student t confidence interval.

    Attributes:
        n: number of values.
        mean: their mean.
        std: sample standard deviation (ddof=1); NaN when n < 2.
        ci_low: ``mean ∓ t_{(1+c)/2, n−1} · std / √n``; NaN when n < 2.
        ci_high: ``mean ∓ t_{(1+c)/2, n−1} · std / √n``; NaN when n < 2.
    """

    n: int
    mean: float
    std: float
    ci_low: float
    ci_high: float


@dataclass(frozen=True)
class Gain:
    """MTL gain of one task (positive = the multi-task model is better) with its Welch interval.

    Attributes:
        gain: PLE Eq. 11, ``M_MTL − M_single`` (sign flipped when lower is better).
        ci_low: Welch t interval of the gain; NaN when either side has fewer than 2 values.
        ci_high: Welch t interval of the gain; NaN when either side has fewer than 2 values.
        df: Welch–Satterthwaite degrees of freedom (inf when both standard deviations are 0, in which
            case the interval is the point ``[gain, gain]``).
    """

    gain: float
    ci_low: float
    ci_high: float
    df: float

    @property
    def direction(self) -> int:
        """+1 when the interval lies entirely above 0, −1 entirely below 0, else 0 (not significant)."""
        if self.ci_low > 0:
            return 1
        if self.ci_high < 0:
            return -1
        return 0


def _values(values: Sequence[float], what: str) -> np.ndarray:
    array = np.asarray(values, dtype=np.float64)
    if array.ndim != 1 or array.size == 0:
        raise ValueError(f"{what}: expected a non-empty 1-D sequence of values, got shape {array.shape}")
    return array


def summarize_seeds(values: Sequence[float], confidence: float = 0.95) -> SeedSummary:
    """Mean, std (ddof=1) and the Student t confidence interval of the mean of per-seed values.

    Args:
        values: (N,) one metric value per seed.
        confidence: coverage of the interval (0.95 for a 95% interval).
    """
    array = _values(values, "values")
    n, mean = array.size, float(array.mean())
    if n < 2:
        return SeedSummary(n, mean, math.nan, math.nan, math.nan)
    std = float(array.std(ddof=1))
    half = float(stats.t.ppf((1 + confidence) / 2, n - 1)) * std / math.sqrt(n)
    return SeedSummary(n, mean, std, mean - half, mean + half)


def mtl_gain(
    mtl_values: Sequence[float],
    single_values: Sequence[float],
    higher_is_better: bool,
    confidence: float = 0.95,
) -> Gain:
    """MTL gain (PLE paper Eq. 11) of one task and its Welch t interval over unpaired seeds.

    Args:
        mtl_values: (N_m,) the multi-task model's metric, one value per seed.
        single_values: (N_s,) the single-task baseline's metric, one value per seed.
        higher_is_better: the metric's direction (AUC: True; MSE, logloss: False).
        confidence: coverage of the interval.
    """
    mtl, single = _values(mtl_values, "mtl_values"), _values(single_values, "single_values")
    sign = 1.0 if higher_is_better else -1.0
    gain = sign * float(mtl.mean() - single.mean())
    if mtl.size < 2 or single.size < 2:
        return Gain(gain, math.nan, math.nan, math.nan)
    var_m, var_s = mtl.var(ddof=1) / mtl.size, single.var(ddof=1) / single.size
    se = math.sqrt(var_m + var_s)
    if se == 0.0:
        return Gain(gain, gain, gain, math.inf)
    df = (var_m + var_s) ** 2 / (var_m**2 / (mtl.size - 1) + var_s**2 / (single.size - 1))
    half = float(stats.t.ppf((1 + confidence) / 2, df)) * se
    return Gain(gain, gain - half, gain + half, float(df))


def delta_m(
    mtl_means: Mapping[str, float], single_means: Mapping[str, float], higher_is_better: Mapping[str, bool]
) -> float:
    """Δm in percent: the mean over tasks of the signed relative change against the baseline.

    ``Δm = 100/T · Σ_t (−1)^{l_t} (M_m,t − M_b,t) / M_b,t`` with ``l_t = 1`` when lower is better
    (Maninis et al., CVPR 2019; Vandenhende et al., TPAMI 2021). Positive = better on average.

    Args:
        mtl_means: {task: the multi-task model's mean metric}.
        single_means: {task: the baseline's mean metric}, same tasks.
        higher_is_better: {task: the direction of that task's metric}.
    """
    if not mtl_means or set(mtl_means) != set(single_means) or set(mtl_means) - set(higher_is_better):
        raise ValueError(
            f"delta_m needs the same non-empty tasks on both sides, got {sorted(mtl_means)} and {sorted(single_means)}"
        )
    terms = [
        (1.0 if higher_is_better[t] else -1.0) * (mtl_means[t] - single_means[t]) / single_means[t] for t in mtl_means
    ]
    return 100.0 * float(np.mean(terms))


def is_seesaw(gains: Mapping[str, Gain]) -> bool:
    """True when one task's gain interval lies entirely above 0 and another's entirely below 0."""
    directions = {gain.direction for gain in gains.values()}
    return {1, -1} <= directions
