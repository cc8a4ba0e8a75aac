"""Shared fixtures: a small slice of the bundled census data and a config pointing at it."""

from __future__ import annotations

import gzip
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
CENSUS = REPO / "data" / "census-income"
CENSUS_CONFIGS = REPO / "configs" / "census"


def _head(source: Path, target: Path, rows: int) -> Path:
    with gzip.open(source, "rt") as reader, gzip.open(target, "wt") as writer:
        for _, line in zip(range(rows), reader):
            writer.write(line)
    return target


@pytest.fixture(scope="session")
def census_slice(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """First 4000 train rows and 2000 test rows of census-income, gzip CSV like the originals."""
    folder = tmp_path_factory.mktemp("census")
    return {
        "train": _head(CENSUS / "census-income.data.gz", folder / "train.data.gz", 4000),
        "test": _head(CENSUS / "census-income.test.gz", folder / "test.data.gz", 2000),
    }


@pytest.fixture
def census_overrides(census_slice: dict[str, Path]) -> list[str]:
    """``--set`` overrides that point a census config at the slice and keep training short.

    A constant, larger learning rate makes 2 short epochs enough to learn never-married well, and
    keeps the schedule independent of ``train.epochs`` (so resuming with more epochs is exactly a
    longer run; with ``cosine`` the decay horizon would change).
    """
    return [
        f"data.train={census_slice['train']}",
        f"data.test={census_slice['test']}",
        "train.epochs=2",
        "train.batch_size=128",
        "train.lr=0.01",
        "train.lr_schedule=constant",
    ]


@pytest.fixture(autouse=True, scope="session")
def _one_torch_thread():
    """Tests use tiny models: one intra-op thread avoids OpenMP oversubscription on a loaded machine."""
    import torch

    previous = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(previous)
