"""EasyRec / TorchEasyRec pipeline configs (protobuf text format) → mtlrec configs.

``load_easyrec_config(path)`` parses a ``*.config`` file of either project with protobuf's own text
parser over a subset of their schemas declared in :mod:`.schema` (no ``protoc``), and converts it to
the plain data a YAML config gives, with a list of :class:`Note` saying which fields were mapped
approximately or ignored. docs/guides/easyrec.md has the mapping table.
"""

from __future__ import annotations

import logging
import re
from pathlib import Path
from typing import Any

from mtlrec.config.easyrec_text import easyrec, torcheasyrec
from mtlrec.config.easyrec_text.convert import Conversion
from mtlrec.config.easyrec_text.nodes import Note, Tracker
from mtlrec.config.easyrec_text.parse import dialect_name, parse_pipeline
from mtlrec.config.easyrec_text.yaml_out import to_yaml
from mtlrec.errors import ConfigError

log = logging.getLogger("mtlrec")

#: extensions of protobuf text files; other extensions are told apart by their content
EXTENSIONS = (".config", ".prototxt", ".pbtxt")
YAML_EXTENSIONS = (".yaml", ".yml", ".json")
_SECTION = re.compile(r"^\s*(model_config|data_config|train_config|feature_configs?|train_input_path)\s*[:{]", re.M)

#: dialect → its converter: (parsed message, conversion state) → (config, notes)
CONVERTERS = {"easyrec": easyrec.convert, "torcheasyrec": torcheasyrec.convert}

#: notes already logged, per file (a config loaded twice in one process warns once)
_LOGGED: set[tuple[str, str]] = set()

__all__ = [
    "EXTENSIONS",
    "Note",
    "convert_text",
    "easyrec_yaml",
    "is_easyrec_config",
    "load_easyrec_config",
]


def is_easyrec_config(path: str | Path) -> bool:
    """Whether a file is an EasyRec/TorchEasyRec pipeline config: by extension, else by its first lines."""
    path = Path(path)
    suffix = path.suffix.lower()
    if suffix in EXTENSIONS:
        return True
    if suffix in YAML_EXTENSIONS:
        return False
    try:
        with path.open(errors="replace") as handle:
            head = handle.read(1 << 16)
    except OSError:
        return False
    return bool(_SECTION.search(head))


def convert_text(
    text: str, dialect: str | None = None, source: str = "config"
) -> tuple[dict[str, Any], list[Note], str]:
    """Pipeline config text → (the mtlrec config as plain data, the notes, the dialect).

    Args:
        text: the config in protobuf text format.
        dialect: ``easyrec`` or ``torcheasyrec``; detected from the fields used when absent.
        source: the file name, for messages.

    Raises:
        ConfigError: a syntax error, an unknown field or enum value (with line and column), or a field
            that cannot be converted (with its path).
    """
    message, dialect = parse_pipeline(text, dialect, source)
    config, notes = CONVERTERS[dialect](message, Conversion(Tracker(source, text)))
    return config, notes, dialect


def load_easyrec_config(path: str | Path, dialect: str | None = None) -> tuple[dict[str, Any], list[Note]]:
    """Read and convert an EasyRec or TorchEasyRec pipeline config; log the ignored fields once.

    Args:
        path: the ``*.config`` file.
        dialect: ``easyrec`` or ``torcheasyrec``; detected from the fields used when absent.

    Returns:
        The mtlrec config as plain data (what a YAML config file gives) and the notes.
    """
    path = Path(path)
    try:
        text = path.read_text()
    except OSError as exc:
        raise ConfigError(f"cannot read config {path}: {exc.strerror}") from None
    config, notes, dialect = convert_text(text, dialect, str(path))
    _log_notes(path, dialect, notes)
    return config, notes


def easyrec_yaml(path: str | Path, dialect: str | None = None) -> tuple[str, list[Note]]:
    """The converted config of a pipeline file as YAML text, a comment above every noted key."""
    path = Path(path)
    try:
        text = path.read_text()
    except OSError as exc:
        raise ConfigError(f"cannot read config {path}: {exc.strerror}") from None
    config, notes, dialect = convert_text(text, dialect, str(path))
    ignored = sum(note.ignored for note in notes)
    header = [
        f"Converted from the {dialect_name(dialect)} pipeline config {path.name} by `mtlrec convert`.",
        f"{len(notes) - ignored} field(s) mapped approximately and {ignored} ignored: each is named in a comment "
        "above the key it concerns (docs/guides/easyrec.md has the mapping).",
    ]
    return to_yaml(config, notes, header), notes


def _log_notes(path: Path, dialect: str, notes: list[Note]) -> None:
    key = str(path.resolve())
    fresh = [note for note in notes if (key, str(note)) not in _LOGGED]
    _LOGGED.update((key, str(note)) for note in fresh)
    ignored = [note for note in fresh if note.ignored]
    approximate = [note for note in fresh if not note.ignored]
    if ignored:
        log.warning(
            "%s: %d %s field(s) ignored:\n%s",
            path,
            len(ignored),
            dialect_name(dialect),
            "\n".join(f"  {note}" for note in ignored),
        )
    if approximate:
        log.info(
            "%s: %d field(s) mapped approximately:\n%s",
            path,
            len(approximate),
            "\n".join(f"  {note}" for note in approximate),
        )
