"""The building blocks of the schema declarations: fields, messages and enums as plain data.

:mod:`.easyrec_schema` and :mod:`.torcheasyrec_schema` declare their messages with these, and
:mod:`.schema` turns them into descriptors.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class F:
    """One field: ``type`` is a scalar name, or the name of a message or enum of the same file."""

    name: str
    number: int
    type: str
    repeated: bool = False
    default: Any = None
    oneof: str | None = None


@dataclass(frozen=True)
class Msg:
    name: str
    fields: tuple[F, ...]
    map_entry: bool = False
    nested: tuple[Msg, ...] = ()


@dataclass(frozen=True)
class Enum:
    name: str
    values: tuple[tuple[str, int], ...]


def msg(name: str, *fields: F) -> Msg:
    """A message of the given fields."""
    return Msg(name, fields)


def enum(name: str, *values: str | tuple[str, int]) -> Enum:
    """Values as ``NAME`` (numbered in order from 0) or ``(NAME, number)``."""
    numbered = [v if isinstance(v, tuple) else (v, i) for i, v in enumerate(values)]
    return Enum(name, tuple(numbered))


def rep(name: str, number: int, type_: str, **kwargs: Any) -> F:
    """A repeated field."""
    return F(name, number, type_, repeated=True, **kwargs)


def empty(*names: str) -> list[Msg]:
    """Messages without fields (their presence is what counts)."""
    return [msg(name) for name in names]
