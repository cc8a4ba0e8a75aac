"""The converted config as YAML, with a ``# note`` comment above every key a note is about.

PyYAML writes no comments, so the document is laid out here, key by key; every value is written by
PyYAML's flow style (quoted and escaped as YAML needs), so the text reads back as the same data.
"""

from __future__ import annotations

import re
import textwrap
from typing import Any

import yaml

from mtlrec.config.easyrec_text.nodes import Note

WIDTH = 118
_PART = re.compile(r"([^.\[\]]+)|\[(\d+)\]")


def to_yaml(config: dict[str, Any], notes: list[Note], header: list[str]) -> str:
    """The config as a YAML document; each note becomes a comment above the key it names.

    Args:
        config: the mtlrec config as plain data.
        notes: the conversion notes; a note whose ``target`` is not in the config goes above its closest
            enclosing key, and one with no target at all into the block at the top.
        header: comment lines for the top of the file.
    """
    comments: dict[str, list[str]] = {}
    loose: list[str] = []
    for note in notes:
        where = _closest(config, note.target) if note.target else None
        (comments.setdefault(where, []) if where else loose).append(str(note))
    lines = [_comment(line, 0) if line else "#" for line in header]
    if loose:
        lines += ["#", "# Fields with no place in the mtlrec config:"] + [_comment(text, 0) for text in loose]
    lines.append("")
    _mapping(config, 0, "", comments, lines)
    return "\n".join(lines) + "\n"


def _closest(config: dict[str, Any], target: str) -> str | None:
    """The longest prefix of ``target`` (``a.b[2].c``) that exists in the config, or None."""
    node: Any = config
    found, path = None, ""
    for key, index in _PART.findall(target):
        if key and isinstance(node, dict) and key in node:
            node, path = node[key], f"{path}.{key}" if path else key
        elif index and isinstance(node, list) and int(index) < len(node):
            node, path = node[int(index)], f"{path}[{index}]"
        else:
            break
        found = path
    return found


def _comment(text: str, indent: int) -> str:
    pad = " " * indent
    wrapped = textwrap.wrap(text, width=WIDTH - indent - 2, subsequent_indent="  ", break_on_hyphens=False)
    return "\n".join(f"{pad}# {line}" for line in wrapped)


def _flow(value: Any, width: int = 1 << 30, indent: int = 0) -> str:
    """One value in YAML flow style, wrapped at ``width`` with continuation lines indented by ``indent``.

    (A list wrapper keeps PyYAML from ending a scalar document with '...'.)
    """
    text = yaml.safe_dump([value], default_flow_style=True, width=max(width, 40), sort_keys=False).strip()
    lines = text[1:-1].splitlines()
    return "\n".join([lines[0]] + [" " * indent + line.strip() for line in lines[1:]])


def _is_block(value: Any) -> bool:
    return (isinstance(value, dict) and bool(value)) or (
        isinstance(value, list) and any(isinstance(item, dict) for item in value)
    )


def _has_comments(path: str, comments: dict[str, list[str]]) -> bool:
    return any(key == path or key.startswith(path + ".") or key.startswith(path + "[") for key in comments)


def _mapping(value: dict[str, Any], indent: int, path: str, comments: dict[str, list[str]], lines: list[str]) -> None:
    pad = " " * indent
    for key, item in value.items():
        item_path = f"{path}.{key}" if path else key
        lines.extend(_comment(text, indent) for text in comments.get(item_path, []))
        name = _flow(key)
        if not _is_block(item):
            lines.append(f"{pad}{name}: {_flow(item, WIDTH - indent - len(name) - 20, indent + 4)}")
        elif _fits_flow(item, item_path, comments, indent + len(name) + 2):
            lines.append(f"{pad}{name}: {_flow(item)}")
        elif isinstance(item, dict):
            lines.append(f"{pad}{name}:")
            _mapping(item, indent + 2, item_path, comments, lines)
        else:
            lines.append(f"{pad}{name}:")
            _sequence(item, indent + 2, item_path, comments, lines)


def _sequence(value: list[Any], indent: int, path: str, comments: dict[str, list[str]], lines: list[str]) -> None:
    pad = " " * indent
    for index, item in enumerate(value):
        item_path = f"{path}[{index}]"
        lines.extend(_comment(text, indent) for text in comments.get(item_path, []))
        if _fits_flow(item, item_path, comments, indent + 2, own=False) or not isinstance(item, dict):
            lines.append(f"{pad}- {_flow(item)}")
            continue
        nested: list[str] = []
        _mapping(item, indent + 2, item_path, comments, nested)
        first = next(i for i, line in enumerate(nested) if not line.lstrip().startswith("#"))
        nested[first] = f"{pad}- {nested[first].lstrip()}"
        lines.extend(nested)


def _fits_flow(value: Any, path: str, comments: dict[str, list[str]], used: int, own: bool = True) -> bool:
    """Whether a value goes on one line: no comments inside it, no nested block, and short enough."""
    if not _is_block(value):
        return True
    inside = {k: v for k, v in comments.items() if k != path} if own else comments
    if _has_comments(path, inside) and any(k != path for k in comments if k.startswith(path)):
        return False
    nested = value.values() if isinstance(value, dict) else value
    if any(_is_block(v) and not (isinstance(v, dict) and _flat(v)) for v in nested):
        return False
    return used + len(_flow(value)) <= WIDTH


def _flat(value: dict[str, Any]) -> bool:
    return all(not _is_block(v) for v in value.values())
