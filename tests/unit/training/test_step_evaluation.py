"""Validation every N steps: records, selection and patience per evaluation, max_steps, and a resume
mid-epoch that continues exactly like the run that was never interrupted."""

from __future__ import annotations

import math

import pytest
import torch
from tests.small_runs import built_trainer

from mtlrec.training import load_weights
from mtlrec.training.position import LossSums, Position
from mtlrec.training.schedule import lr_factor

# 200 rows: 150 train (15 steps of 10), 50 valid; dropout on the embeddings and experts, so that a resume
# must also restore the random state to match
ROWS = 200
MODEL = {"embedding_dropout": 0.3, "params": {"num_experts": 2, "dropout": 0.2}}


def trainer_of(tmp_path, run="run", **train):
    return built_trainer(tmp_path, rows=ROWS, model=MODEL, run=run, **train)


def test_evaluations_every_n_steps_and_at_each_epochs_end(tmp_path):
    trainer, data = trainer_of(tmp_path, epochs=2, eval_every_steps=4, early_stopping={"patience": 99})
    seen = []
    result = trainer.fit(data["train"], data["valid"], on_evaluation=seen.append)
    steps = [record["step"] for record in result.history]
    assert steps == [4, 8, 12, 15, 16, 20, 24, 28, 30]  # every 4 global steps, and the epochs' ends (15, 30)
    assert [record["epoch"] for record in result.history] == [1, 1, 1, 1, 2, 2, 2, 2, 2]
    assert [record["epochs_done"] for record in result.history] == [round(step / 15, 4) for step in steps]
    assert [record["rows_seen"] for record in result.history] == [step * 10 for step in steps]  # batches of 10
    assert seen == result.history and all("valid" in record for record in seen)
    criterion = [record["selection"]["criterion"] for record in result.history]
    best = max(range(len(criterion)), key=lambda i: (criterion[i], -i))
    assert result.best_step == steps[best] and result.best_value == criterion[best]


def test_the_weights_kept_are_those_of_the_best_evaluation(tmp_path):
    trainer, data = trainer_of(tmp_path, epochs=2, eval_every_steps=3, early_stopping={"patience": 99})
    snapshots = []
    trainer.fit(
        data["train"],
        data["valid"],
        on_evaluation=lambda record: snapshots.append({k: v.clone() for k, v in trainer.model.state_dict().items()}),
    )
    best = trainer.stopper.best_index
    load_weights(trainer.model, trainer.files.weights)
    assert all(torch.equal(value, snapshots[best][name]) for name, value in trainer.model.state_dict().items())


def test_patience_counts_evaluations_not_epochs(tmp_path):
    trainer, data = trainer_of(tmp_path, epochs=5, eval_every_steps=2, early_stopping={"patience": 2})
    values = iter([0.5, 0.6, 0.55, 0.58, 0.9])  # the best at the 2nd evaluation, then two without improvement
    trainer._selection_value = lambda record: (next(values), True)
    result = trainer.fit(data["train"], data["valid"])
    assert [record["step"] for record in result.history] == [2, 4, 6, 8]
    assert result.best_step == 4 and trainer.global_step == 8  # stopped inside the first epoch (15 steps)


def test_max_steps_ends_training_and_the_schedule_spans_it(tmp_path):
    trainer, data = trainer_of(tmp_path, epochs=3, max_steps=23, lr_schedule="cosine", early_stopping=None)
    factors = []
    scale = trainer.optimizer.scale_lr
    trainer.optimizer.scale_lr = lambda factor: (factors.append(factor), scale(factor))
    result = trainer.fit(data["train"], data["valid"])
    assert trainer.global_step == 23 and [r["step"] for r in result.history] == [15, 23]
    assert factors == [lr_factor("cosine", step, 23) for step in range(23)]


def test_an_evaluation_hook_that_raises_ends_training_after_the_checkpoint(tmp_path):
    trainer, data = trainer_of(tmp_path, epochs=2, eval_every_steps=5)

    def stop(record):
        if record["step"] == 5:
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        trainer.fit(data["train"], data["valid"], on_evaluation=stop)
    assert trainer.global_step == 5 and trainer.files.checkpoint.is_file()


def untimed(history):
    return [{key: value for key, value in record.items() if key != "samples_per_second"} for record in history]


class Killed(Exception):
    """Stands for the process dying between two evaluations."""


@pytest.mark.parametrize("crash_after", [7, 15, 22])  # inside epoch 1, at its end, inside epoch 2
def test_a_run_resumed_mid_epoch_ends_exactly_like_an_uninterrupted_one(tmp_path, crash_after):
    torch.set_num_threads(1)
    settings = {"epochs": 2, "eval_every_steps": 3, "early_stopping": {"patience": 99}}
    whole, data = trainer_of(tmp_path, run="whole", **settings)
    whole_result = whole.fit(data["train"], data["valid"])

    interrupted, data = trainer_of(tmp_path, run="resumed", **settings)
    train_step = interrupted.train_step

    def dying_step(batch):
        if interrupted.global_step == crash_after:
            raise Killed
        return train_step(batch)

    interrupted.train_step = dying_step
    with pytest.raises(Killed):
        interrupted.fit(data["train"], data["valid"])

    resumed, data = built_trainer(tmp_path, rows=ROWS, model=MODEL, run="resumed_again", **settings)
    resumed.files = interrupted.files  # the same run directory, a fresh process's objects
    torch.manual_seed(12345)  # whatever the random state now, the checkpoint's is restored
    result = resumed.fit(data["train"], data["valid"], resume=True)
    assert untimed(result.history) == untimed(whole_result.history)
    assert result.best_step == whole_result.best_step
    for name, value in whole.model.state_dict().items():
        assert torch.equal(resumed.model.state_dict()[name], value), name


def test_the_position_of_a_checkpoint_from_before_step_evaluation_is_the_next_epoch():
    old = {"epoch": 1}  # epochs 0 and 1 were finished
    position = Position.from_state_dict(old, steps_of_epoch=lambda epoch: 7, device=torch.device("cpu"))
    assert (position.epoch, position.step, position.global_step, position.epoch_sums) == (2, 0, 14, None)


def test_a_position_round_trips_with_its_epoch_sums():
    sums = LossSums.zeros(2, torch.device("cpu"))
    sums.add(torch.tensor([0.5, 1.0]), torch.tensor([1.0, 2.0]), 10)
    state = Position(1, 4, 11, sums).state_dict()
    position = Position.from_state_dict(state, steps_of_epoch=lambda epoch: 7, device=torch.device("cpu"))
    assert (position.epoch, position.step, position.global_step) == (1, 4, 11)
    assert torch.equal(position.epoch_sums.losses, torch.tensor([5.0, 10.0])) and position.epoch_sums.rows == 10
    assert not math.isnan(float(position.epoch_sums.weights.sum()))
