"""The inference build: the graph passes that every backend profits from, run in order.

Each pass maps (graph, weights) to a graph computing the same function in inference mode
with fewer nodes; `optimize` runs them and reports what each one did, so that `xgraph build
--optimize` can say which ran. Layout is not a pass here: the IR is layout-free (shapes are
the spec's (H, W, C)) and each backend lays tensors out where its runtime is fastest (torch:
channels_last memory; ONNX: NCHW, or NHWC on request), which `Backend.layout` describes.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

from xgraph.errors import SpecError, did_you_mean
from xgraph.ir.analysis import AnalysedGraph
from xgraph.passes.drop_identities import drop_identities
from xgraph.passes.fold_batch_norm import fold_batch_norm
from xgraph.passes.fuse_activation import fuse_activations
from xgraph.passes.rewrite import Rewritten
from xgraph.weights.initial import Weights


@dataclass(frozen=True)
class InferencePass:
    name: str
    does: str
    run: Callable[[AnalysedGraph, Weights], Rewritten]


# In order: dropping identities first lets a BatchNorm behind a dropout fold, and folding
# first leaves `conv -> activation` pairs for the fusion.
INFERENCE_PASSES: tuple[InferencePass, ...] = (
    InferencePass("drop_identities", "dropout and linear activations removed", drop_identities),
    InferencePass("fold_batch_norm", "BatchNorm folded into the layer before it", fold_batch_norm),
    InferencePass(
        "fuse_activation", "activations merged into the layer before them", fuse_activations
    ),
)
PASS_NAMES = tuple(p.name for p in INFERENCE_PASSES)


@dataclass(frozen=True)
class PassReport:
    name: str
    does: str
    removed: int  # nodes the pass removed


@dataclass(frozen=True)
class Optimized:
    analysed: AnalysedGraph
    weights: Weights
    ran: tuple[PassReport, ...]
    computes: dict[str, str]  # removed node -> the surviving node that computes its value

    def describe(self) -> str:
        return "; ".join(f"{r.name}: {r.removed} nodes fewer ({r.does})" for r in self.ran)

    def value_of(self, original: AnalysedGraph) -> dict[str, str]:
        """Each node of the optimised graph -> the original node whose value it computes:
        the last, in the original order, of itself and the nodes merged into it."""
        merged: dict[str, list[str]] = {}
        for removed, survivor in self.computes.items():
            merged.setdefault(survivor, []).append(removed)
        position = {node.name: i for i, node in enumerate(original.graph.nodes)}
        return {
            node.name: max([node.name, *merged.get(node.name, [])], key=position.__getitem__)
            for node in self.analysed.graph.nodes
        }


def chosen_passes(names: Sequence[str] | None) -> tuple[InferencePass, ...]:
    """The passes named (all of them for None), in the pipeline's order."""
    if names is None:
        return INFERENCE_PASSES
    for name in names:
        if name not in PASS_NAMES:
            raise SpecError(
                f"unknown optimisation pass '{name}'",
                hint=did_you_mean(name, PASS_NAMES) or f"the passes are {', '.join(PASS_NAMES)}",
            )
    return tuple(p for p in INFERENCE_PASSES if p.name in names)


def optimize(
    analysed: AnalysedGraph, weights: Weights, passes: Sequence[str] | None = None
) -> Optimized:
    """Run the inference passes (all, or those named) over the graph and its weights."""
    ran = []
    computes: dict[str, str] = {}
    for inference_pass in chosen_passes(passes):
        before = len(analysed.graph)
        result = inference_pass.run(analysed, weights)
        analysed, weights = result.analysed, result.weights
        computes.update(result.replaced)
        ran.append(
            PassReport(inference_pass.name, inference_pass.does, before - len(analysed.graph))
        )
    return Optimized(analysed, weights, tuple(ran), {n: _survivor(n, computes) for n in computes})


def _survivor(name: str, computes: dict[str, str]) -> str:
    """Where a removed node's value ended up, through later passes' removals."""
    while name in computes:
        name = computes[name]
    return name
