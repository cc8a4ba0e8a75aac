"""The base of every config model: unknown keys are errors."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict


class Strict(BaseModel):
    """A config section that forbids keys it does not define."""

    model_config = ConfigDict(extra="forbid")
