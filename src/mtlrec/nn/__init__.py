"""Neural layers that know nothing of config, features or tasks: tensors in, tensors out."""

from mtlrec.nn.embedding import FusedEmbedding, InputLayer
from mtlrec.nn.experts import ParallelExperts, SoftmaxGate, gated_experts, mix_experts
from mtlrec.nn.mlp import ACTIVATIONS, MLP, Tower

__all__ = [
    "ACTIVATIONS",
    "MLP",
    "FusedEmbedding",
    "InputLayer",
    "ParallelExperts",
    "SoftmaxGate",
    "Tower",
    "gated_experts",
    "mix_experts",
]
