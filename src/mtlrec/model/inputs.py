"""The input layer: model inputs keyed by name → one (B, D_g) tensor per feature group.

Members of a group are features by name: an embedded id, a pooled bag, a dense value (one column),
or a sequence read through its sequence encoder. The embedding collection looks every id up (one
gather per table width); each sequence is its fields' embeddings side by side (B, L, ΣE), encoded
against its query (the candidate's embeddings, side by side, for target attention). A group's
members are concatenated in the group's order. Groups read as ids (``id_groups``: STAR's domain)
give the raw (B,) ids of their one feature. Inputs with one row (a request's context) are
broadcast to the candidates' N rows here, after their lookup and encoding.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass

import torch
from torch import nn

from mtlrec.nn.broadcast import common_rows, expand_rows, same_rows, side_by_side
from mtlrec.nn.embedding import EmbeddingCollection, Embeddings


@dataclass(frozen=True)
class SequenceInput:
    """How a sequence feature reaches its encoder.

    Attributes:
        name: the feature (the group member it becomes).
        fields: its fields' lookups (each (B, L, E_i)), side by side in this order.
        lengths: its (B,) lengths input.
        query: the lookups (each (B, E_i)) forming the query, aligned with ``fields``; empty for pooling.
    """

    name: str
    fields: tuple[str, ...]
    lengths: str
    query: tuple[str, ...] = ()


class ModelInputs(nn.Module):
    """{input name: tensor} → {group: (B, D_g)} (and {id group: (B,) ids}).

    Args:
        embeddings: looks up every id input.
        sequences: the sequence features, with ``encoders`` (a module per sequence name).
        encoders: {sequence name: encoder from ``SEQUENCE_ENCODERS``}.
        dense: the dense inputs ((B,) float values).
        groups: {group: member names}; a member is an embedded input, a dense input or a sequence.
        id_groups: {group: its one id input}, for groups an architecture reads as ids.
        dropout: dropout probability on the embedded members' values (ids, bags, encoded sequences; not the
            dense values) while training (Srivastava et al., JMLR 2014).
    """

    def __init__(
        self,
        embeddings: EmbeddingCollection,
        sequences: list[SequenceInput],
        encoders: dict[str, nn.Module],
        dense: list[str],
        groups: dict[str, list[str]],
        id_groups: dict[str, str] | None = None,
        dropout: float = 0.0,
    ):
        super().__init__()
        self.embeddings = embeddings
        self.dropout = nn.Dropout(dropout) if dropout > 0 else nn.Identity()
        self.sequences = list(sequences)
        self.encoders = nn.ModuleDict(encoders)
        self.dense = list(dense)
        self.groups = {name: list(members) for name, members in groups.items()}
        self.id_groups = dict(id_groups or {})
        # members: single ids and pooled bags (not the fields of a sequence: its encoder's output is one)
        members = [lookup for lookup in embeddings.lookups if lookup.pooling is not None or lookup.lengths is None]
        widths = {lookup.input: embeddings.output_dim(lookup.input) for lookup in members}
        widths.update({name: 1 for name in self.dense})
        widths.update({s.name: self.encoders[s.name].output_dim() for s in self.sequences})
        unknown = sorted({m for members in self.groups.values() for m in members} - set(widths))
        if unknown:
            raise ValueError(f"feature groups name unknown member(s) {unknown}")
        self.member_widths = widths
        self.widths = {group: sum(widths[m] for m in members) for group, members in self.groups.items()}
        single = {lookup.input for lookup in embeddings.lookups if lookup.lengths is None}
        kinds = {name: "embedded" if name in single else "dense" if name in self.dense else "value" for name in widths}
        self.segments = {group: _segments(members, kinds) for group, members in self.groups.items()}

    def output_dim(self, group: str) -> int:
        """D_g, the width of ``group``'s tensor."""
        return self.widths[group]

    def field_dims(self, groups: list[str]) -> list[int]:
        """The widths of the fields (members) of ``groups`` side by side, in order."""
        return [self.member_widths[member] for member in self.field_names(groups)]

    def field_names(self, groups: list[str]) -> list[str]:
        """The fields (members) of ``groups`` side by side, in order."""
        return [member for group in groups for member in self.groups[group]]

    def embedding_parameters(self) -> list[nn.Parameter]:
        return self.embeddings.embedding_parameters()

    def forward(
        self, inputs: Mapping[str, torch.Tensor], encoders: Mapping[str, Callable[..., torch.Tensor]] | None = None
    ) -> dict[str, torch.Tensor]:
        """{group: (N, D_g) float tensor} and {id group: (N,) int64}, N the most rows of any input.

        ``encoders``: stand-ins for the sequence encoders (compiled ones, in a training step).
        """
        embedded = self.embeddings(inputs)
        encoded = {
            sequence.name: self._encode(sequence, embedded, inputs, (encoders or self.encoders)[sequence.name])
            for sequence in self.sequences
        }

        def part(kind: str, names: list[str]) -> torch.Tensor:
            if kind == "embedded":
                return self.dropout(embedded.side_by_side(names))
            if kind == "dense":
                return _columns([inputs[name] for name in names])
            return self.dropout(encoded[names[0]] if names[0] in encoded else embedded[names[0]])

        groups = {
            group: side_by_side([part(kind, names) for kind, names in segments], dim=1)
            for group, segments in self.segments.items()
        }
        groups.update({group: inputs[name] for group, name in self.id_groups.items()})
        rows = common_rows(list(groups.values()))
        return {group: expand_rows(tensor, rows) for group, tensor in groups.items()}

    def _encode(
        self, sequence: SequenceInput, embedded: Embeddings, inputs: Mapping[str, torch.Tensor], encoder
    ) -> torch.Tensor:
        """A sequence through its encoder: over its valid positions only when gathered jagged, else padded."""
        query = side_by_side([embedded[name] for name in sequence.query], dim=1) if sequence.query else None
        jagged = [embedded.jagged(name) for name in sequence.fields]
        if all(part is not None for part in jagged) and hasattr(encoder, "forward_jagged"):
            values = torch.cat([part[0] for part in jagged], dim=1) if len(jagged) > 1 else jagged[0][0]
            return encoder.forward_jagged(values, jagged[0][1], query)
        fields = side_by_side([embedded[name] for name in sequence.fields], dim=2)
        return encoder(fields, inputs[sequence.lengths], query)


def _columns(values: list[torch.Tensor]) -> torch.Tensor:
    """(B,) values → (B, n) columns (one-row values broadcast)."""
    if same_rows(values):
        return torch.stack(values, dim=1)
    return side_by_side([value.unsqueeze(1) for value in values], dim=1)


def _segments(members: list[str], kinds: dict[str, str]) -> list[tuple[str, list[str]]]:
    """A group's members in runs: consecutive single ids, consecutive dense values, one other each."""
    segments: list[tuple[str, list[str]]] = []
    for name in members:
        kind = kinds[name]
        if segments and kind != "value" and segments[-1][0] == kind:
            segments[-1][1].append(name)
        else:
            segments.append((kind, [name]))
    return segments

