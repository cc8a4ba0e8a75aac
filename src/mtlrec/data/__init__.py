"""The data path: batches keyed by name, splits read into memory, and training data streamed from files."""

from mtlrec.data.batch import Batch, EncodedData
from mtlrec.data.prefetch import prefetch
from mtlrec.data.reading import RandomSplit, RawSplit, ReadOptions, encode, group_codes, read_split, read_splits
from mtlrec.data.shuffle import ShuffleBuffer, rebatch
from mtlrec.data.sources import InMemorySource, TrainSource, share
from mtlrec.data.stream_fit import FitSettings, fit_streaming
from mtlrec.data.streaming import StreamingDataset, StreamSettings, encoded_rows

__all__ = [
    "Batch",
    "EncodedData",
    "FitSettings",
    "InMemorySource",
    "RandomSplit",
    "RawSplit",
    "ReadOptions",
    "ShuffleBuffer",
    "StreamSettings",
    "StreamingDataset",
    "TrainSource",
    "encode",
    "encoded_rows",
    "fit_streaming",
    "group_codes",
    "prefetch",
    "read_split",
    "read_splits",
    "rebatch",
    "share",
]
