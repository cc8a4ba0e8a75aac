"""Where a command writes: refuse to replace an input or, without ``--overwrite``, an existing file."""

from __future__ import annotations

from pathlib import Path

from mtlrec.errors import RunDirError
from mtlrec.io import expand_paths


def check_output_file(output: str | Path, inputs: str | Path, overwrite: bool) -> None:
    """A file ``output`` may be written: it is no input file (``inputs``: a file, directory or glob), it is
    not a directory, and it exists only with ``overwrite``.

    Raises:
        RunDirError: naming the file and what to do.
    """
    output = Path(output)
    if output.is_dir():
        raise RunDirError(f"{output} is a directory; --output takes the file to write (.parquet or .csv)")
    resolved = output.resolve()
    for path in expand_paths(inputs):
        if path.resolve() == resolved:
            raise RunDirError(f"--output {output} is the input file itself; writing the scores would replace it")
    if output.exists() and not overwrite:
        raise RunDirError(f"{output} already exists; use --overwrite to replace it, or another --output")
