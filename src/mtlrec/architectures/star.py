"""Star Topology Adaptive Recommender (STAR; Sheng, Zhao, Zhang, et al.; CIKM 2021), for several tasks."""

from __future__ import annotations

import math

import torch
from torch import nn

from mtlrec.architectures.base import Architecture
from mtlrec.nn import ACTIVATIONS, MLP

NORM_STATISTICS = ("domain", "batch")


class PartitionedNorm(nn.Module):
    """Partitioned normalisation (the STAR paper's "PN"): batch norm with per-domain scale, shift and statistics.

    z' = (γ ⊙ γ_p) · (z − μ) / √(σ² + ε) + (β + β_p) for a sample of domain p, with γ_p = 1, β_p = 0
    at the start. At inference μ, σ² are domain p's moving averages. In training they are batch
    statistics; the paper's mini-batches hold one domain each, so its batch statistics are the
    domain's. Batches here mix domains, hence two choices:

    * ``statistics="domain"`` (default): each sample is normalised with its own domain's statistics in
      the batch (the paper's setting; training and inference normalise alike). A domain with a single
      sample in the batch has no variance estimate and uses the whole batch's statistics instead.
    * ``statistics="batch"``: every sample is normalised with the whole batch's statistics, as
      ``nn.BatchNorm1d`` would; the moving averages still track per-domain statistics, so inference
      normalises differently from training.

    The moving averages of domain p follow the statistics its samples were given (domain or fallback);
    they are updated in training mode only, under ``no_grad``, without a loop over domains
    (``index_add``). Whole-batch moving averages are kept as well and used at inference for domains
    never seen in training (padding, OOV, new domains): deviation from the paper, which has no such case.

    Args:
        dim: D, width of the input.
        num_domains: P.
        momentum: weight of the new batch in the moving averages (as in ``nn.BatchNorm1d``).
        eps: ε.
        statistics: "domain" or "batch", the training statistics (above).
    """

    def __init__(
        self, dim: int, num_domains: int, momentum: float = 0.1, eps: float = 1e-5, statistics: str = "domain"
    ):
        super().__init__()
        if statistics not in NORM_STATISTICS:
            raise ValueError(f"unknown statistics {statistics!r}; choose one of {list(NORM_STATISTICS)}")
        self.num_domains, self.momentum, self.eps, self.statistics = num_domains, momentum, eps, statistics
        self.weight = nn.Parameter(torch.ones(dim))  # γ
        self.bias = nn.Parameter(torch.zeros(dim))  # β
        self.domain_weight = nn.Parameter(torch.ones(num_domains, dim))  # γ_p
        self.domain_bias = nn.Parameter(torch.zeros(num_domains, dim))  # β_p
        self.register_buffer("running_mean", torch.zeros(num_domains, dim))
        self.register_buffer("running_var", torch.ones(num_domains, dim))
        self.register_buffer("global_mean", torch.zeros(dim))
        self.register_buffer("global_var", torch.ones(dim))
        self.register_buffer("domain_seen", torch.zeros(num_domains, dtype=torch.bool))

    def forward(self, x: torch.Tensor, domain: torch.Tensor) -> torch.Tensor:
        """x (B, D), domain (B,) int64 in [0, P) → (B, D).

        Per-domain sums and per-sample lookups are matmuls with the (B, P) one-hot matrix of the
        domains: GEMMs forward and backward, where index_add/gather would scatter row by row.
        """
        onehot = nn.functional.one_hot(domain, self.num_domains).to(x.dtype)  # (B, P)
        if self.training:
            mean, var = self._training_statistics(x, onehot)
        else:
            seen = self.domain_seen[domain].unsqueeze(1)  # (B, 1)
            mean = torch.where(seen, onehot @ self.running_mean, self.global_mean)
            var = torch.where(seen, onehot @ self.running_var, self.global_var)
        normalised = (x - mean) * torch.rsqrt(var + self.eps)
        return normalised * (self.weight * (onehot @ self.domain_weight)) + (self.bias + onehot @ self.domain_bias)

    def _training_statistics(self, x: torch.Tensor, onehot: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Mean and (biased) variance to normalise each sample with, (B, D) or (D,); updates the averages."""
        batch_mean, batch_var = x.mean(0), x.var(0, unbiased=False)  # (D,)
        counts = onehot.sum(0)  # (P,)
        divisor = counts.clamp_min(1).unsqueeze(1)
        domain_mean = (onehot.t() @ x) / divisor  # (P, D)
        squares = (x - onehot @ domain_mean) ** 2
        domain_var = (onehot.t() @ squares) / divisor
        enough = (counts >= 2).unsqueeze(1)  # (P, 1): a variance can be estimated
        domain_mean = torch.where(enough, domain_mean, batch_mean)
        domain_var = torch.where(enough, domain_var, batch_var)
        with torch.no_grad():
            samples = torch.where(enough, counts.unsqueeze(1), float(x.shape[0]))  # (P, 1)
            unbiased = domain_var * samples / (samples - 1).clamp_min(1)
            rate = self.momentum * (counts > 0).to(x.dtype).unsqueeze(1)  # only domains in the batch move
            self.running_mean.add_(rate * (domain_mean - self.running_mean))
            self.running_var.add_(rate * (unbiased - self.running_var))
            self.global_mean.lerp_(batch_mean, self.momentum)
            self.global_var.lerp_(batch_var * x.shape[0] / max(x.shape[0] - 1, 1), self.momentum)
            self.domain_seen.logical_or_(counts > 0)
        if self.statistics == "batch":
            return batch_mean, batch_var
        return onehot @ domain_mean, onehot @ domain_var


class StarLinear(nn.Module):
    """A star-topology fully connected layer (the STAR paper's "star topology FCN"): y = x (W ⊙ W_p) + b + b_p.

    W (in, out), b are shared; W_p, b_p belong to domain p, initialised to ones and zeros so that the
    layer starts as the shared one. All domains' combined weights form one (in, P·out) matrix: one
    GEMM gives every domain's output, (B, P, out), and a gather keeps each sample's own. This costs P×
    the FLOPs of a plain layer but has no loop over domains, no data-dependent shapes and no (B, in, out)
    per-sample weights; it suits the tens of domains STAR targets.

    Args:
        input_dim: in.
        output_dim: out.
        num_domains: P.
    """

    def __init__(self, input_dim: int, output_dim: int, num_domains: int):
        super().__init__()
        self.weight = nn.Parameter(torch.empty(input_dim, output_dim))
        self.bias = nn.Parameter(torch.empty(output_dim))
        self.domain_weight = nn.Parameter(torch.ones(input_dim, num_domains, output_dim))
        self.domain_bias = nn.Parameter(torch.zeros(num_domains, output_dim))
        bound = 1.0 / math.sqrt(input_dim)  # the shared layer starts as an nn.Linear
        nn.init.uniform_(self.weight, -bound, bound)
        nn.init.uniform_(self.bias, -bound, bound)

    def forward(self, x: torch.Tensor, domain: torch.Tensor) -> torch.Tensor:
        """x (B, in), domain (B,) int64 in [0, P) → (B, out)."""
        input_dim, num_domains, output_dim = self.domain_weight.shape
        combined = (self.weight.unsqueeze(1) * self.domain_weight).reshape(input_dim, num_domains * output_dim)
        every = (x @ combined).view(-1, num_domains, output_dim)  # (B, P, out)
        onehot = nn.functional.one_hot(domain, num_domains).to(x.dtype)  # (B, P)
        own = torch.bmm(onehot.unsqueeze(1), every).squeeze(1)  # (B, out): each sample's domain slice
        return own + self.bias + onehot @ self.domain_bias


class StarFCN(nn.Module):
    """A stack of ``StarLinear`` → activation (→ dropout) layers; with W_p = 1, b_p = 0 it is an ``MLP``.

    Args:
        input_dim: D.
        hidden_units: widths of the layers; empty means identity.
        num_domains: P.
        activation: as in ``MLP``.
        dropout: as in ``MLP``.
    """

    def __init__(
        self, input_dim: int, hidden_units: list[int], num_domains: int, activation: str = "relu", dropout: float = 0.0
    ):
        super().__init__()
        widths = [input_dim, *hidden_units]
        self.layers = nn.ModuleList(StarLinear(a, b, num_domains) for a, b in zip(widths, widths[1:]))
        self.activation = ACTIVATIONS[activation]()
        self.dropout = nn.Dropout(dropout) if dropout > 0 else nn.Identity()
        self._output_dim = widths[-1]

    def output_dim(self) -> int:
        return self._output_dim

    def forward(self, x: torch.Tensor, domain: torch.Tensor) -> torch.Tensor:
        """x (B, D), domain (B,) → (B, hidden_units[-1])."""
        for layer in self.layers:
            x = self.dropout(self.activation(layer(x, domain)))
        return x


class STAR(Architecture):
    """Star Topology Adaptive Recommender for multi-domain data (Sheng et al., CIKM 2021), for T tasks.

    Sheng, Zhao, Zhang, Dai, Zhao, Wang, et al., "One Model to Serve All: Star Topology Adaptive
    Recommender for Multi-Domain CTR Prediction", CIKM 2021; adapted to several tasks.

    The input is normalised by ``PartitionedNorm`` and fed to the star-topology network ``StarFCN``;
    an auxiliary network, an MLP over [domain embedding, x], gives a logit that is added to the main
    one before the sigmoid, so that the domain indicator acts on the prediction directly.

    Multi-task adaptation (the paper has one task): the star FCN is a shared bottom followed by one
    tower per task; the auxiliary network is a shared MLP followed by one linear head per task, giving
    each task's output units (1, or C class logits). Shared: the normalisation, the star FCN, the
    domain embedding and the auxiliary MLP; each task owns its tower and its auxiliary head.
    Deviation: training normalisation statistics with mixed-domain batches (see ``PartitionedNorm``).

    The domain is the feature group ``domain`` (one categorical feature), read as ids.
    ``num_domains`` P counts every index the domain feature can take (padding and OOV included):
    domains absent from training keep their initial domain-specific weights (W_p = 1, b_p = 0), and
    the normalisation falls back to whole-batch moving averages for them.

    Args:
        input_dim: D.
        task_names: the tasks.
        num_domains: P; ``forward``'s domain index is in [0, P).
        hidden_units: widths of the star FCN (the shared bottom).
        tower_hidden_units: per-task tower MLP widths.
        auxiliary_hidden_units: widths of the auxiliary MLP.
        domain_embedding_dim: width of the auxiliary network's domain embedding.
        momentum: of the normalisation's moving averages.
        norm_statistics: "domain" or "batch": training statistics of ``PartitionedNorm``.
        activation: as in ``MLP``.
        dropout: as in ``MLP``.
        output_dims: per-task output widths (see ``Architecture``).
    """

    group_inputs = {"domain": "ids"}

    def __init__(
        self,
        input_dim: int,
        task_names: list[str],
        num_domains: int,
        hidden_units: list[int] = (256, 128),
        tower_hidden_units: list[int] | dict[str, list[int]] = (64,),
        auxiliary_hidden_units: list[int] = (32,),
        domain_embedding_dim: int = 8,
        momentum: float = 0.1,
        norm_statistics: str = "domain",
        activation: str = "relu",
        dropout: float = 0.0,
        output_dims: dict[str, int] | None = None,
    ):
        super().__init__(task_names, output_dims)
        if num_domains < 1:
            raise ValueError(f"num_domains must be >= 1, got {num_domains}")
        self.num_domains = num_domains
        self.norm = PartitionedNorm(input_dim, num_domains, momentum, statistics=norm_statistics)
        self.fcn = StarFCN(input_dim, list(hidden_units), num_domains, activation, dropout)
        self.towers = self.make_towers(self.fcn.output_dim(), tower_hidden_units, activation, dropout)
        self.domain_embedding = nn.Embedding(num_domains, domain_embedding_dim)
        self.auxiliary = MLP(domain_embedding_dim + input_dim, list(auxiliary_hidden_units), activation, dropout)
        self.auxiliary_heads = self.make_towers(self.auxiliary.output_dim(), [], activation, dropout)

    def forward(self, x: torch.Tensor, domain: torch.Tensor) -> dict[str, torch.Tensor]:
        """x (B, D), domain (B,) int64 in [0, P) → {task: (B,) logit, or (B, C) class logits}."""
        shared = self.fcn(self.norm(x, domain), domain)
        auxiliary = self.auxiliary(torch.cat([self.domain_embedding(domain), x], dim=1))
        return {task: self.towers[task](shared) + self.auxiliary_heads[task](auxiliary) for task in self.task_names}

    def task_modules(self, task: str) -> list[nn.Module]:
        return [self.towers[task], self.auxiliary_heads[task]]
