"""Errors meant for the user: one clear paragraph, no traceback.

Every failure caused by the user's input (config, data files, run directories) is raised as a
subclass of :class:`MtlrecError`; the CLI prints its message and exits non-zero. Anything else is
a bug and keeps its traceback.
"""


class MtlrecError(Exception):
    """Base class of the errors the CLI reports as a message instead of a traceback."""


class ConfigError(MtlrecError):
    """The configuration is invalid; the message names the config path (``tasks[1].loss``)."""


class DataError(MtlrecError):
    """A data file is missing or malformed; the message names the file, row and/or column.

    Args:
        message: the paragraph shown to the user.
        column: the offending column, when one is known (the server names it as a request field).
        row: the 0-based row of the offending value among the rows encoded together, when known.
    """

    def __init__(self, message: str, column: str | None = None, row: int | None = None):
        super().__init__(message)
        self.column = column
        self.row = row


class RunDirError(MtlrecError):
    """A run or artifact directory is missing files or was written by something else."""


class RequestError(MtlrecError):
    """A serving request is invalid; ``status`` is its HTTP status, ``fields`` the offending JSON paths.

    Args:
        status: 400 (malformed JSON), 413 (too large) or 422 (invalid content).
        message: one line naming the field(s), e.g. ``candidates[3].age: expected a number, got a string``.
        fields: JSON paths of the offending values (``candidates[3].age``, ``context.user_id``).
    """

    def __init__(self, status: int, message: str, fields: list[str] | None = None):
        super().__init__(message)
        self.status = status
        self.message = message
        self.fields = fields or []


class ExportError(MtlrecError):
    """A model cannot be exported, or its exported graph disagrees with the eager model (nothing is written)."""


class DistributedError(MtlrecError):
    """A distributed run cannot start: torchrun's environment is incomplete or the rendezvous failed."""
