"""Two regression tasks of controlled relatedness: the synthetic data of the MMoE paper.

Ma, Zhao, Yi, Chen, Hong, Chi, "Modeling Task Relationships in Multi-task Learning with
Multi-gate Mixture-of-Experts", KDD 2018, Section 3.2, Eqs. 2–4:

1. u1, u2 ∈ R^d orthogonal unit vectors (here: two Gaussian vectors, Gram–Schmidt, normalised);
2. w1 = c·u1,  w2 = c·(p·u1 + sqrt(1 − p²)·u2)  (Eq. 2), so cos(w1, w2) = p, the "task correlation";
3. x ~ N(0, I_d);
4. y_k = w_kᵀx + Σ_{i=1..m} sin(α_i·w_kᵀx + β_i) + ε_k  (Eqs. 3–4), α_i, β_i shared by both tasks.

The MMoE paper gives neither c, m nor α, β; the defaults are the PLE paper's choice (Tang, Liu, Zhao,
Gong, RecSys 2020, §5.2.1): c = 1, m = 10, d = 512, α_i, β_i ~ N(0, 1), drawn once per data set.

Noise: the paper writes ε ~ N(0, 0.01) without saying whether 0.01 is the variance or the standard
deviation. We read it as the **variance** (the usual N(μ, σ²) notation), so ε has standard
deviation 0.1 — the same as the reference Keras implementation (drawbridge/keras-mmoe, which draws
``normal(scale=0.1)``). Pass ``noise_std=0.01`` for the other reading.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from mtlrec.errors import ConfigError

#: The PLE paper's constants for the MMoE synthetic data (Tang et al., RecSys 2020, §5.2.1).
PLE_INPUT_DIM = 512
PLE_SCALE = 1.0
PLE_NUM_SINES = 10
#: Standard deviation of ε: sqrt(0.01), reading the paper's N(0, 0.01) as a variance.
NOISE_STD = 0.1


@dataclass(frozen=True)
class SyntheticTasks:
    """The hidden ground truth of one synthetic data set.

    Attributes:
        weights: (2, d) float64, rows w1 and w2 (Eq. 2).
        alpha: (m,) sine frequencies α_i, shared by both tasks.
        beta: (m,) sine phases β_i, shared by both tasks.
        noise_std: standard deviation of ε_k.
    """

    weights: np.ndarray
    alpha: np.ndarray
    beta: np.ndarray
    noise_std: float

    @property
    def input_dim(self) -> int:
        return int(self.weights.shape[1])

    def clean_labels(self, x: np.ndarray) -> np.ndarray:
        """(N, d) inputs → (N, 2) noiseless labels w_kᵀx + Σ_i sin(α_i w_kᵀx + β_i)."""
        # einsum, not BLAS: a (d, 2) product gains nothing from BLAS threads, which contend with torch's
        projections = np.einsum("nd,kd->nk", x, self.weights.astype(x.dtype))  # (N, 2)
        sines = np.sin(projections[..., None] * self.alpha.astype(x.dtype) + self.beta.astype(x.dtype))  # (N, 2, m)
        return projections + sines.sum(axis=-1)


def orthogonal_unit_pair(input_dim: int, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """Two orthogonal unit vectors u1, u2 of R^d: Gaussian draws, then Gram–Schmidt.

    Returns:
        u1 (d,), u2 (d,) float64 with ‖u1‖ = ‖u2‖ = 1 and u1ᵀu2 = 0 (to rounding).
    """
    if input_dim < 2:
        raise ConfigError(f"input_dim: two orthogonal directions need d >= 2, got {input_dim}")
    first, second = rng.standard_normal((2, input_dim))
    u1 = first / np.linalg.norm(first)
    second = second - (second @ u1) * u1
    return u1, second / np.linalg.norm(second)


def draw_tasks(
    correlation: float,
    rng: np.random.Generator,
    input_dim: int = PLE_INPUT_DIM,
    scale: float = PLE_SCALE,
    num_sines: int = PLE_NUM_SINES,
    noise_std: float = NOISE_STD,
) -> SyntheticTasks:
    """Draw w1, w2 with cos(w1, w2) = ``correlation`` (Eq. 2) and the shared α, β ~ N(0, 1).

    Args:
        correlation: p in [-1, 1].
        rng: numpy random generator.
        input_dim: d.
        scale: c.
        num_sines: m (0 gives the linear tasks, whose label correlation is p).
        noise_std: standard deviation of ε (see the module docstring).
    """
    return draw_task_family([correlation], rng, input_dim, scale, num_sines, noise_std)[0]


def draw_task_family(
    correlations: Sequence[float],
    rng: np.random.Generator,
    input_dim: int = PLE_INPUT_DIM,
    scale: float = PLE_SCALE,
    num_sines: int = PLE_NUM_SINES,
    noise_std: float = NOISE_STD,
) -> list[SyntheticTasks]:
    """One ground truth per correlation, all from the same u1, u2, α, β (only w2 differs, Eq. 2).

    Comparing correlations on such a family (and on the same x, see :func:`sample_family`) is a
    paired comparison: the only difference between its data sets is the angle between w1 and w2.
    Arguments as in :func:`draw_tasks`; ``draw_tasks(p, rng)`` is ``draw_task_family([p], rng)[0]``.
    """
    bad = [p for p in correlations if not -1.0 <= p <= 1.0]
    if bad:
        raise ConfigError(f"correlation must be in [-1, 1], got {bad[0]}")
    if num_sines < 0 or noise_std < 0:
        raise ConfigError(f"num_sines and noise_std must be >= 0, got {num_sines} and {noise_std}")
    u1, u2 = orthogonal_unit_pair(input_dim, rng)
    alpha, beta = rng.standard_normal((2, num_sines))
    return [
        SyntheticTasks(
            weights=scale * np.stack([u1, p * u1 + np.sqrt(1.0 - p**2) * u2]),
            alpha=alpha,
            beta=beta,
            noise_std=float(noise_std),
        )
        for p in correlations
    ]


def sample(tasks: SyntheticTasks, num_samples: int, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """Draw x ~ N(0, I_d) and the two labels (Eqs. 3–4), all rows at once.

    Returns:
        x (N, d) and y (N, 2), float32.
    """
    x, (y,) = sample_family([tasks], num_samples, rng)
    return x, y


def sample_family(
    family: Sequence[SyntheticTasks], num_samples: int, rng: np.random.Generator
) -> tuple[np.ndarray, list[np.ndarray]]:
    """Draw x ~ N(0, I_d) and ε once, and every member's labels (Eqs. 3–4) on them.

    Returns:
        x (N, d) float32 and, per member, y (N, 2) float32.
    """
    x = rng.standard_normal((num_samples, family[0].input_dim), dtype=np.float32)
    noise = rng.standard_normal((num_samples, 2))
    return x, [(tasks.clean_labels(x) + tasks.noise_std * noise).astype(np.float32) for tasks in family]


def generate(
    correlation: float,
    num_samples: int,
    seed: int | np.random.SeedSequence,
    **task_options: float,
) -> tuple[np.ndarray, np.ndarray, SyntheticTasks]:
    """One synthetic data set, determined by ``seed``: x (N, d) float32, y (N, 2) float32, the ground truth.

    ``task_options`` go to :func:`draw_tasks` (input_dim, scale, num_sines, noise_std).
    """
    rng = np.random.default_rng(seed)
    tasks = draw_tasks(correlation, rng, **task_options)
    x, y = sample(tasks, num_samples, rng)
    return x, y, tasks
