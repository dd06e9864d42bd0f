"""Layer archives: apply a (compressed) tar stream into a directory safely, with whiteouts,
and write a directory back as a tar. Imports layer 0 only."""

from berth.archive.apply import ApplyResult, WhiteoutMode, apply_layer, clean_path
from berth.archive.compression import Compression, compressor, detect, open_decompressed
from berth.archive.tar import Entry, Limits, TarReader, TarType
from berth.archive.write import write_items, write_merged, write_tar

__all__ = [
    "ApplyResult",
    "Compression",
    "Entry",
    "Limits",
    "TarReader",
    "TarType",
    "WhiteoutMode",
    "apply_layer",
    "clean_path",
    "compressor",
    "detect",
    "open_decompressed",
    "write_items",
    "write_merged",
    "write_tar",
]
