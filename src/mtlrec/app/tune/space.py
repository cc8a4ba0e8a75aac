"""The search space of ``mtlrec tune``: drawing a trial's values and writing them into the config."""

from __future__ import annotations

import copy
import json
from typing import Any, get_args, get_origin

import optuna
from pydantic import BaseModel

from mtlrec.app import build
from mtlrec.config import Config, SearchDimension, apply_override, validate_config
from mtlrec.config.loading import schema_types
from mtlrec.errors import ConfigError

EVERY_ITEM = "*"


def suggest(trial: optuna.Trial, path: str, dimension: SearchDimension) -> Any:
    """Draw ``dimension``'s value for ``trial`` (named by its config path)."""
    if dimension.choices is not None:
        labels = [_label(choice) for choice in dimension.choices]
        return dimension.choices[labels.index(trial.suggest_categorical(path, labels))]
    if dimension.integer:
        step = int(dimension.step or 1)
        return trial.suggest_int(path, int(dimension.low), int(dimension.high), step=step, log=dimension.log)
    return trial.suggest_float(path, dimension.low, dimension.high, step=dimension.step, log=dimension.log)


def value_of(path: str, dimension: SearchDimension, stored: Any) -> Any:
    """The config value of a parameter as Optuna stored it (a list choice is stored as its JSON text)."""
    if dimension.choices is None:
        return stored
    labels = [_label(choice) for choice in dimension.choices]
    if stored not in labels:
        raise ConfigError(f"tune.space.{path}: the study holds {stored!r}, which is not one of the choices")
    return dimension.choices[labels.index(stored)]


def _label(choice: Any) -> Any:
    """Optuna keeps categorical choices that are None, bools, numbers or strings; others as JSON text."""
    return choice if choice is None or isinstance(choice, (bool, int, float, str)) else json.dumps(choice)


def trial_config(base: dict[str, Any], values: dict[str, Any]) -> dict[str, Any]:
    """The base config (as plain data) with ``values`` {space path: value} written in and no ``tune`` section."""
    raw = copy.deepcopy(base)
    raw.pop("tune", None)
    for path, value in values.items():
        for key in expand_path(raw, path):
            apply_override(raw, f"{key}={json.dumps(value)}")
    return raw


def check_space(base: dict[str, Any], config: Config) -> None:
    """Every end of every dimension gives a valid config.

    Raises:
        ConfigError: naming ``tune.space.PATH``, the value and what is wrong with it.
    """
    for path, dimension in config.tune.space.items():
        for value in dimension.extremes():
            try:
                build.check_config(validate_config(trial_config(base, {path: value}), source=f"tune.space.{path}"))
            except ConfigError as exc:
                raise ConfigError(f"tune.space.{path} = {value!r} gives an invalid config: {exc}") from None


def expand_path(raw: dict[str, Any], path: str) -> list[str]:
    """The override keys a space path stands for (``features.*.min_count`` → ``features.0.min_count``, ...).

    In a list, a part may be an index, the ``name`` of an item, or ``*``: every item whose schema has the
    path's next key (``features.*.min_count`` leaves numeric features out).

    Raises:
        ConfigError: a name or ``*`` that matches no item.
    """
    parts = [part for part in path.split(".") if part]
    keys: list[list[str]] = [[]]
    for depth, part in enumerate(parts):
        following = parts[depth + 1] if depth + 1 < len(parts) else None
        expanded: list[list[str]] = []
        for key in keys:
            node = _at(raw, key)
            if not isinstance(node, list) or part.isdigit():
                expanded.append(key + [part])
                continue
            matches = [
                index
                for index, item in enumerate(node)
                if (part == EVERY_ITEM and _accepts(key + [str(index)], item, following))
                or (isinstance(item, dict) and item.get("name") == part)
            ]
            if not matches:
                what = f"item with the key '{following}'" if part == EVERY_ITEM else f"item named '{part}'"
                raise ConfigError(f"tune.space.{path}: {'.'.join(key)} has no {what}")
            expanded.extend(key + [str(index)] for index in matches)
        keys = expanded
    return [".".join(key) for key in keys]


def _at(raw: Any, key: list[str]) -> Any:
    node = raw
    for part in key:
        if isinstance(node, list) and part.isdigit() and int(part) < len(node):
            node = node[int(part)]
        elif isinstance(node, dict):
            node = node.get(part)
        else:
            return None
    return node


def _accepts(item_path: list[str], item: Any, key: str | None) -> bool:
    """Whether the list item at ``item_path`` may hold ``key``: its schema (chosen by its ``kind``) has it."""
    if key is None or not isinstance(item, dict):
        return key is None
    models = [tp for tp in schema_types(item_path) if isinstance(tp, type) and issubclass(tp, BaseModel)]
    if "kind" in item:
        models = [model for model in models if _kind_matches(model, item["kind"])]
    return any(key in model.model_fields for model in models)


def _kind_matches(model: type[BaseModel], kind: Any) -> bool:
    field = model.model_fields.get("kind")
    if field is None:
        return False
    annotation = field.annotation
    return kind in get_args(annotation) if get_origin(annotation) is not None else True
