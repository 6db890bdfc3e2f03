"""HDF5 global heaps checked before the HDF5 library reads them.

Variable-length strings (Keras 3 writes `layer_names` and `weight_names` so) live in global
heap collections. The HDF5 library walks a collection object by object and loops forever on
a damaged one whose free-space object has size 0 (found by tests/test_fuzz_weights.py: two
changed bytes in a legacy `.h5`). This walks every collection of the file the same way first,
within bounds on the objects a file for the graph can hold and on their size (the largest is
a legacy file's model_config), and refuses a damaged one or one beyond them.
"""

from __future__ import annotations

import mmap
import struct
from typing import BinaryIO

from xgraph.weights.checks import WeightFileError

_SIGNATURE = b"GCOL"
_HEADER = 16  # signature, version, 3 reserved bytes, collection size
_OBJECT_HEADER = 16  # index, reference count, 4 reserved bytes, object size
_SMALLEST = 4096  # the HDF5 library never writes a smaller collection


def _aligned(size: int) -> int:
    return (size + 7) // 8 * 8


def _walk(view: mmap.mmap, at: int, most_objects: int, most_bytes: int, source: str) -> int:
    """The number of objects in the collection at `at` (0 if the library would not load it
    as one), walked as the library walks it; none but its free space beyond `most_bytes`."""
    version = view[at + 4]
    (size,) = struct.unpack_from("<Q", view, at + 8)
    if version != 1 or size < _SMALLEST or at + size > len(view):
        return 0  # not a collection the library would load: it reports an error itself
    end, position, objects = at + size, at + _HEADER, 0
    while position + _OBJECT_HEADER <= end:
        index, _, _, length = struct.unpack_from("<HHLQ", view, position)
        step = _OBJECT_HEADER + _aligned(length) if index else length
        objects += 1
        if step == 0 or (index == 0 and position + step < end) or objects > most_objects:
            raise WeightFileError(
                source,
                f"the HDF5 global heap at byte {at:,} is damaged (object {objects:,} at byte "
                f"{position:,}), and reading it would not end",
            )
        if index and length > most_bytes:
            raise WeightFileError(
                source,
                f"the HDF5 global heap at byte {at:,} holds a value of {length:,} bytes (object "
                f"{objects:,}); a file for this graph holds none over {most_bytes:,}",
            )
        position += step
    return objects


def check_global_heaps(file: BinaryIO, source: str, most_objects: int, most_bytes: int) -> None:
    """Every global heap collection of an open HDF5 file walks to its end, its free space
    last, as the library's walk needs, in at most `most_objects` objects in all, none of
    them (its free space aside) over `most_bytes`."""
    file.seek(0, 2)
    if file.tell() == 0:
        return
    with mmap.mmap(file.fileno(), 0, access=mmap.ACCESS_READ) as view:
        at = view.find(_SIGNATURE)
        while at >= 0:
            if at + _HEADER <= len(view):
                most_objects -= _walk(view, at, most_objects, most_bytes, source)
            at = view.find(_SIGNATURE, at + 1)
