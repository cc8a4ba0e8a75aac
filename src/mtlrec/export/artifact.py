"""The artifact directory: its layout, its manifest, sha256 checks, and writing it atomically.

An artifact holds::

    model.onnx | model.pt   the scoring graph (ScoringModel: task scores in original units + fused "score")
    features.json           the fitted feature pipeline (FeaturePipeline.to_dict)
    manifest.json           format and versions, inputs, raw columns, tasks, fusion, parity, sha256 of each file

Loading checks the format name and version and the sha256 of every file listed in the manifest
before anything is parsed; nothing in an artifact is ever unpickled.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

from mtlrec.errors import RunDirError

FORMAT_NAME = "mtlrec-artifact"
FORMAT_VERSION = 2
MANIFEST = "manifest.json"
FEATURES = "features.json"


def is_artifact(path: str | Path) -> bool:
    """Whether ``path`` is a directory holding a manifest (an artifact rather than a run directory)."""
    return (Path(path) / MANIFEST).is_file()


def sha256_file(path: Path) -> str:
    """Hex sha256 of a file's bytes (read in 1 MiB chunks)."""
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for chunk in iter(lambda: handle.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def read_manifest(root: str | Path) -> dict[str, Any]:
    """The manifest of the artifact in ``root``, after checking its format and every file's sha256.

    Raises:
        RunDirError: not an artifact, an unknown format or version, a missing file, or a file whose
            sha256 differs from the manifest's (the message names the file).
    """
    root = Path(root)
    path = root / MANIFEST
    if not path.is_file():
        hint = (
            " (it looks like a run directory: export it with `mtlrec export`)"
            if (root / "config.yaml").is_file()
            else ""
        )
        raise RunDirError(f"{root} is not an mtlrec artifact: no {MANIFEST}{hint}")
    try:
        manifest = json.loads(path.read_text())
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise RunDirError(f"{path}: cannot read the manifest ({exc})") from None
    if not isinstance(manifest, dict) or manifest.get("format") != FORMAT_NAME:
        raise RunDirError(f"{path}: not an {FORMAT_NAME} manifest")
    if manifest.get("format_version") != FORMAT_VERSION:
        raise RunDirError(
            f"{path}: artifact format version {manifest.get('format_version')!r}; this mtlrec reads version "
            f"{FORMAT_VERSION} (export the run again with this version)"
        )
    files = manifest.get("files")
    if not isinstance(files, dict) or not files:
        raise RunDirError(f"{path}: the manifest lists no files")
    for name, expected in files.items():
        _verify_file(root, name, expected)
    return manifest


def _verify_file(root: Path, name: str, expected: str) -> None:
    path = root / name
    if Path(name).name != name:
        raise RunDirError(f"{root / MANIFEST}: file name {name!r} is not a plain name inside the artifact")
    if not path.is_file():
        raise RunDirError(f"{root}: artifact file {name} is missing; the artifact is incomplete, export it again")
    actual = sha256_file(path)
    if actual != expected:
        raise RunDirError(
            f"{path}: sha256 {actual} differs from the manifest's {expected}; the file was modified or corrupted "
            "after export. Export the run again."
        )


def write_artifact_dir(
    target: str | Path, fill: Callable[[Path], dict[str, Any]], overwrite: bool = False
) -> dict[str, Any]:
    """Build an artifact in a temporary directory beside ``target``, then rename it into place.

    ``fill(tmp_dir)`` writes every file except the manifest and returns the manifest without
    ``files``; the sha256 of each file is added here, and the complete manifest is returned. If
    ``fill`` raises, nothing is left behind.
    An existing artifact is replaced only with ``overwrite`` (any other existing path is refused).

    Raises:
        RunDirError: ``target`` exists and ``overwrite`` is off, or exists and is not an artifact.
    """
    target = Path(target)
    _check_target(target, overwrite)
    target.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{target.name}.", suffix=".tmp", dir=target.parent))
    try:
        manifest = fill(staging)
        manifest["files"] = {path.name: sha256_file(path) for path in sorted(staging.iterdir()) if path.is_file()}
        (staging / MANIFEST).write_text(json.dumps(manifest, indent=1))
        for path in staging.iterdir():
            _fsync(path)
        staging.chmod(0o777 & ~_umask())
        _swap_into_place(staging, target)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return manifest


def _check_target(target: Path, overwrite: bool) -> None:
    if not target.exists():
        return
    if not overwrite:
        raise RunDirError(f"{target} already exists; use --overwrite to replace it, or another --output")
    if not is_artifact(target):
        raise RunDirError(f"{target} exists and is not an mtlrec artifact; refusing to replace it")


def _swap_into_place(staging: Path, target: Path) -> None:
    """Rename ``staging`` to ``target``; an existing target is moved aside first and removed after."""
    if not target.exists():
        os.rename(staging, target)
        return
    retired = Path(tempfile.mkdtemp(prefix=f".{target.name}.", suffix=".old", dir=target.parent))
    os.rmdir(retired)
    os.rename(target, retired)
    try:
        os.rename(staging, target)
    except OSError:
        os.rename(retired, target)
        raise
    shutil.rmtree(retired, ignore_errors=True)


def _fsync(path: Path) -> None:
    with open(path, "rb") as handle:
        os.fsync(handle.fileno())


def _umask() -> int:
    current = os.umask(0)
    os.umask(current)
    return current
