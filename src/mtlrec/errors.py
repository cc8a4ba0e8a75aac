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
    """A data file is missing or malformed; the message names the file, row and/or column."""


class RunDirError(MtlrecError):
    """A run or artifact directory is missing files or was written by something else."""
