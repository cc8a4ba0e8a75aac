"""Checkpoints and weights, written atomically; loaded without unpickling arbitrary objects."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch
from safetensors import SafetensorError
from safetensors.torch import load_file, save_file
from torch import nn

from mtlrec.errors import RunDirError
from mtlrec.io import atomic_write


def save_checkpoint(path: str | Path, state: dict[str, Any]) -> None:
    """Save a resumable training state (tensors, numbers, strings, lists, dicts) atomically."""
    atomic_write(path, lambda tmp: torch.save(state, tmp))


def load_checkpoint(path: str | Path) -> dict[str, Any]:
    """Load a checkpoint with ``weights_only=True`` (no arbitrary code runs on load)."""
    try:
        return torch.load(path, map_location="cpu", weights_only=True)
    except FileNotFoundError:
        raise RunDirError(f"no checkpoint to resume from: {path}") from None
    except Exception as exc:  # torch raises many types for corrupt or foreign files
        raise RunDirError(f"cannot load checkpoint {path}: {exc}") from None


def save_weights(model: nn.Module, path: str | Path) -> None:
    """Write the model's state dict as safetensors, atomically."""
    state = {name: tensor.detach().contiguous() for name, tensor in model.state_dict().items()}
    atomic_write(path, lambda tmp: save_file(state, str(tmp)))


def load_weights(model: nn.Module, path: str | Path) -> None:
    """Load safetensors weights into ``model`` (every key must match)."""
    try:
        state = load_file(str(path))
    except FileNotFoundError:
        raise RunDirError(f"no model weights at {path}; did training finish an epoch?") from None
    except (SafetensorError, OSError) as exc:
        raise RunDirError(f"cannot read model weights {path}: {exc}") from None
    try:
        model.load_state_dict(state, strict=True)
    except RuntimeError as exc:
        raise RunDirError(f"weights {path} do not fit the model built from the run's config: {exc}") from None
