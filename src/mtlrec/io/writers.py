"""Write tables (predictions) as Parquet or CSV, atomically."""

from __future__ import annotations

import os
import tempfile
from collections.abc import Callable
from pathlib import Path

import pyarrow as pa
import pyarrow.csv as pa_csv
import pyarrow.parquet as pq

from mtlrec.errors import DataError


def _read_umask() -> int:
    """The process umask (read once, at import: ``os.umask`` can only be read by setting it)."""
    current = os.umask(0)
    os.umask(current)
    return current


_FILE_MODE = 0o666 & ~_read_umask()


def atomic_write(path: str | Path, write: Callable[[Path], None]) -> None:
    """Call ``write(tmp)`` on a temporary file beside ``path`` and rename it into place.

    A crash leaves either the old file or the new one, never a half-written file. The file gets the
    permissions a plain ``open`` would give it (0666 less the umask), not ``mkstemp``'s 0600.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    handle, tmp_name = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    os.close(handle)
    tmp = Path(tmp_name)
    try:
        write(tmp)
        tmp.chmod(_FILE_MODE)
        with open(tmp, "rb") as synced:
            os.fsync(synced.fileno())
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)


def write_table(table: pa.Table, path: str | Path) -> None:
    """Write ``table`` to ``path``: Parquet for ``.parquet``/``.pq``, CSV for ``.csv``."""
    name = str(path).lower()
    if name.endswith((".parquet", ".pq")):
        atomic_write(path, lambda tmp: pq.write_table(table, tmp))
    elif name.endswith(".csv"):
        atomic_write(path, lambda tmp: pa_csv.write_csv(table, tmp))
    else:
        raise DataError(f"{path}: output must end in .parquet or .csv")
