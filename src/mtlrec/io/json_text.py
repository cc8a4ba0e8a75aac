"""Strict JSON (RFC 8259) for metrics: an undefined value is written as ``null``, never as a bare ``NaN``."""

from __future__ import annotations

import json
import math
from typing import Any


def strict_json(value: Any, indent: int | None = 1) -> tuple[str, list[str]]:
    """``value`` as strict JSON text, and the dotted paths of the non-finite floats written as ``null``.

    Python's ``json`` writes ``NaN``/``Infinity`` by default, which strict parsers (orjson, browsers,
    ``jq``) reject. A metric is NaN when it is undefined (an AUC on a split where a task has one class
    only), so the caller can say why next to the paths returned here.
    """
    undefined: list[str] = []
    clean = _replace_non_finite(value, "", undefined)
    return json.dumps(clean, indent=indent, allow_nan=False), undefined


def _replace_non_finite(value: Any, path: str, undefined: list[str]) -> Any:
    if isinstance(value, float) and not math.isfinite(value):
        undefined.append(path or "(value)")
        return None
    if isinstance(value, dict):
        return {key: _replace_non_finite(item, f"{path}.{key}" if path else str(key), undefined)
                for key, item in value.items()}
    if isinstance(value, list | tuple):
        return [_replace_non_finite(item, f"{path}[{i}]", undefined) for i, item in enumerate(value)]
    return value
