"""Neural layers that know nothing of config, features or tasks: tensors in, tensors out."""

from mtlrec.nn.embedding import EmbeddingCollection, Lookup, Table
from mtlrec.nn.experts import ParallelExperts, SoftmaxGate, gated_experts, mix_experts
from mtlrec.nn.jagged import POOLINGS
from mtlrec.nn.mlp import ACTIVATIONS, MLP, Tower
from mtlrec.nn.sequence import SEQUENCE_ENCODERS, SequencePooling, TargetAttention

__all__ = [
    "ACTIVATIONS",
    "MLP",
    "POOLINGS",
    "SEQUENCE_ENCODERS",
    "EmbeddingCollection",
    "Lookup",
    "ParallelExperts",
    "SequencePooling",
    "SoftmaxGate",
    "Table",
    "TargetAttention",
    "Tower",
    "gated_experts",
    "mix_experts",
]
