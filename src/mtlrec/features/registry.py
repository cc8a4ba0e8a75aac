"""The feature kinds: ``ENCODERS`` maps each config ``kind`` to its encoder class."""

from __future__ import annotations

from mtlrec.features.categorical import CategoricalEncoder
from mtlrec.features.cross import CrossEncoder
from mtlrec.features.encoder import Encoder
from mtlrec.features.multi_valued import MultiValuedEncoder
from mtlrec.features.numeric import NumericEncoder
from mtlrec.features.sequence import SequenceEncoder

ENCODERS: dict[str, type[Encoder]] = {
    "categorical": CategoricalEncoder,
    "numeric": NumericEncoder,
    "multi_valued": MultiValuedEncoder,
    "sequence": SequenceEncoder,
    "cross": CrossEncoder,
}
