"""Which xgraph op a Keras file's layer is: by the class the file records (the keras rules
name the class each op makes) or, where it records none, by its weights' names and ranks."""

from __future__ import annotations

from xgraph_keras.matching import Tensor
from xgraph_keras.rules.base import class_key, keras_rules


def ops_by_class(prefer: frozenset[str]) -> dict[str, str]:
    """Keras class key (`batch_normalization`, as Keras 3 keys files) -> the xgraph op whose
    keras rule makes that layer, for every op with weights, plugin ops included. Where two
    ops make one class, an op of the graph being read (`prefer`) wins."""
    found: dict[str, str] = {}
    for op, rule in sorted(
        keras_rules().items(), key=lambda item: (item[0] not in prefer, item[0])
    ):
        if rule.layer_class:
            found.setdefault(class_key(rule.layer_class), op)
    return found


def kind_from_weight_names(
    names: list[str], arrays: list[Tensor], prefer: frozenset[str] = frozenset()
) -> str | None:
    """The op of a legacy file's layer, which records no class: among the ops whose Keras
    layer can hold these weights (names and ranks), an op of the graph being read (`prefer`)
    before others, then the one that needs the fewest others (a depthwise layer's weights fit
    a separable one too, which has a pointwise kernel more; a lone `gamma` fits LayerScale
    and a LayerNormalization without center)."""
    held = [
        (name.rsplit("/", 1)[-1].split(":", 1)[0], array.ndim)
        for name, array in zip(names, arrays, strict=True)
    ]
    fits = []
    for op, rule in sorted(keras_rules().items()):
        possible = {name: slot.rank for name, slot in rule.weights.items()}
        if rule.layer_class and all(
            name in possible and possible[name] in (None, rank) for name, rank in held
        ):
            fits.append((op not in prefer, len(possible) - len(held), op))
    fits.sort()
    if not fits or (len(fits) > 1 and fits[0][:2] == fits[1][:2]):
        return None
    return fits[0][2]
