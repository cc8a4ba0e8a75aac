"""File input/output through pyarrow (CSV and Parquet), streamed in record batches."""

from mtlrec.io.readers import CsvFormat, ReadReport, infer_format, iter_record_batches, read_table
from mtlrec.io.writers import atomic_write, write_table

__all__ = [
    "CsvFormat",
    "ReadReport",
    "atomic_write",
    "infer_format",
    "iter_record_batches",
    "read_table",
    "write_table",
]
