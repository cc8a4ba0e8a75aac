"""Row-wise lazy Adam for embedding tables with row-sparse gradients."""

from __future__ import annotations

from collections.abc import Iterable

import torch


class RowSparseAdam(torch.optim.Optimizer):
    """Adam applied only to the rows present in a sparse gradient ("lazy Adam").

    Same update as ``torch.optim.SparseAdam`` (Kingma & Ba, ICLR 2015, with moments of untouched
    rows left as they are and bias correction by the table's global step), computed with a gather,
    dense arithmetic on the touched rows (U, E) and a scatter, instead of sparse-tensor algebra.
    Gradients from :func:`mtlrec.nn.sparse_lookup.row_sparse_lookup` are already coalesced.

    ``weight_decay`` λ is a lazy L2 penalty: the rows a batch touched get λ·e added to their gradient
    before the moments (Adam's coupled L2, as ``torch.optim.Adam``'s weight_decay), rows it did not touch
    are left alone. This is the regularisation of the embedding rows that ranking systems use (EasyRec's
    ``embedding_regularization`` penalises the looked-up embeddings); a dense decay of every row each step
    would shrink the rare ids towards 0 between their occurrences.

    Args:
        params: embedding tables (V, E).
        lr: as in Adam.
        betas: as in Adam.
        eps: as in Adam.
        weight_decay: λ ≥ 0, on the touched rows only.
    """

    def __init__(
        self,
        params: Iterable[torch.nn.Parameter],
        lr: float = 1e-3,
        betas: tuple[float, float] = (0.9, 0.999),
        eps: float = 1e-8,
        weight_decay: float = 0.0,
    ):
        if weight_decay < 0:
            raise ValueError(f"weight_decay must be >= 0, got {weight_decay}")
        super().__init__(params, {"lr": lr, "betas": betas, "eps": eps, "weight_decay": weight_decay})

    @torch.no_grad()
    def step(self, closure: None = None) -> None:
        for group in self.param_groups:
            beta1, beta2 = group["betas"]
            for param in group["params"]:
                if param.grad is None:
                    continue
                grad = param.grad
                if not grad.is_sparse:
                    raise RuntimeError("RowSparseAdam needs sparse gradients (sparse embedding lookups)")
                rows, values = grad._indices()[0], grad._values()
                if not (grad.is_coalesced() or bool((rows[1:] > rows[:-1]).all())):
                    grad = grad.coalesce()  # repeated or unsorted rows: sum them first
                    rows, values = grad._indices()[0], grad._values()
                decay = group.get("weight_decay", 0.0)  # absent from the state of checkpoints written before it
                if decay:
                    values = values.add(param.index_select(0, rows), alpha=decay)
                state = self.state[param]
                if not state:
                    state["step"] = torch.zeros((), dtype=torch.float64)
                    # first and second moments side by side: one gather and one scatter per step
                    state["moments"] = torch.zeros(
                        param.shape[0], 2, param.shape[1], dtype=param.dtype, device=param.device
                    )
                state["step"] += 1
                step = state["step"].item()
                moments = state["moments"].index_select(0, rows)  # (U, 2, E)
                exp_avg, exp_avg_sq = moments[:, 0], moments[:, 1]
                exp_avg.lerp_(values, 1 - beta1)
                exp_avg_sq.mul_(beta2).addcmul_(values, values, value=1 - beta2)
                state["moments"].index_copy_(0, rows, moments)
                step_size = group["lr"] * (1 - beta2**step) ** 0.5 / (1 - beta1**step)
                denom = exp_avg_sq.sqrt().add_(group["eps"])
                # rows are distinct: gather, update, scatter back (much cheaper than index_add_ on CPU)
                updated = param.index_select(0, rows).add_(exp_avg.div_(denom), alpha=-step_size)
                param.index_copy_(0, rows, updated)
