"""Readable config error messages: pydantic locations as ``tasks[1].label`` paths, clean texts."""

from __future__ import annotations

from typing import Any


def format_location(raw: Any, loc: tuple[Any, ...]) -> str:
    """Render a pydantic location as ``tasks[1].label``, dropping union tags not present in the data."""
    text, node = "", raw
    for position, part in enumerate(loc):
        is_last = position == len(loc) - 1
        is_union_tag = isinstance(node, dict) and node.get("kind") == part and not is_last
        if isinstance(part, int) and isinstance(node, list) and part < len(node):
            text, node = f"{text}[{part}]", node[part]
        elif isinstance(part, str) and isinstance(node, dict) and (part in node or is_last) and not is_union_tag:
            text, node = (f"{text}.{part}" if text else part), node.get(part)
        elif is_last and isinstance(part, str):
            text = f"{text}.{part}" if text else part
    return text or "(top level)"


def clean_message(err: dict[str, Any]) -> str:
    if err["type"] == "extra_forbidden":
        return "unknown key"
    message = str(err["msg"])
    return message.removeprefix("Value error, ")
