"""A run directory is written by one process at a time: an OS file lock held while a run trains.

``fcntl.flock`` on ``RUN_DIR/.lock``: the kernel drops the lock when its holder exits, however it exits
(a kill -9 included), so no stale lock outlives a crash; the file itself stays and names its last holder.
A second ``mtlrec train`` into the same directory stops at once with an error naming the holder.
"""

from __future__ import annotations

import contextlib
import datetime
import fcntl
import json
import os
import socket
import sys
from collections.abc import Iterator
from pathlib import Path

from mtlrec.errors import RunDirError

LOCK_FILE = ".lock"


@contextlib.contextmanager
def run_dir_lock(root: Path) -> Iterator[None]:
    """Hold the run directory ``root`` (created if needed) while the block runs.

    Raises:
        RunDirError: another process holds it (the message names its pid, host, command and start time).
    """
    if root.exists() and not root.is_dir():
        raise RunDirError(f"{root} is a file; --output takes a run directory")
    root.mkdir(parents=True, exist_ok=True)
    handle = open(root / LOCK_FILE, "a+")  # noqa: SIM115 - held open for the lock's lifetime
    try:
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            handle.seek(0)
            raise RunDirError(
                f"{root} is being written by another process ({_describe(handle.read())}); wait for it to "
                "finish, or train into another --output directory"
            ) from None
        handle.seek(0)
        handle.truncate()
        handle.write(json.dumps(_holder()))
        handle.flush()
        yield
    finally:
        handle.close()  # closing the file releases the lock


def _holder() -> dict[str, object]:
    return {
        "pid": os.getpid(),
        "host": socket.gethostname(),
        "command": " ".join(sys.argv),
        "since": datetime.datetime.now().isoformat(timespec="seconds"),
    }


def _describe(text: str) -> str:
    try:
        holder = json.loads(text)
        return f"pid {holder['pid']} on {holder['host']}, '{holder['command']}', since {holder['since']}"
    except (ValueError, KeyError, TypeError):
        return "its details are unknown"
