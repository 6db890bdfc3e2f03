"""Reading HDF5 with h5py as untrusted input: every group, dataset and attribute is checked to
be of the kind Keras writes, stored in this file (no links, external or virtual storage), and
within the counts the graph allows, before anything is read from it."""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from xgraph.weights.checks import WeightFileError, shown


def child(group: Any, name: str, kind: str, source: str) -> Any:
    """`group[name]` once it is known to be a `kind` ('group' or 'dataset') of this file, not
    a link; a dataset must keep its data in this file, in chunks no larger than itself."""
    import h5py

    def where() -> str:
        return f"'{shown(group.name.rstrip('/'))}/{shown(name)}'"

    if not isinstance(group.get(name, getlink=True), h5py.HardLink):
        raise WeightFileError(source, f"{where()} is a link, which xgraph does not follow")
    found = group.get(name)
    if not isinstance(found, h5py.Group if kind == "group" else h5py.Dataset):
        raise WeightFileError(source, f"{where()} is not a {kind}")
    if kind == "dataset" and (
        found.external
        or found.is_virtual
        or found.shape is None
        or (found.chunks and math.prod(found.chunks) > max(math.prod(found.shape), 1))
    ):
        raise WeightFileError(
            source,
            f"{where()} keeps its data in other files, in chunks larger than itself, or has "
            "no shape: not a tensor",
        )
    return found


def count_at_most(group: Any, most: int, what: str, source: str) -> None:
    if len(group) > most:
        raise WeightFileError(
            source,
            f"'{shown(group.name)}' holds {len(group):,} {what}; a file for this graph has "
            f"at most {most:,}",
        )


def string_list(owner: Any, attribute: str, most: int, source: str) -> list[str]:
    """A list-of-names attribute (`layer_names`, `weight_names`), its size and type checked
    before it is read."""
    declared = owner.attrs.get_id(attribute)
    where = f"attribute '{attribute}' of '{shown(owner.name)}'"
    if declared.shape == (0,):  # Keras writes a layer without weights' empty list as floats
        return []
    if len(declared.shape) != 1 or declared.dtype.kind not in "SUO":
        raise WeightFileError(source, f"{where} is not a list of names")
    if declared.shape[0] > most:
        raise WeightFileError(
            source, f"{where} lists {declared.shape[0]:,} names; at most {most:,} fit this graph"
        )
    names = []
    for raw in owner.attrs[attribute]:
        if isinstance(raw, bytes | np.bytes_):
            raw = raw.decode("utf-8")
        if not isinstance(raw, str) or not raw or raw.startswith("/"):
            raise WeightFileError(source, f"{where} holds {shown(raw)!r}, not a name")
        names.append(raw)
    return names


def dataset_at(group: Any, path: str, source: str) -> Any:
    """A dataset at a relative path (`conv2d/kernel:0`), every step a group of this file."""
    *folders, last = path.split("/")
    for folder in folders:
        group = child(group, folder, "group", source)
    return child(group, last, "dataset", source)
