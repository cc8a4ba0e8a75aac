"""File input/output through pyarrow (CSV and Parquet), streamed in record batches."""

from mtlrec.io.json_text import strict_json
from mtlrec.io.lists import split_text_lists, string_lists
from mtlrec.io.readers import CsvFormat, ReadReport, infer_format, iter_record_batches, read_table
from mtlrec.io.sources import Fragment, count_rows, epoch_shard, expand_paths, iter_fragment, list_fragments
from mtlrec.io.writers import atomic_write, write_table

__all__ = [
    "CsvFormat",
    "Fragment",
    "ReadReport",
    "atomic_write",
    "count_rows",
    "epoch_shard",
    "expand_paths",
    "infer_format",
    "iter_fragment",
    "iter_record_batches",
    "list_fragments",
    "read_table",
    "split_text_lists",
    "strict_json",
    "string_lists",
    "write_table",
]
