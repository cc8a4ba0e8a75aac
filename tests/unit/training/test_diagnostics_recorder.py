"""The diagnostics hook: gradient cosines against separate backward passes, gate alarms, sampling, bounds, resume."""

from __future__ import annotations

import json
import logging
import math

import numpy as np
import pytest
import torch
from tests.keyed_models import id_dense_inputs, keyed

from mtlrec.app.run_files import RunFiles
from mtlrec.architectures.moe import MMoE
from mtlrec.architectures.shared_bottom import SharedBottom
from mtlrec.data.batch import Batch, EncodedData
from mtlrec.losses import LOSSES, task_losses
from mtlrec.model import MultiTaskModel
from mtlrec.training import Trainer, TrainSettings, make_optimizer
from mtlrec.training.diagnostics import DiagnosticsRecorder, DiagnosticsSettings
from mtlrec.weighting import WEIGHTINGS

TASKS = ["ctr", "cvr"]
VOCAB, EMBED, DENSE, EXPERTS = [10, 10], 4, 3, 4


def make_model(seed: int = 0, architecture: str = "mmoe") -> MultiTaskModel:
    torch.manual_seed(seed)
    width = len(VOCAB) * EMBED + DENSE
    if architecture == "mmoe":
        arch = MMoE(width, TASKS, num_experts=EXPERTS, expert_hidden_units=[8], tower_hidden_units=[4])
    else:
        arch = SharedBottom(width, TASKS, bottom_hidden_units=[8], tower_hidden_units=[4])
    return MultiTaskModel(id_dense_inputs(VOCAB, EMBED, DENSE), arch, ["all"])


def make_batch(seed: int, rows: int = 32) -> Batch:
    generator = torch.Generator().manual_seed(seed)
    ids = torch.randint(0, 10, (rows, len(VOCAB)), generator=generator)
    dense = torch.randn(rows, DENSE, generator=generator)
    labels = {task: (torch.rand(rows, generator=generator) < 0.4).float() for task in TASKS}
    return Batch(keyed(ids, dense), labels)


def _split(labels: torch.Tensor) -> EncodedData:
    """A split of (N, T) labels (the inputs do not matter to the label correlation)."""
    rows = len(labels)
    inputs = {"f0": torch.zeros(rows, dtype=torch.long), "f1": torch.zeros(rows, dtype=torch.long)}
    return EncodedData(Batch(inputs, {task: labels[:, i] for i, task in enumerate(TASKS)}), TASKS)


LOSS_FUNCTIONS = {task: LOSSES["bce"](masked=True) for task in TASKS}


def recorder_for(model, tmp_path, **settings) -> DiagnosticsRecorder:
    return DiagnosticsRecorder(model, TASKS, DiagnosticsSettings(**settings), tmp_path / "diagnostics.json")


def sampled_step(recorder: DiagnosticsRecorder, model, batch: Batch) -> bool:
    """What the trainer does around a step, without the optimizer."""
    sampled = recorder.start_step()
    losses = task_losses(model(batch.inputs), batch.labels, LOSS_FUNCTIONS)
    if sampled:
        recorder.observe_losses(losses)
        recorder.observe_weights(torch.ones(len(TASKS)))
    return sampled


def test_gradient_cosine_equals_that_of_separate_backward_passes_on_the_experts(tmp_path):
    model, batch = make_model(), make_batch(0)
    recorder = recorder_for(model, tmp_path, every_steps=1)
    sampled_step(recorder, model, batch)
    recorded = recorder.data["steps"][0]["grad_cosine"]

    experts = list(model.architecture.experts.parameters())  # MMoE's shared parameters
    grads = []
    for index in range(len(TASKS)):
        model.zero_grad()
        task_losses(model(batch.inputs), batch.labels, LOSS_FUNCTIONS)[index].backward()
        grads.append(torch.cat([p.grad.flatten() for p in experts]).double())
    expected = float(grads[0] @ grads[1] / (grads[0].norm() * grads[1].norm()))
    assert recorded[0][1] == pytest.approx(expected, abs=1e-6)
    assert recorded[1][0] == recorded[0][1] and recorded[0][0] == 1.0


def _trainer(model, recorder, strategy_name, tmp_path) -> Trainer:
    strategy = WEIGHTINGS[strategy_name](num_tasks=len(TASKS))
    optimizer = make_optimizer(model.embedding_parameters(), model.parameters(), "adam", 0.01)
    settings = TrainSettings(epochs=1, batch_size=32, seed=0)
    metrics = {task: ["auc"] for task in TASKS}
    files = RunFiles(tmp_path)
    return Trainer(model, LOSS_FUNCTIONS, strategy, optimizer, metrics, settings, files, diagnostics=recorder)


@pytest.mark.parametrize("strategy", ["equal", "pcgrad"])
def test_sampling_every_step_leaves_training_unchanged(tmp_path, strategy):
    plain, probed = make_model(), make_model()
    recorder = recorder_for(probed, tmp_path, every_steps=1)
    trainers = [_trainer(plain, None, strategy, tmp_path), _trainer(probed, recorder, strategy, tmp_path)]
    for step in range(3):
        results = [trainer.train_step(make_batch(step)) for trainer in trainers]
        torch.testing.assert_close(results[0], results[1], rtol=0, atol=0)
    for a, b in zip(plain.parameters(), probed.parameters()):
        torch.testing.assert_close(a, b, rtol=0, atol=0)
    assert [r["step"] for r in recorder.data["steps"]] == [0, 1, 2]
    assert not probed.architecture.record_gates, "gate recording is switched off after a sampled step"


def test_steps_are_sampled_every_n_and_losses_recorded(tmp_path):
    model = make_model()
    recorder = recorder_for(model, tmp_path, every_steps=3)
    flags = [sampled_step(recorder, model, make_batch(step)) for step in range(10)]
    assert flags == [step % 3 == 0 for step in range(10)]
    steps = recorder.data["steps"]
    assert [r["step"] for r in steps] == [0, 3, 6, 9]
    expected = task_losses(model(make_batch(9).inputs), make_batch(9).labels, LOSS_FUNCTIONS)
    assert steps[-1]["loss"] == pytest.approx(dict(zip(TASKS, expected.tolist())))
    assert steps[-1]["loss_weights"] == {"ctr": 1.0, "cvr": 1.0}


def _set_gate(model, task: str, bias: list[float]) -> None:
    gate = model.architecture.gates[task].linear
    with torch.no_grad():
        gate.weight.zero_()
        gate.bias.copy_(torch.tensor(bias))


def test_a_collapsed_gate_and_a_dead_expert_raise_one_warning(tmp_path, caplog):
    model = make_model()
    _set_gate(model, "ctr", [12.0, 0.0, -20.0, 0.0])  # ≈ 99.99% on e0; e2 ≈ 0
    _set_gate(model, "cvr", [0.0, 0.0, -20.0, 0.0])  # ≈ 1/3 on e0, e1, e3; e2 ≈ 0
    recorder = recorder_for(model, tmp_path, every_steps=1)
    for step in range(2):
        sampled_step(recorder, model, make_batch(step))
    with caplog.at_level(logging.WARNING, logger="mtlrec.train"):
        messages = recorder.end_epoch({"epoch": 1})
    alarms = recorder.data["epochs"][0]["alarms"]
    assert {(a["kind"], a.get("gate"), a["expert"]) for a in alarms} == {
        ("collapse", "ctr", "e0"),
        ("dead", None, "e2"),
    }
    assert len(messages) == 2 and len([r for r in caplog.records if r.levelno == logging.WARNING]) == 1
    gates = recorder.data["epochs"][0]["gates"]
    assert gates["cvr"]["mean"] == pytest.approx([1 / 3, 1 / 3, 0.0, 1 / 3], abs=1e-6)
    assert gates["cvr"]["entropy"] == pytest.approx(math.log(3), abs=1e-6)


def test_evenly_spread_gates_raise_no_alarm(tmp_path):
    model = make_model()
    for task in TASKS:
        _set_gate(model, task, [0.0] * EXPERTS)
    recorder = recorder_for(model, tmp_path, every_steps=1)
    sampled_step(recorder, model, make_batch(0))
    assert recorder.end_epoch({"epoch": 1}) == []
    summary = recorder.data["epochs"][0]["gates"]["ctr"]
    assert summary["mean"] == pytest.approx([0.25] * 4) and summary["entropy"] == pytest.approx(math.log(4))
    assert recorder.data["gate_layout"]["ctr"] == {"level": "", "experts": ["e0", "e1", "e2", "e3"]}


def test_step_records_stay_bounded_and_evenly_spaced(tmp_path):
    model = make_model(architecture="shared_bottom")
    recorder = recorder_for(model, tmp_path, every_steps=1, max_step_records=4)
    batch = make_batch(0)
    for _ in range(20):
        sampled_step(recorder, model, batch)
    steps = [r["step"] for r in recorder.data["steps"]]
    stride = recorder.data["step_stride"]
    assert len(steps) <= 4 and steps == list(range(0, 20, stride)) and stride == 8
    assert "gates" not in recorder.data["steps"][0], "shared-bottom has no gates"


def test_file_is_strict_json_and_a_task_without_gradient_has_undefined_cosines(tmp_path):
    model = make_model()
    recorder = recorder_for(model, tmp_path, every_steps=1)
    labels = torch.tensor([[1.0, math.nan], [0.0, math.nan], [1.0, math.nan]])
    train = _split(labels)
    recorder.begin(train)
    batch = make_batch(0, rows=3)
    batch.labels["cvr"] = torch.full((3,), math.nan)  # no cvr label in the batch: a zero gradient
    sampled_step(recorder, model, batch)
    recorder.end_epoch({"epoch": 1})
    data = json.loads(recorder.path.read_text(), parse_constant=lambda name: pytest.fail(f"{name} in JSON"))
    assert data["steps"][0]["grad_cosine"] == [[1.0, None], [None, None]]
    assert data["label_correlation"]["pearson"] == [[1.0, None], [None, None]], "cvr has no label"


def test_label_correlation_is_written_before_training(tmp_path):
    rng = np.random.default_rng(0)
    labels = (rng.random((300, 2)) < [0.3, 0.6]).astype(np.float32)
    labels[:, 1] = np.where(rng.random(300) < 0.7, labels[:, 0], labels[:, 1])
    train = _split(torch.from_numpy(labels))
    recorder = recorder_for(make_model(), tmp_path, every_steps=0)
    recorder.begin(train)
    written = json.loads(recorder.path.read_text())["label_correlation"]
    np.testing.assert_allclose(written["pearson"], np.corrcoef(labels, rowvar=False), atol=1e-6)
    assert written["rows"] == [[300, 300], [300, 300]]
    assert not recorder.start_step(), "every_steps 0 samples nothing"


def test_a_streamed_source_gets_no_label_correlation(tmp_path):
    class _Stream:  # a TrainSource: batches only, no labels held in memory
        rows = 4

        def epoch(self, epoch):
            yield make_batch(epoch)

    recorder = recorder_for(make_model(), tmp_path, every_steps=1)
    recorder.begin(_Stream())
    assert json.loads(recorder.path.read_text())["label_correlation"] is None
    _Stream.task_names = TASKS  # measured by the fitting pass (cvr: constant on its rows)
    _Stream.label_correlation = (np.array([[1.0, -0.25], [-0.25, np.nan]]), np.array([[4, 3], [3, 3]]))
    recorder.begin(_Stream())
    written = json.loads(recorder.path.read_text())["label_correlation"]
    assert written == {"tasks": TASKS, "pearson": [[1.0, -0.25], [-0.25, None]], "rows": [[4, 3], [3, 3]]}


def test_a_resumed_stream_keeps_the_label_correlation_recorded_before(tmp_path):
    class _Stream:
        rows, task_names = 4, TASKS
        label_correlation = (np.array([[1.0, 0.5], [0.5, 1.0]]), np.array([[4, 4], [4, 4]]))

    model = make_model()
    first = recorder_for(model, tmp_path, every_steps=0)
    first.begin(_Stream())
    first.end_epoch({"epoch": 1})
    _Stream.label_correlation = None  # on resume the features are loaded, not fitted: nothing measured
    resumed = recorder_for(model, tmp_path, every_steps=0)
    resumed.begin(_Stream(), start_epoch=1)
    assert json.loads(resumed.path.read_text())["label_correlation"]["pearson"] == [[1.0, 0.5], [0.5, 1.0]]


def test_resume_keeps_the_epochs_before_the_checkpoint(tmp_path):
    model = make_model()
    train = _split(torch.ones(4, 2))
    recorder = recorder_for(model, tmp_path, every_steps=2)
    recorder.begin(train)
    for epoch in (1, 2):
        for step in range(5):
            sampled_step(recorder, model, make_batch(step))
        recorder.end_epoch({"epoch": epoch})
    resumed = recorder_for(model, tmp_path, every_steps=2)
    resumed.begin(train, start_epoch=1)
    assert [e["epoch"] for e in resumed.data["epochs"]] == [1]
    assert [r["step"] for r in resumed.data["steps"]] == [0, 2, 4]
    assert resumed.steps_done == 5 and resumed.epoch == 2
    assert sampled_step(resumed, model, make_batch(0)) is False and sampled_step(resumed, model, make_batch(0))


class _FakeWriter:
    def __init__(self):
        self.scalars: dict[str, list[tuple[int, float]]] = {}
        self.flushed = 0

    def add_scalar(self, tag: str, scalar_value: float, global_step: int) -> None:
        self.scalars.setdefault(tag, []).append((global_step, scalar_value))

    def flush(self) -> None:
        self.flushed += 1


def test_tensorboard_writer_gets_the_sampled_values(tmp_path):
    model, writer = make_model(), _FakeWriter()
    recorder = DiagnosticsRecorder(model, TASKS, DiagnosticsSettings(every_steps=2), tmp_path / "d.json", writer)
    for step in range(3):
        sampled_step(recorder, model, make_batch(step))
    recorder.end_epoch({"epoch": 1, "train_loss": {"ctr": 0.5, "cvr": 0.4}, "valid": {"ctr": {"auc": 0.7}}})
    record = recorder.data["steps"][-1]
    assert writer.scalars["grad_cosine/ctr~cvr"] == [
        (0, recorder.data["steps"][0]["grad_cosine"][0][1]),
        (2, record["grad_cosine"][0][1]),
    ]
    assert writer.scalars["loss/cvr"][-1] == (2, record["loss"]["cvr"])
    assert writer.scalars["gate_entropy/ctr"][-1] == (2, record["gates"]["ctr"]["entropy"])
    assert writer.scalars["epoch/valid/ctr/auc"] == [(3, 0.7)] and writer.flushed == 1
