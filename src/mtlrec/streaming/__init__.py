"""Training data larger than memory: streamed fitting and batches from Parquet/CSV fragments."""

from mtlrec.streaming.buffer import ShuffleBuffer, rebatch
from mtlrec.streaming.dataset import StreamingDataset, StreamSettings, encoded_rows
from mtlrec.streaming.fit import FitSettings, fit_streaming
from mtlrec.streaming.prefetch import prefetch

__all__ = [
    "FitSettings",
    "ShuffleBuffer",
    "StreamSettings",
    "StreamingDataset",
    "encoded_rows",
    "fit_streaming",
    "prefetch",
    "rebatch",
]
