"""Synthetic impression → click → conversion → ... cascades drawn from a known ground-truth model.

No real conversion data ships with the project; this generator gives ESMM/AITM-style experiments a
funnel whose true probabilities are known, so a model's AUC can be compared with the ceiling.

Each row has a ``domain`` d (optional), categorical columns ``c0..`` (Zipf-popular ids, rank r_j),
numeric columns ``x0..`` (log-normal or Gaussian, with standard-normal score u_m) and T funnel
labels. For stage k (0 = click) the hidden logit is

    z_k = s · ( a_cat · Σ_j w_j · E_j[r_j, k]                                 / σ_cat,k
              + a_num · m_d · (Σ_m A[m,k] tanh(b_m u_m + c_m)
                               + Σ_m B[m,k] (u_m² − 1)/2 + q_k u_0 u_1)        / σ_num,k
              + a_int · Σ_(i,j) <P_ij[r_i, :, k], Q_ij[r_j, :, k]> / √R        / σ_int,k )
          + o[d, k]

    p_k = σ(z_k + β_k) = P(stage k | stage k−1, features),   y_0 ~ Bernoulli(p_0),
    y_k = y_{k−1} · Bernoulli(p_k)   (so a stage is only ever reached after the previous one).

Every per-stage parameter (E, A, B, q, P, Q, o) is drawn as √ρ·shared + √(1−ρ)·own, so stages'
effects correlate with ``stage_correlation`` ρ. The σ's standardise each group on a calibration
sample, a² are the groups' shares of the variance (0.6 / 0.25 / 0.15), s is ``signal`` and the
β_k are solved by bisection so that P(stage k | stage k−1) hits ``rates[k]`` on that sample.

Randomness: the model comes from ``(seed, 0)``, the calibration sample from ``(seed, 1)`` and rows
in fixed blocks of :data:`BLOCK_ROWS` from ``(seed, 2, block)``, so row i depends only on the seed,
the settings and i: any chunking, and any prefix of a longer run, gives the same rows.
"""

from __future__ import annotations

import itertools
from collections.abc import Iterator
from dataclasses import dataclass
from typing import NamedTuple

import numpy as np
import pyarrow as pa

from mtlrec.synth.settings import CascadeSettings

BLOCK_ROWS = 1 << 16
_SHARES = {"cat": 0.6, "num": 0.25, "int": 0.15}
_RANK = 4


@dataclass
class CascadeModel:
    """The hidden ground truth, drawn once from the seed (arrays indexed by popularity rank)."""

    settings: CascadeSettings
    cardinalities: list[int]
    zipf_cdfs: list[np.ndarray]  # per column (V,)
    id_of_rank: list[np.ndarray]  # per column (V,) int64
    effects: list[np.ndarray]  # per column (V, T), column weight included
    pairs: list[tuple[int, int]]
    pair_factors: list[tuple[np.ndarray, np.ndarray]]  # per pair (V_i, R, T), (V_j, R, T)
    lognormal: np.ndarray  # (M,) bool
    location: np.ndarray  # (M,) mean of u-scaled values (log scale for log-normal)
    scale: np.ndarray  # (M,)
    tanh_in: np.ndarray  # (2, M) slope b and offset c
    tanh_out: np.ndarray  # (M, T) A
    square: np.ndarray  # (M, T) B
    cross: np.ndarray  # (T,) q
    domain_probs: np.ndarray  # (K,)
    domain_offsets: np.ndarray  # (K, T)
    domain_slopes: np.ndarray  # (K,) m_d
    group_scale: dict[str, np.ndarray]  # group → (T,) factor s·a/σ, set by calibration
    biases: np.ndarray  # (T,) β, set by calibration


@dataclass
class Features:
    """One block of features: domain (N,) or None, ranks per column (N,), numeric values (N, M)."""

    domain: np.ndarray | None
    ranks: list[np.ndarray]
    values: np.ndarray  # float32, as written
    scores: np.ndarray  # (N, M) float64 standard-normal scores recomputed from ``values``


class _Block(NamedTuple):
    features: Features
    probabilities: np.ndarray  # (N, T) float64, P(stage k | stage k−1, features)
    labels: np.ndarray  # (N, T) int8


@dataclass
class Chunk:
    """Generated rows: the output table, true conditional probabilities (N, T) and labels (N, T)."""

    table: pa.Table
    probabilities: np.ndarray
    labels: np.ndarray


def _correlated(rng: np.random.Generator, shape: tuple[int, ...], stages: int, rho: float) -> np.ndarray:
    """Standard normals of shape ``shape + (stages,)`` whose stage slices correlate with ``rho``."""
    shared = rng.standard_normal(shape)[..., None]
    return np.sqrt(rho) * shared + np.sqrt(1.0 - rho) * rng.standard_normal((*shape, stages))


def _zipf_cdf(cardinality: int, exponent: float) -> np.ndarray:
    weights = np.arange(1, cardinality + 1, dtype=np.float64) ** -exponent
    cdf = np.cumsum(weights)
    return cdf / cdf[-1]


def draw_model(settings: CascadeSettings, seed: int) -> CascadeModel:
    """Draw the hidden model from ``seed`` and calibrate it on a sample of ``settings.calibration_rows``."""
    rng = np.random.default_rng(np.random.SeedSequence([seed, 0]))
    s, t, rho = settings, len(settings.stages), settings.stage_correlation
    count = s.num_categorical
    cardinalities = [int(v) for v in np.rint(np.geomspace(s.min_cardinality, s.max_cardinality, count))]
    column_weights = rng.uniform(0.2, 1.0, count)
    all_pairs = list(itertools.combinations(range(count), 2))
    chosen = rng.choice(len(all_pairs), size=s.num_interactions, replace=False) if s.num_interactions else []
    pairs = [all_pairs[i] for i in sorted(chosen)]
    m, k = s.num_numeric, max(s.num_domains, 1)
    model = CascadeModel(
        settings=s,
        cardinalities=cardinalities,
        zipf_cdfs=[_zipf_cdf(v, s.zipf_exponent) for v in cardinalities],
        id_of_rank=[rng.permutation(v).astype(np.int64) for v in cardinalities],
        effects=[w * _correlated(rng, (v,), t, rho) for w, v in zip(column_weights, cardinalities)],
        pairs=pairs,
        pair_factors=[
            (_correlated(rng, (cardinalities[i], _RANK), t, rho), _correlated(rng, (cardinalities[j], _RANK), t, rho))
            for i, j in pairs
        ],
        lognormal=np.arange(m) % 2 == 0,
        location=rng.uniform(-1.0, 3.0, m),
        scale=rng.uniform(0.5, 2.0, m),
        tanh_in=np.stack([rng.uniform(0.5, 2.0, m), rng.uniform(-1.0, 1.0, m)]),
        tanh_out=_correlated(rng, (m,), t, rho),
        square=0.3 * _correlated(rng, (m,), t, rho),
        cross=0.5 * _correlated(rng, (), t, rho),
        domain_probs=np.sort(rng.dirichlet(np.full(k, 2.0)))[::-1] if s.num_domains else np.ones(1),
        domain_offsets=s.domain_spread * _correlated(rng, (k,), t, rho) if s.num_domains else np.zeros((1, t)),
        domain_slopes=rng.uniform(0.5, 1.5, k) if s.num_domains else np.ones(1),
        group_scale={},
        biases=np.zeros(t),
    )
    _calibrate(model, np.random.default_rng(np.random.SeedSequence([seed, 1])))
    return model


def sample_features(model: CascadeModel, rng: np.random.Generator, rows: int) -> Features:
    """Draw ``rows`` rows of features (domain, Zipf ranks, numeric values) in a fixed order."""
    s = model.settings
    domain = None
    if s.num_domains:
        domain = np.searchsorted(np.cumsum(model.domain_probs), rng.random(rows), side="right")
        domain = np.minimum(domain, s.num_domains - 1)
    ranks = [np.minimum(np.searchsorted(cdf, rng.random(rows), side="right"), len(cdf) - 1) for cdf in model.zipf_cdfs]
    raw = model.location + model.scale * rng.standard_normal((rows, s.num_numeric))
    values = np.where(model.lognormal, np.exp(raw), raw).astype(np.float32)
    wide = values.astype(np.float64)
    logs = np.log(np.where(model.lognormal, wide, 1.0))
    scores = (np.where(model.lognormal, logs, wide) - model.location) / model.scale
    return Features(domain=domain, ranks=ranks, values=values, scores=scores)


def _group_logits(model: CascadeModel, features: Features) -> dict[str, np.ndarray]:
    """Unscaled logit of each group present (cat, num, int), each (N, T)."""
    rows, stages = len(features.values), len(model.settings.stages)
    groups: dict[str, np.ndarray] = {}
    if model.effects:
        groups["cat"] = sum(effect[ranks] for effect, ranks in zip(model.effects, features.ranks))
    if model.settings.num_numeric:
        u = features.scores
        bent = np.tanh(model.tanh_in[0] * u + model.tanh_in[1])
        numeric = bent @ model.tanh_out + (0.5 * (u * u - 1.0)) @ model.square
        if u.shape[1] >= 2:
            numeric = numeric + (u[:, 0] * u[:, 1])[:, None] * model.cross
        slope = model.domain_slopes[features.domain] if features.domain is not None else 1.0
        groups["num"] = numeric * np.reshape(slope, (-1, 1))
    if model.pairs:
        total = np.zeros((rows, stages))
        for (i, j), (left, right) in zip(model.pairs, model.pair_factors):
            total += np.einsum("nrt,nrt->nt", left[features.ranks[i]], right[features.ranks[j]])
        groups["int"] = total / np.sqrt(_RANK)
    return groups


def logits(model: CascadeModel, features: Features) -> np.ndarray:
    """Calibrated logits z_k + β_k (N, T): σ of column k is P(stage k | stage k−1, features)."""
    groups = _group_logits(model, features)
    z = sum(groups[name] * model.group_scale[name] for name in groups)
    if features.domain is not None:
        z = z + model.domain_offsets[features.domain]
    return z + model.biases


def _sigmoid(z: np.ndarray) -> np.ndarray:
    return 0.5 * (1.0 + np.tanh(0.5 * z))  # exact σ without overflow warnings


def _solve_bias(logit: np.ndarray, weight: np.ndarray, target: float) -> float:
    """β with Σ w·σ(z + β) / Σ w = target: Newton steps kept inside a shrinking bisection bracket.

    The left side grows with β, so each evaluation halves the bracket's uncertainty at worst.
    """
    low, high = -40.0, 40.0
    weight = weight / weight.sum()
    bias = float(np.log(target / (1.0 - target)) - np.average(logit, weights=weight))
    for _ in range(100):
        p = _sigmoid(logit + bias)
        gap = float((weight * p).sum()) - target
        if abs(gap) < 1e-12 * target or high - low < 1e-12:
            break
        low, high = (bias, high) if gap < 0 else (low, bias)
        slope = float((weight * p * (1.0 - p)).sum())
        step = bias - gap / slope if slope > 0 else low - 1.0
        bias = step if low < step < high else 0.5 * (low + high)
    return bias


def _calibrate(model: CascadeModel, rng: np.random.Generator) -> None:
    """Set the group scales (each group's share of the variance) and the biases (target rates)."""
    s = model.settings
    features = sample_features(model, rng, s.calibration_rows)
    groups = _group_logits(model, features)
    share_total = sum(_SHARES[name] for name in groups)
    for name, value in groups.items():
        spread = value.std(axis=0)
        spread[spread == 0] = 1.0
        model.group_scale[name] = s.signal * np.sqrt(_SHARES[name] / share_total) / spread
    z = logits(model, features)  # biases are still zero here
    reach = np.ones(len(z))
    for k, rate in enumerate(s.resolved_rates()):
        model.biases[k] = _solve_bias(z[:, k], reach, rate)
        reach = reach * _sigmoid(z[:, k] + model.biases[k])


def _block(model: CascadeModel, seed: int, index: int) -> _Block:
    """Block ``index``: :data:`BLOCK_ROWS` rows drawn from their own seed ``(seed, 2, index)``."""
    rng = np.random.default_rng(np.random.SeedSequence([seed, 2, index]))
    features = sample_features(model, rng, BLOCK_ROWS)
    probabilities = _sigmoid(logits(model, features))
    passed = rng.random(probabilities.shape) < probabilities
    return _Block(features, probabilities, np.logical_and.accumulate(passed, axis=1).astype(np.int8))


def _table(model: CascadeModel, blocks: list[_Block], start: int, stop: int, with_probabilities: bool) -> Chunk:
    """Rows [start, stop) of the concatenated ``blocks`` as a :class:`Chunk`."""
    s = model.settings

    def joined(pick) -> np.ndarray:
        return np.concatenate([pick(block) for block in blocks])[start:stop]

    ids = s.id_type == "str"
    columns: dict[str, pa.Array] = {}
    if s.num_domains:
        columns["domain"] = pa.array(joined(lambda b: b.features.domain).astype(np.int64))
    for j, name in enumerate(s.categorical_names()):
        columns[name] = pa.array(model.id_of_rank[j][joined(lambda b, j=j: b.features.ranks[j])])
    if ids:
        columns = {name: column.cast(pa.string()) for name, column in columns.items()}
    values = joined(lambda b: b.features.values)
    for m, name in enumerate(s.numeric_names()):
        columns[name] = pa.array(values[:, m])
    labels, probabilities = joined(lambda b: b.labels), joined(lambda b: b.probabilities)
    for k, stage in enumerate(s.stages):
        columns[stage] = pa.array(labels[:, k])
    if with_probabilities:
        for k, name in enumerate(s.probability_names()):
            columns[name] = pa.array(probabilities[:, k])
    return Chunk(pa.table(columns), probabilities, labels)


def iter_chunks(
    model: CascadeModel, seed: int, rows: int, chunk_rows: int, with_probabilities: bool = False
) -> Iterator[Chunk]:
    """Rows 0..rows−1 in chunks of ``chunk_rows`` (the last may be shorter); see the module docstring."""
    cache: dict[int, _Block] = {}
    for start in range(0, rows, chunk_rows):
        stop = min(start + chunk_rows, rows)
        first, last = start // BLOCK_ROWS, (stop - 1) // BLOCK_ROWS
        blocks = [cache.get(i) or _block(model, seed, i) for i in range(first, last + 1)]
        cache = {last: blocks[-1]}  # a block spanning the next chunk's start is drawn once
        yield _table(model, blocks, start - first * BLOCK_ROWS, stop - first * BLOCK_ROWS, with_probabilities)


def generate_cascade(
    rows: int,
    seed: int = 0,
    settings: CascadeSettings | None = None,
    *,
    chunk_rows: int = 1_000_000,
    with_probabilities: bool = False,
    **options,
) -> Iterator[pa.Table]:
    """``rows`` synthetic rows as an iterator of pyarrow tables of at most ``chunk_rows`` rows.

    Args:
        rows: number of rows, > 0.
        seed: non-negative seed; the same seed and settings give the same rows.
        settings: the generator settings; or pass their fields as keyword ``options``.
        chunk_rows: rows per yielded table (does not change the rows).
        with_probabilities: also add ``p_<stage>`` columns, P(stage | previous stage, features).

    Raises:
        ConfigError: invalid settings, rows, seed or chunk size.
    """
    settings = CascadeSettings.resolve(settings, options)
    settings.check_run(rows=rows, seed=seed, chunk_rows=chunk_rows)  # now, not at the first next()
    model = draw_model(settings, seed)
    return (chunk.table for chunk in iter_chunks(model, seed, rows, chunk_rows, with_probabilities))
