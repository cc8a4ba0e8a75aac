"""Model selection when the criterion is undefined: an error before training, or the last epoch's weights."""

from __future__ import annotations

import dataclasses
import math

import pytest
from tests.small_runs import built_trainer

from mtlrec.errors import DataError
from mtlrec.evaluation.selection import SelectionCriterion
from mtlrec.training import load_weights


@dataclasses.dataclass(frozen=True)
class UndefinedAfterStart(SelectionCriterion):
    """Defined for the check before training, NaN at every epoch after (as for a model that diverges)."""

    calls: list = dataclasses.field(default_factory=list)

    def evaluate(self, metrics):
        result = super().evaluate(metrics)
        self.calls.append(result["criterion"])
        return result if len(self.calls) == 1 else {**result, "criterion": math.nan}


def test_a_criterion_undefined_at_every_epoch_keeps_the_last_epochs_weights(tmp_path, caplog):
    trainer, data = built_trainer(tmp_path, epochs=3, early_stopping={"metric": "click.auc", "patience": 5})
    selection = trainer.settings.selection
    trainer.settings.selection = UndefinedAfterStart(selection.criterion, selection.higher_is_better)
    result = trainer.fit(data["train"], data["valid"])
    assert result.best_epoch == 2 and len(result.history) == 3  # the last epoch, 0-based
    assert "undefined (NaN) at every evaluation; the latest weights are kept" in caplog.text
    saved = trainer.model.state_dict()
    load_weights(trainer.model, trainer.files.weights)  # the weights file exists and holds the last epoch
    assert all((saved[name] == value).all() for name, value in trainer.model.state_dict().items())


def test_a_criterion_undefined_before_training_is_an_error_naming_the_task(tmp_path):
    trainer, data = built_trainer(tmp_path, early_stopping={"metric": "click.auc"})
    valid = data["valid"]
    valid.labels["click"][:] = 1.0  # one class only
    expected = r"click\.auc cannot be computed \(task 'click': 10 labelled row\(s\), one class only \(1\)"
    with pytest.raises(DataError, match=expected):
        trainer.fit(data["train"], valid)
    assert not trainer.files.weights.exists() and not trainer.history
