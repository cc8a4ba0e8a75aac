"""Reading a parsed pipeline message field by field, remembering what was read and what was not.

The converters read every field through a :class:`Node`, which records the field's path
(``model_config.dbmtl.task_towers[1].relation_dnn.hidden_units``). Afterwards
:func:`report_unread` walks every field the config sets and reports those that nothing read as
ignored: every field is either mapped or named in the notes.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from google.protobuf.descriptor import FieldDescriptor
from google.protobuf.message import Message

from mtlrec.errors import ConfigError

APPROXIMATE = "mapped approximately"
IGNORED = "ignored"


@dataclass(frozen=True)
class Note:
    """What happened to one field of the pipeline config.

    Attributes:
        path: the field's path in the pipeline config, e.g. ``model_config.mmoe.l2_regularization``.
        message: ``mapped approximately: ...`` or ``ignored: ... (what to do)``.
        target: the key of the mtlrec config the note is about (``train.weight_decay``, ``features[3]``);
            None for fields with no counterpart at all.
    """

    path: str
    message: str
    target: str | None = None

    @property
    def ignored(self) -> bool:
        return self.message.startswith(IGNORED)

    def __str__(self) -> str:
        return f"{self.path}: {self.message}"


@dataclass
class Tracker:
    """The fields read so far, the notes, and which mtlrec key each pipeline section became."""

    source: str
    text: str
    read: set[str] = field(default_factory=set)
    handled: set[str] = field(default_factory=set)
    notes: list[Note] = field(default_factory=list)
    targets: dict[str, str] = field(default_factory=dict)

    def approximate(self, path: str, what: str, target: str | None = None) -> None:
        """Note a field mapped with a difference (``what`` says how it differs)."""
        self.read.add(path)
        self.notes.append(Note(path, f"{APPROXIMATE}: {what}", target))

    def ignore(self, path: str, what: str, target: str | None = None) -> None:
        """Note a field (a whole section, for a message) that has no effect in mtlrec: why, and what to do."""
        self.read.add(path)
        self.handled.add(path)
        self.notes.append(Note(path, f"{IGNORED}: {what}", target))

    def resolved_notes(self) -> list[Note]:
        """The notes, each with the mtlrec key of its closest mapped section when it names none."""
        return [
            note if note.target else Note(note.path, note.message, self.target_of(note.path)) for note in self.notes
        ]

    def target_of(self, path: str) -> str | None:
        """The mtlrec key of the closest enclosing section that has one."""
        while path:
            if path in self.targets:
                return self.targets[path]
            path = _parent(path)
        return None

    def line_of(self, field_name: str, value: str) -> int | None:
        """The first line where ``field_name`` is given ``value`` (for errors about a value)."""
        pattern = re.compile(rf"\b{re.escape(field_name)}\s*:.*[\"']{re.escape(value)}[\"']")
        for number, line in enumerate(self.text.splitlines(), start=1):
            if pattern.search(line):
                return number
        return None

    def error(self, path: str, what: str, line_of: tuple[str, str] | None = None) -> ConfigError:
        """A ConfigError naming the file, the line (when ``line_of`` finds one) and the field path."""
        line = self.line_of(*line_of) if line_of else None
        where = f"{self.source}:{line}" if line else self.source
        return ConfigError(f"{where}: {path}: {what}")


def _parent(path: str) -> str:
    cut = max(path.rfind("."), path.rfind("["))
    return path[:cut] if cut > 0 else ""


def join(path: str, name: str) -> str:
    return f"{path}.{name}" if path else name


class Node:
    """A message of the parsed config at a known path; reading a field through it records the read."""

    __slots__ = ("message", "path", "tracker")

    def __init__(self, message: Message, path: str, tracker: Tracker):
        self.message = message
        self.path = path
        self.tracker = tracker

    def at(self, name: str) -> str:
        """The path of one of this message's fields."""
        return join(self.path, name)

    def has(self, name: str) -> bool:
        """Whether the field is set (a repeated field: non-empty). Does not count as reading it."""
        fd = self.message.DESCRIPTOR.fields_by_name[name]
        if fd.is_repeated:
            return len(getattr(self.message, name)) > 0
        return self.message.HasField(name)

    def get(self, name: str) -> Any:
        """The field's value (its default when unset): enums as their names, repeated fields as lists."""
        self.tracker.read.add(self.at(name))
        fd = self.message.DESCRIPTOR.fields_by_name[name]
        value = getattr(self.message, name)
        if fd.is_repeated:
            return [_enum_name(fd, v) for v in value]
        return _enum_name(fd, value)

    def opt(self, name: str) -> Any:
        """The field's value if it is set, else None (read either way)."""
        return self.get(name) if self.has(name) else self.tracker.read.add(self.at(name))

    def child(self, name: str) -> Node:
        """A message field as a node (an unset field gives its default, empty message)."""
        self.tracker.read.add(self.at(name))
        return Node(getattr(self.message, name), self.at(name), self.tracker)

    def children(self, name: str) -> list[Node]:
        """A repeated message field as nodes, ``name[0]``, ``name[1]``, ..."""
        self.tracker.read.add(self.at(name))
        return [Node(m, f"{self.at(name)}[{i}]", self.tracker) for i, m in enumerate(getattr(self.message, name))]

    def which(self, oneof: str) -> str | None:
        """The name of the field set in a oneof, or None."""
        return self.message.WhichOneof(oneof)

    def maps_to(self, target: str) -> Node:
        """Record that this section became ``target`` in the mtlrec config (for notes and comments)."""
        self.tracker.targets[self.path] = target
        return self

    def mark(self, *names: str) -> None:
        """Count fields as read (they are mapped by being consistent with mtlrec's behaviour)."""
        self.tracker.read.update(self.at(name) for name in names)

    def approximate(self, name: str, what: str, target: str | None = None) -> None:
        self.tracker.approximate(self.at(name), what, target)

    def ignore(self, name: str, what: str, target: str | None = None) -> None:
        self.tracker.ignore(self.at(name), what, target)

    def error(self, name: str, what: str, line_of: tuple[str, str] | None = None) -> ConfigError:
        return self.tracker.error(self.at(name), what, line_of)


def _enum_name(fd: FieldDescriptor, value: Any) -> Any:
    """Enums as their names; 32-bit floats at the precision they were written with (0.001, not 0.0010000000475)."""
    if fd.type == FieldDescriptor.TYPE_FLOAT:
        return float(f"{value:.7g}")
    if fd.type == FieldDescriptor.TYPE_ENUM:
        known = fd.enum_type.values_by_number.get(value)
        return known.name if known is not None else value
    return value


def report_unread(root: Message, tracker: Tracker, hint: Callable[[str], str]) -> None:
    """Note every field the config sets that no converter read, as ignored.

    A message none of whose fields was read is reported once, as a whole; ``hint(path)`` says why the
    field is ignored and what to do instead.
    """
    for path, value in _unread(root, "", tracker.read, tracker.handled):
        tracker.notes.append(Note(path, f"{IGNORED}: {_show(value)} ({hint(path)})"))


def _unread(message: Message, path: str, read: set[str], handled: set[str]) -> list[tuple[str, Any]]:
    found: list[tuple[str, Any]] = []
    for fd, value in message.ListFields():
        field_path = join(path, fd.name)
        is_message = fd.type == FieldDescriptor.TYPE_MESSAGE
        if field_path in handled:
            continue
        if fd.is_repeated and is_message:
            for index, item in enumerate(value):
                if f"{field_path}[{index}]" not in handled:
                    found.extend(_unread_message(item, f"{field_path}[{index}]", read, handled))
        elif is_message:
            found.extend(_unread_message(value, field_path, read, handled))
        elif field_path not in read:
            shown = [_enum_name(fd, v) for v in value] if fd.is_repeated else value
            found.append((field_path, _enum_name(fd, shown) if not isinstance(shown, list) else shown))
    return found


def _unread_message(message: Message, path: str, read: set[str], handled: set[str]) -> list[tuple[str, Any]]:
    if not message.ListFields():
        return [] if path in read else [(path, message)]
    if not any(p.startswith(path + ".") or p.startswith(path + "[") for p in read):
        return [(path, message)]
    return _unread(message, path, read, handled)


def _show(value: Any) -> str:
    """A short rendering of a field's value for a note."""
    if isinstance(value, Message):
        text = " ".join(str(value).split())
        return "{ " + (text[:60] + " ..." if len(text) > 60 else text) + " }" if text else "{ }"
    if isinstance(value, str):
        return repr(value)
    return str(value)
