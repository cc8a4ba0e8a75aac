"""Loading a YAML config: ``extends``, ``--set`` overrides, validation with errors naming the path."""

from __future__ import annotations

from pathlib import Path
from types import UnionType
from typing import Annotated, Any, Union, get_args, get_origin

import yaml
from pydantic import BaseModel, ValidationError

from mtlrec.config.easyrec_text import is_easyrec_config, load_easyrec_config
from mtlrec.config.messages import clean_message, format_location
from mtlrec.config.models import Config
from mtlrec.errors import ConfigError


def load_config(path: str | Path, overrides: list[str] | None = None) -> Config:
    """Read a YAML config, apply ``a.b=value`` overrides and validate it.

    Args:
        path: YAML file. A top-level ``extends: other.yaml`` (relative to this file) is read first
            and deep-merged under this one. An EasyRec or TorchEasyRec pipeline config (``*.config``,
            protobuf text) is converted first (:mod:`mtlrec.config.easyrec_text`).
        overrides: ``key.path=value`` strings; the value is parsed as YAML (``3``, ``[64, 32]``).

    Raises:
        ConfigError: unreadable file, bad override, unknown key or wrong type (message names the path).
    """
    return validate_config(load_raw_config(path, overrides), source=str(path))


def load_raw_config(path: str | Path, overrides: list[str] | None = None) -> dict[str, Any]:
    """The config as plain data before validation: ``extends`` merged (EasyRec converted), overrides applied.

    Raises:
        ConfigError: unreadable file or bad override.
    """
    if is_easyrec_config(path):
        raw = load_easyrec_config(path)[0]
    else:
        raw = _read_yaml_with_extends(Path(path), seen=())
    for override in overrides or []:
        apply_override(raw, override)
    return raw


def validate_config(raw: Any, source: str = "config") -> Config:
    """Validate a plain dict as a :class:`Config`, turning pydantic errors into a ConfigError."""
    try:
        return Config.model_validate(raw)
    except ValidationError as exc:
        lines = [f"  {format_location(raw, err['loc'])}: {clean_message(err)}" for err in exc.errors()]
        raise ConfigError(f"invalid config {source}:\n" + "\n".join(lines)) from None


def config_to_dict(config: Config) -> dict[str, Any]:
    """The config as plain data (for saving the resolved config of a run)."""
    return config.model_dump(mode="json")


def apply_override(raw: dict[str, Any], override: str) -> None:
    """Set ``a.b[0].c=value`` (or ``a.b.0.c=value``) in a nested dict, creating dicts as needed.

    A section that may be given as a flag (``data.streaming: true`` means "on, with default options")
    combines with overrides of its keys in either order: descending into a section that holds ``true``
    or ``null`` starts from an empty mapping (``true`` is the same as ``{}`` there), and setting a
    section that already holds options to ``true`` keeps them. Only paths where the schema expects a
    section are treated so; elsewhere a scalar on the way is an error.

    Args:
        raw: the config as plain data; changed in place.
        override: ``key.path=value``; the value is parsed as YAML.

    Raises:
        ConfigError: malformed override, list index out of range, or a path through a value that is
            not a mapping (the message names the config path).
    """
    key, sep, value_text = override.partition("=")
    if not sep or not key.strip():
        raise ConfigError(f"--set {override!r}: expected KEY=VALUE, e.g. train.epochs=3")
    try:
        value = yaml.safe_load(value_text)
    except yaml.YAMLError as exc:
        raise ConfigError(f"--set {override!r}: value is not valid YAML ({exc})") from None
    parts = [p for p in key.replace("[", ".").replace("]", "").split(".") if p]
    node: Any = raw
    for depth, part in enumerate(parts):
        last = depth == len(parts) - 1
        path = parts[: depth + 1]
        where = ".".join(path)
        if isinstance(node, list):
            if not part.isdigit() or int(part) >= len(node):
                raise ConfigError(f"--set {override!r}: '{where}' is not an index of a list of {len(node)}")
            if last:
                node[int(part)] = value
            else:
                node = node[int(part)]
        elif isinstance(node, dict):
            current = node.get(part)
            if last:
                if not (value is True and isinstance(current, dict) and _expects_section(path)):
                    node[part] = value
            else:
                if part not in node or ((current is None or current is True) and _expects_section(path)):
                    node[part] = {}
                node = node[part]
        else:
            parent = ".".join(parts[:depth])
            raise ConfigError(
                f"--set {override!r}: '{parent}' holds {node!r}, not a mapping, so '{where}' cannot be set"
            )


def _expects_section(parts: list[str]) -> bool:
    """Whether the schema accepts a section (a config model) at the config path ``parts``."""
    return any(isinstance(tp, type) and issubclass(tp, BaseModel) for tp in schema_types(parts))


def schema_types(parts: list[str]) -> list[Any]:
    """The types the :class:`Config` schema allows at a config path, unions flattened; ``[]`` if unknown.

    Args:
        parts: the path's keys and list indices as strings, e.g. ``["tasks", "0", "label"]``.
    """
    allowed: list[Any] = [Config]
    for part in parts:
        inner: list[Any] = []
        for tp in _flatten_union(allowed):
            origin = get_origin(tp)
            if isinstance(tp, type) and issubclass(tp, BaseModel):
                field = tp.model_fields.get(part)
                if field is not None:
                    inner.append(field.annotation)
            elif origin is list and part.isdigit():
                inner.extend(get_args(tp)[:1])
            elif origin is dict:
                args = get_args(tp)
                inner.append(args[1] if len(args) == 2 else Any)
        allowed = inner
    return _flatten_union(allowed)


def _flatten_union(types: list[Any]) -> list[Any]:
    """``A | B``, ``Optional[A]`` and ``Annotated[A, ...]`` as their member types."""
    flat: list[Any] = []
    for tp in types:
        origin = get_origin(tp)
        if origin is Annotated:
            flat.extend(_flatten_union([get_args(tp)[0]]))
        elif origin is Union or origin is UnionType:
            flat.extend(_flatten_union(list(get_args(tp))))
        else:
            flat.append(tp)
    return flat


def _read_yaml_with_extends(path: Path, seen: tuple[Path, ...]) -> dict[str, Any]:
    resolved = path.resolve()
    if resolved in seen:
        raise ConfigError(f"{path}: 'extends' forms a cycle")
    try:
        text = path.read_text()
    except OSError as exc:
        raise ConfigError(f"cannot read config {path}: {exc.strerror}") from None
    try:
        raw = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise ConfigError(f"config {path} is not valid YAML: {exc}") from None
    if not isinstance(raw, dict):
        raise ConfigError(f"config {path} must be a mapping at the top level")
    base_name = raw.pop("extends", None)
    if base_name is None:
        return raw
    base = _read_yaml_with_extends(path.parent / str(base_name), seen + (resolved,))
    return _deep_merge(base, raw)


def _deep_merge(base: dict[str, Any], top: dict[str, Any]) -> dict[str, Any]:
    merged = dict(base)
    for key, value in top.items():
        if isinstance(value, dict) and isinstance(merged.get(key), dict):
            merged[key] = _deep_merge(merged[key], value)
        else:
            merged[key] = value
    return merged
