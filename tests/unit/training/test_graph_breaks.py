"""``train.compile`` traces the hot path of MMoE, PLE and the sequence encoders as one graph each: no graph
break (TorchDynamo's explanation of one forward; tracing only, nothing is compiled)."""

from __future__ import annotations

import pytest
import torch

from mtlrec.architectures import PLE, MMoE
from mtlrec.nn.jagged import JaggedRows
from mtlrec.nn.sequence import SEQUENCE_ENCODERS

TASKS = ["ctr", "cvr"]


def graph_breaks(function, *args, **kwargs) -> list[str]:
    explanation = torch._dynamo.explain(function)(*args, **kwargs)
    assert explanation.graph_count >= 1
    return [reason.reason for reason in explanation.break_reasons]


@pytest.mark.parametrize(
    "architecture",
    [
        MMoE(12, TASKS, num_experts=3, expert_hidden_units=[16, 8], tower_hidden_units=[4]),
        PLE(12, TASKS),  # two levels of extraction networks
    ],
    ids=["mmoe", "ple"],
)
def test_architectures_trace_without_graph_breaks(architecture):
    x = torch.randn(32, 12, requires_grad=True)
    assert graph_breaks(architecture, x) == []


@pytest.mark.parametrize("name", sorted(SEQUENCE_ENCODERS))
def test_sequence_encoders_trace_without_graph_breaks_padded_and_jagged(name):
    encoder = SEQUENCE_ENCODERS[name](8, 8)
    sequence, query = torch.randn(6, 5, 8), torch.randn(6, 8)
    lengths = torch.tensor([0, 1, 5, 3, 2, 4])
    assert graph_breaks(encoder, sequence, lengths, query) == []
    positions = JaggedRows.from_lengths(lengths, 5)
    assert graph_breaks(encoder.forward_jagged, positions.values(sequence), positions, query) == []
