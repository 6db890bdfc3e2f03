"""Where the layers of a model nested in a Keras model (ConvNeXt's Sequential stem) sit among
the graph's nodes, for a Keras 3 `.weights.h5`, which numbers them only inside their own
model (`layers/sequential/layers/conv2d`) and so does not say where they fall among the
others.

A nested model's layers are consecutive in Keras's order, and the nested models come in
their own order: each is given a run of consecutive nodes, after the previous one's, whose
kinds and shapes take its layers, and the nodes left take the model's own layers kind by
kind, as for any file. Exactly one such placement is used; none, or several (a stem whose
shapes also fit elsewhere), is an error that names the `.keras` file as the way out.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from typing import Protocol, TypeVar

from xgraph.weights.checks import WeightFileError


class Layer(Protocol):
    """What placing needs of a file's layer (xgraph_keras.matching.FileLayer): its op."""

    @property
    def kind(self) -> str: ...


FileLayer = TypeVar("FileLayer", bound=Layer)

# Placements of the nested models tried before giving up (each costs a pass over the nodes).
MOST_PLACEMENTS = 10_000
HINT = "read the model's .keras file instead: its config names every layer"


def _paired(
    nodes: Sequence[str],
    layers: Sequence[FileLayer],
    kind_of: Callable[[str], str],
    fits: Callable[[str, FileLayer], bool],
) -> dict[str, FileLayer] | None:
    """Nodes and layers paired kind by kind, in order, if every pair fits; else None."""
    pairs: dict[str, FileLayer] = {}
    for kind in dict.fromkeys([kind_of(n) for n in nodes] + [layer.kind for layer in layers]):
        of_kind = [n for n in nodes if kind_of(n) == kind]
        found = [layer for layer in layers if layer.kind == kind]
        if len(of_kind) != len(found) or not all(map(fits, of_kind, found)):
            return None
        pairs.update(zip(of_kind, found, strict=True))
    return pairs


def _placements(
    nodes: Sequence[str],
    nested: Sequence[Sequence[FileLayer]],
    kind_of: Callable[[str], str],
    fits: Callable[[str, FileLayer], bool],
) -> Iterator[dict[str, FileLayer]]:
    """Each way to give every nested model a run of consecutive nodes, in their order."""

    def walk(index: int, start: int, taken: dict[str, FileLayer]) -> Iterator[dict[str, FileLayer]]:
        if index == len(nested):
            yield taken
            return
        size = len(nested[index])
        for first in range(start, len(nodes) - size + 1):
            pairs = _paired(nodes[first : first + size], nested[index], kind_of, fits)
            if pairs is not None:
                yield from walk(index + 1, first + size, {**taken, **pairs})

    yield from walk(0, 0, {})


def place_nested(
    nodes: Sequence[str],
    nested: Sequence[Sequence[FileLayer]],
    top: Sequence[FileLayer],
    kind_of: Callable[[str], str],
    fits: Callable[[str, FileLayer], bool],
    source: str,
) -> dict[str, FileLayer]:
    """Every node of `nodes` (Keras's order) paired with a layer of the nested models or of
    the model itself (`top`), or a WeightFileError."""
    found: list[dict[str, FileLayer]] = []
    for tried, placement in enumerate(_placements(nodes, nested, kind_of, fits)):
        if tried >= MOST_PLACEMENTS:
            raise WeightFileError(
                source,
                f"the layers of the {len(nested)} nested model(s) fit the graph in more than "
                f"{MOST_PLACEMENTS:,} places",
                hint=HINT,
            )
        rest = [name for name in nodes if name not in placement]
        pairs = _paired(rest, top, kind_of, fits)
        if pairs is not None:
            found.append({**placement, **pairs})
            if len(found) > 1:
                raise WeightFileError(
                    source,
                    f"the layers of the {len(nested)} nested model(s) fit the graph in more "
                    "than one place: a .weights.h5 does not say which",
                    hint=HINT,
                )
    if not found:
        raise WeightFileError(
            source,
            f"the layers of the {len(nested)} nested model(s) and the model's own do not fit "
            "the graph's nodes in any order Keras could have saved",
            hint=HINT,
        )
    return found[0]
