"""What a backend's trainer does, and the facts about a graph that every trainer shares.

The loop (xgraph.training.loop) is framework-free: it hands a trainer numpy batches, the step's
learning rate and the step number; the trainer runs its framework's forward, backward and
optimizer, and its engine's gradient exchange when data-parallel.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from dataclasses import dataclass
from importlib.metadata import EntryPoint
from typing import Any, Protocol

import numpy as np

from xgraph.errors import SpecError
from xgraph.ir.analysis import AnalysedGraph
from xgraph.ir.graph import Graph, Node
from xgraph.plugins import TRAINERS, entries, load_entry
from xgraph.training.placement import Placement
from xgraph.training.recipe import TrainingRecipe
from xgraph.training.replicas import Replicas
from xgraph.weights.initial import Weights, weight_key

TOP_K = 5  # the second accuracy reported: the label among the K highest scores


def _added(mine: tuple[int, ...], theirs: tuple[int, ...]) -> tuple[int, ...]:
    if not mine or not theirs:
        return mine or theirs
    return tuple(a + b for a, b in zip(mine, theirs, strict=True))


@dataclass(frozen=True)
class StepMetrics:
    """Sums over a whole global batch (every replica's share): the loss summed over its
    examples (cross-entropy plus the L2 term once per example, so `loss / count` is the
    batch's loss as Keras reports it), the examples classified right, and how many there were.
    An evaluation also counts the examples whose label is among the TOP_K highest scores, and
    all three counts per class (a training step leaves those at 0 and empty)."""

    loss_sum: float
    correct: int
    count: int
    top_k: int = 0
    class_counts: tuple[int, ...] = ()
    class_correct: tuple[int, ...] = ()
    class_top_k: tuple[int, ...] = ()

    def __add__(self, other: StepMetrics) -> StepMetrics:
        return StepMetrics(
            self.loss_sum + other.loss_sum,
            self.correct + other.correct,
            self.count + other.count,
            self.top_k + other.top_k,
            _added(self.class_counts, other.class_counts),
            _added(self.class_correct, other.class_correct),
            _added(self.class_top_k, other.class_top_k),
        )

    @property
    def loss(self) -> float:
        return self.loss_sum / self.count if self.count else 0.0

    @property
    def accuracy(self) -> float:
        return self.correct / self.count if self.count else 0.0

    @property
    def top_k_accuracy(self) -> float:
        return self.top_k / self.count if self.count else 0.0

    @classmethod
    def from_sums(cls, sums: Any, classes: int) -> StepMetrics:
        """An evaluation's metrics from the vector a trainer all-reduces (`evaluation_sums`
        gives its layout): [loss sum, correct, top-k, count, then per class: counts,
        correct, top-k]."""
        values = [float(value) for value in np.asarray(sums).reshape(-1)]
        if len(values) != 4 + 3 * classes:
            raise ValueError(f"{len(values)} sums for {classes} classes")
        loss_sum, correct, top_k, count = values[:4]
        per_class = [
            tuple(round(v) for v in values[4 + i * classes : 4 + (i + 1) * classes])
            for i in range(3)
        ]
        return cls(loss_sum, round(correct), round(count), round(top_k), *per_class)


NO_METRICS = StepMetrics(0.0, 0, 0)


class Trainer(Protocol):
    """One process's part of a training run (a backend's `MakeTrainer` makes one)."""

    @property
    def where(self) -> str:
        """The device it trains on, as its framework names it (`cpu`, `cuda:0`, `CPU:0`)."""
        ...

    @property
    def model(self) -> Any:
        """The framework's model of the whole spec (softmax included), for export after
        training."""
        ...

    def train_step(
        self, images: np.ndarray, labels: np.ndarray, learning_rate: float, step: int
    ) -> StepMetrics:
        """One optimizer step. `images` (N, H, W, C) float32 and `labels` (N,) int64 are this
        replica's share of the global batch; the loss is the mean over the global batch.
        `step` (from 0, counted over the whole run) seeds the step's dropout masks."""
        ...

    def evaluate(self, images: np.ndarray, labels: np.ndarray) -> StepMetrics:
        """Inference-mode loss, accuracy, top-k and per-class counts of this replica's share
        (possibly empty), summed over all replicas (StepMetrics.from_sums); nothing
        changes."""
        ...

    def weights(self) -> Weights:
        """The model's weights, canonical (BatchNorm statistics included)."""
        ...

    def optimizer_state(self) -> dict[str, np.ndarray]:
        """Everything the optimizer carries from step to step, as named arrays."""
        ...

    def load_state(self, weights: Weights, optimizer_state: Mapping[str, np.ndarray]) -> None:
        """Continue from a checkpoint: weights and the optimizer's state."""
        ...

    def close(self) -> None:
        """Leave the data-parallel group in step with the other replicas (a barrier, then the
        engine's own shutdown), so that no process exits while another still talks to it.
        Called once, after the run's last collective; nothing when training alone."""
        ...


class MakeTrainer(Protocol):
    """A backend's trainer factory, registered under `xgraph.trainers` with the backend's
    name. Data-parallel Keras needs it called before TensorFlow runs any op in the process."""

    def __call__(
        self,
        analysed: AnalysedGraph,
        weights: Weights,
        recipe: TrainingRecipe,
        replicas: Replicas = ...,
        sync_batch_norm: bool = False,
        placement: Placement = ...,
    ) -> Trainer: ...


def trainer_entries() -> dict[str, EntryPoint]:
    """The backends that train, by name, with their factories' entry points (nothing
    imported: the CLI checks `--backend` against these before any framework loads)."""
    return {entry.name: entry for entry in entries(TRAINERS)}


def check_trainer(backend: str) -> None:
    """`--backend` checked against the backends that train, before any framework loads."""
    trainers = sorted(trainer_entries())
    if backend not in trainers:
        raise SpecError(f"--backend {backend}: training runs in {' or '.join(trainers)}")


def load_trainer(backend: str) -> MakeTrainer:
    """The trainer factory of `backend` (imports its framework), or a SpecError naming the
    backends that train."""
    found = trainer_entries()
    if backend not in found:
        trainers = " and ".join(sorted(found)) or "none installed"
        raise SpecError(f"the {backend} backend does not train ({trainers} do)")
    return load_entry(found[backend])


@dataclass(frozen=True)
class TrainingGraph:
    """The graph a trainer differentiates: the spec's graph ending in logits, its softmax
    left out, so the loss is computed from logits (as both engines do most exactly). A linear
    head's outputs are logits too; a head with another activation (sigmoid, say) gives
    probabilities, renormalised by the loss as Keras's categorical cross-entropy does."""

    analysed: AnalysedGraph
    from_logits: bool


def _is_softmax(node: Node) -> bool:
    return getattr(node.attrs, "activation", None) == "softmax"


def training_graph(analysed: AnalysedGraph) -> TrainingGraph:
    """The spec's graph with its single output's softmax dropped: an `activation` node is left
    out, a layer's own `activation: softmax` becomes linear. Weights are unchanged."""
    graph = analysed.graph
    if len(graph.outputs) != 1:
        raise ValueError(
            f"training needs a model with one output; '{graph.name}' has {len(graph.outputs)}"
        )
    output = graph[graph.outputs[0]]
    if not _is_softmax(output):  # a linear head gives logits; any other, probabilities (Keras)
        linear = getattr(output.attrs, "activation", "linear") == "linear"
        return TrainingGraph(analysed, from_logits=linear)
    if output.op == "activation":
        return TrainingGraph(analysed.with_outputs(output.inputs), from_logits=True)
    linear = Node(
        name=output.name,
        op=output.op,
        attrs=output.attrs.model_copy(update={"activation": "linear"}),
        inputs=output.inputs,
        location=output.location,
        block=output.block,
        attr_locations=output.attr_locations,
    )
    nodes = [linear if node.name == output.name else node for node in graph.nodes]
    relinked = Graph(graph.name, nodes, graph.inputs, graph.outputs, graph.initializer)
    return TrainingGraph(
        dataclasses.replace(analysed, graph=relinked),
        from_logits=True,
    )


def regularized_keys(analysed: AnalysedGraph) -> list[str]:
    """The weights L2 weight decay (and AdamW's decoupled decay) applies to: the kernels,
    the tensors an op draws from the kernel initialiser, as Keras's `kernel_regularizer`,
    `depthwise_regularizer` and `pointwise_regularizer` do. Biases and BatchNorm are left out."""
    return [
        weight_key(node.name, param.name)
        for node in analysed.graph.nodes
        for param in analysed.counts[node.name].params
        if param.trainable and param.init == "kernel"
    ]
