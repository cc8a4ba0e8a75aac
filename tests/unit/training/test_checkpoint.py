"""Checkpoints (torch.save / weights_only load) and weights (safetensors), written atomically."""

from __future__ import annotations

import random
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file
from torch import nn

from mtlrec.errors import MtlrecError, RunDirError
from mtlrec.training import load_checkpoint, load_weights, save_checkpoint, save_weights


class Payload:
    """An arbitrary Python object: unpickling it would need code from this module."""

    def __init__(self):
        self.value = 42

    def __reduce__(self):  # what a malicious checkpoint would do: call an arbitrary function on load
        return (_mark_loaded, ())


LOADED = []


def _mark_loaded():
    LOADED.append(True)
    return "payload ran"


def small_model(seed: int = 0, width: int = 3) -> nn.Module:
    torch.manual_seed(seed)
    return nn.Sequential(nn.Linear(4, width), nn.BatchNorm1d(width), nn.ReLU(), nn.Linear(width, 2))


def assert_no_temp_files(directory: Path, expected: set[str]) -> None:
    assert {p.name for p in directory.iterdir()} == expected


def test_checkpoint_round_trip(tmp_path):
    torch.manual_seed(3)
    model = small_model()
    optimizer = torch.optim.Adam(model.parameters())
    model(torch.randn(8, 4)).sum().backward()
    optimizer.step()
    state = {
        "epoch": 3,
        "lr": 1e-3,
        "name": "mmoe",
        "flags": [True, False, None],
        "model": model.state_dict(),
        "optimizer": optimizer.state_dict(),
        "nested": {"a": {"b": [torch.arange(3), {"c": torch.tensor(1.5, dtype=torch.float64)}]}},
        "torch_rng": torch.get_rng_state(),
        "python_rng": random.getstate(),
        "int_tensor": torch.tensor([1, 2], dtype=torch.int64),
        "bool_tensor": torch.tensor([True, False]),
    }
    expected_torch_draw, expected_python_draw = torch.rand(5), random.random()
    path = tmp_path / "checkpoint.pt"
    save_checkpoint(path, state)
    loaded = load_checkpoint(path)

    assert loaded["epoch"] == 3 and loaded["lr"] == 1e-3 and loaded["name"] == "mmoe"
    assert loaded["flags"] == [True, False, None]
    assert loaded["model"].keys() == state["model"].keys()
    for key, tensor in state["model"].items():
        assert torch.equal(loaded["model"][key], tensor), key
        assert loaded["model"][key].dtype == tensor.dtype
    assert loaded["optimizer"]["param_groups"] == state["optimizer"]["param_groups"]
    for index, moments in state["optimizer"]["state"].items():
        for key, value in moments.items():
            assert torch.equal(loaded["optimizer"]["state"][index][key], value)
    nested = loaded["nested"]["a"]["b"]
    assert torch.equal(nested[0], torch.arange(3))
    assert nested[1]["c"].dtype == torch.float64 and nested[1]["c"].item() == 1.5
    assert torch.equal(loaded["int_tensor"], state["int_tensor"])
    assert torch.equal(loaded["bool_tensor"], state["bool_tensor"])
    assert loaded["python_rng"] == state["python_rng"]

    # the restored RNG states reproduce the draws that followed the saved states
    torch.rand(7), random.random()
    torch.set_rng_state(loaded["torch_rng"])
    random.setstate(loaded["python_rng"])
    assert torch.equal(torch.rand(5), expected_torch_draw)
    assert random.random() == expected_python_draw


def test_checkpoint_written_atomically_leaves_no_temp_files(tmp_path):
    path = tmp_path / "checkpoint.pt"
    save_checkpoint(path, {"epoch": 0})
    save_checkpoint(path, {"epoch": 1})  # overwrite in place
    assert load_checkpoint(path) == {"epoch": 1}
    assert_no_temp_files(tmp_path, {"checkpoint.pt"})


def test_failed_checkpoint_write_keeps_the_previous_file(tmp_path):
    path = tmp_path / "checkpoint.pt"
    save_checkpoint(path, {"epoch": 1})
    with pytest.raises(Exception):  # noqa: B017 - pickling a lambda fails inside torch.save
        save_checkpoint(path, {"epoch": 2, "unpicklable": lambda: None})
    assert load_checkpoint(path) == {"epoch": 1}
    assert_no_temp_files(tmp_path, {"checkpoint.pt"})


def test_checkpoint_creates_missing_parent_directories(tmp_path):
    path = tmp_path / "run" / "nested" / "checkpoint.pt"
    save_checkpoint(path, {"epoch": 4})
    assert load_checkpoint(path) == {"epoch": 4}


def test_missing_checkpoint_raises_run_dir_error_naming_the_path(tmp_path):
    path = tmp_path / "nowhere" / "checkpoint.pt"
    with pytest.raises(RunDirError, match="checkpoint") as info:
        load_checkpoint(path)
    assert str(path) in str(info.value)
    assert isinstance(info.value, MtlrecError)


@pytest.mark.parametrize("content", [b"", b"not a checkpoint at all", b"PK\x03\x04garbage"])
def test_corrupt_checkpoint_raises_run_dir_error_naming_the_path(tmp_path, content):
    path = tmp_path / "checkpoint.pt"
    path.write_bytes(content)
    with pytest.raises(RunDirError) as info:
        load_checkpoint(path)
    assert str(path) in str(info.value)


def test_truncated_checkpoint_raises_run_dir_error(tmp_path):
    path = tmp_path / "checkpoint.pt"
    save_checkpoint(path, {"weights": torch.randn(100, 10)})
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])
    with pytest.raises(RunDirError) as info:
        load_checkpoint(path)
    assert str(path) in str(info.value)


class PlainObject:
    """An ordinary object of a class defined in this test module."""

    def __init__(self):
        self.value = 42


def test_checkpoint_with_an_object_of_a_test_class_is_refused(tmp_path):
    path = tmp_path / "checkpoint.pt"
    torch.save({"epoch": 1, "object": PlainObject()}, path)
    assert torch.load(path, weights_only=False)["object"].value == 42  # loadable by a plain unpickler
    with pytest.raises(RunDirError) as info:
        load_checkpoint(path)
    assert str(path) in str(info.value)


def test_checkpoint_with_an_arbitrary_python_object_is_refused(tmp_path):
    """Proves ``weights_only`` loading: a plain torch.load would run the payload's reducer."""
    path = tmp_path / "checkpoint.pt"
    torch.save({"epoch": 1, "payload": Payload()}, path)
    assert torch.load(path, weights_only=False)["payload"] == "payload ran"  # the file really is hostile
    LOADED.clear()
    with pytest.raises(RunDirError) as info:
        load_checkpoint(path)
    assert str(path) in str(info.value)
    assert LOADED == []


def test_weights_round_trip_through_safetensors(tmp_path):
    source = small_model(seed=0)
    source.train()
    source(torch.randn(8, 4))  # move the batch-norm running statistics (buffers)
    target = small_model(seed=1)
    path = tmp_path / "model.safetensors"
    save_weights(source, path)
    assert set(load_file(str(path))) == set(source.state_dict())  # a real safetensors file
    load_weights(target, path)
    for key, tensor in source.state_dict().items():
        assert torch.equal(target.state_dict()[key], tensor), key
    x = torch.randn(5, 4)
    source.eval(), target.eval()
    assert torch.equal(source(x), target(x))
    assert_no_temp_files(tmp_path, {"model.safetensors"})


def test_save_weights_overwrites_atomically(tmp_path):
    path = tmp_path / "model.safetensors"
    save_weights(small_model(seed=0), path)
    newer = small_model(seed=5)
    save_weights(newer, path)
    target = small_model(seed=1)
    load_weights(target, path)
    assert torch.equal(target[0].weight, newer[0].weight)
    assert_no_temp_files(tmp_path, {"model.safetensors"})


def test_load_weights_into_a_model_of_another_shape_raises_run_dir_error(tmp_path):
    path = tmp_path / "model.safetensors"
    save_weights(small_model(width=3), path)
    with pytest.raises(RunDirError) as info:
        load_weights(small_model(width=5), path)
    assert str(path) in str(info.value)


def test_load_weights_with_missing_keys_raises_run_dir_error(tmp_path):
    path = tmp_path / "model.safetensors"
    save_weights(nn.Linear(4, 3), path)
    with pytest.raises(RunDirError):
        load_weights(small_model(), path)


def test_load_weights_from_a_missing_file_raises_run_dir_error(tmp_path):
    path = tmp_path / "model.safetensors"
    with pytest.raises(RunDirError) as info:
        load_weights(small_model(), path)
    assert str(path) in str(info.value)


def test_load_weights_from_a_corrupt_file_raises_run_dir_error(tmp_path):
    path = tmp_path / "model.safetensors"
    path.write_bytes(b"\x10\x00\x00\x00\x00\x00\x00\x00{not json}......")
    with pytest.raises(RunDirError) as info:
        load_weights(small_model(), path)
    assert str(path) in str(info.value)
