"""Pipeline config text → a message of :mod:`.schema`, with errors naming the file, line and column."""

from __future__ import annotations

import difflib
import re

from google.protobuf import text_format
from google.protobuf.message import Message

from mtlrec.config.easyrec_text import schema
from mtlrec.errors import ConfigError

#: words found only in one dialect's configs, for telling them apart (field names, enum values)
_MARKERS: dict[str, tuple[str, ...]] = {
    schema.EASYREC: (
        "model_class", "feature_type", "input_names", "wide_deep", "optimizer_config", "input_type",
        "metrics_set", "loss_type", "dnn", "feature_config", "seq_att_map",
    ),
    schema.TORCHEASYREC: (
        "id_feature", "raw_feature", "combo_feature", "sequence_id_feature", "dataset_type", "group_type",
        "sparse_optimizer", "dense_optimizer", "expression", "mlp", "binary_cross_entropy", "fg_mode",
    ),
}  # fmt: skip

_NAMES = {schema.EASYREC: "EasyRec", schema.TORCHEASYREC: "TorchEasyRec"}

_UNKNOWN_FIELD = re.compile(r'Message type "([\w.]+)" has no field named "(\w+)"')
_UNKNOWN_ENUM = re.compile(r'Enum type "([\w.]+)" has no value named (\S+?)\.?$')
_POSITION = re.compile(r"^(\d+):(\d+) : ")


def dialect_name(dialect: str) -> str:
    """``EasyRec`` or ``TorchEasyRec``."""
    return _NAMES[dialect]


def detect_dialect(text: str) -> str:
    """The dialect whose marker words the text uses most (``easyrec`` on a tie or none)."""
    words = re.findall(r"\b(\w+)\s*[:{]", text)
    scores = {dialect: sum(word in markers for word in words) for dialect, markers in _MARKERS.items()}
    return schema.TORCHEASYREC if scores[schema.TORCHEASYREC] > scores[schema.EASYREC] else schema.EASYREC


def parse_pipeline(text: str, dialect: str | None = None, source: str = "config") -> tuple[Message, str]:
    """Parse a pipeline config in protobuf text format.

    Args:
        text: the file's content.
        dialect: ``easyrec`` or ``torcheasyrec``; detected from the fields used when absent.
        source: the file name, for messages.

    Returns:
        The parsed ``EasyRecConfig`` message and its dialect.

    Raises:
        ConfigError: a syntax error, an unknown field or an unknown enum value, naming line and column.
    """
    dialect = dialect or detect_dialect(text)
    if dialect not in schema.DIALECTS:
        raise ConfigError(f"{source}: unknown dialect {dialect!r}; expected one of {list(schema.DIALECTS)}")
    message = schema.pipeline_class(dialect)()
    try:
        text_format.Parse(text, message)
    except text_format.ParseError as exc:
        raise ConfigError(_explain(exc, dialect, source, text)) from None
    return message, dialect


def _explain(exc: text_format.ParseError, dialect: str, source: str, text: str) -> str:
    """A parse error as ``file:line:column: what is wrong; what to do``."""
    message = str(exc)
    line, column = exc.GetLine(), exc.GetColumn()
    match = _POSITION.match(message)
    if match:
        line, column = int(match.group(1)), int(match.group(2))
        message = message[match.end() :]
    where = f"{source}:{line}:{column}" if line is not None else source
    name = dialect_name(dialect)
    unknown_field = _UNKNOWN_FIELD.search(message)
    if unknown_field:
        return f"{where}: {_unknown_field(dialect, *unknown_field.groups())}"
    unknown_enum = _UNKNOWN_ENUM.search(message)
    if unknown_enum:
        return f"{where}: {_unknown_enum(dialect, *unknown_enum.groups())}"
    shown = _line(text, line)
    return (
        f"{where}: syntax error in the {name} pipeline config (protobuf text format): {message.strip()}"
        + (f"\n    {shown}" if shown else "")
        + "\n  fix the text there (a missing '}', ':' or quote is the usual cause)"
    )


def _unknown_field(dialect: str, message_type: str, field: str) -> str:
    descriptor = schema.pool(dialect).FindMessageTypeByName(message_type)
    known = [f.name for f in descriptor.fields]
    close = difflib.get_close_matches(field, known, n=3)
    hint = f"did you mean {' or '.join(repr(c) for c in close)}? " if close else ""
    short = message_type.rsplit(".", 1)[-1]
    what = (
        f"'{field}' is not a model mtlrec converts (the {dialect_name(dialect)} multi-task models: "
        f"{', '.join(f.name for f in descriptor.oneofs_by_name['model'].fields)})"
        if short in ("EasyRecModel", "ModelConfig") and "model" in descriptor.oneofs_by_name
        else f"unknown field '{field}' in {short} (as {dialect_name(dialect)} spells it)"
    )
    return (
        f"{what}; {hint}check the spelling and the dialect, or remove the field "
        f"(the fields mtlrec reads are listed in docs/guides/easyrec.md)"
    )


def _unknown_enum(dialect: str, enum_type: str, value: str) -> str:
    descriptor = schema.pool(dialect).FindEnumTypeByName(enum_type)
    names = [v.name for v in descriptor.values]
    value = value.strip("\"'")
    close = difflib.get_close_matches(value, names, n=1)
    hint = f" (did you mean {close[0]}?)" if close else ""
    return f"unknown value '{value}' of {enum_type.rsplit('.', 1)[-1]}{hint}; expected one of {', '.join(names)}"


def _line(text: str, line: int | None) -> str:
    lines = text.splitlines()
    return lines[line - 1].strip() if line is not None and 0 < line <= len(lines) else ""
