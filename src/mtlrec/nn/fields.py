"""An input's fields (each feature's embedding or value, side by side) and per-field gates spread over them."""

from __future__ import annotations

import torch


def field_spread(field_dims: list[int]) -> torch.Tensor:
    """The (F, D) 0/1 matrix copying field f's value over its columns: gates (B, F) @ it → (B, D).

    Args:
        field_dims: the F fields' widths, in order (D = their sum); each ≥ 1.
    """
    if not field_dims or min(field_dims) < 1:
        raise ValueError(f"field widths must be positive, got {field_dims}")
    edges = torch.tensor([0, *field_dims]).cumsum(0)
    columns = torch.arange(int(edges[-1]))
    return ((columns >= edges[:-1, None]) & (columns < edges[1:, None])).float()
