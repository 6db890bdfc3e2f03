"""The torch trainer: the spec's training graph in train mode, Keras's loss and optimizer rules,
and DistributedDataParallel (gloo, CPU) when several processes train one model.

Data-parallel facts this follows (torch 2.13):
- Each replica's loss is its share's cross-entropy sum / the global count, times world_size,
  plus the L2 term: DDP averages gradients over replicas, which gives the global-batch mean.
- BatchNorm is per replica: each normalises its own share. DDP's buffer sync (on by
  default) copies rank 0's buffers (moving statistics) to every replica at the start of each
  training forward, so the statistics that survive are rank 0's chain: each step updates
  rank 0's from rank 0's share alone. Between steps the other ranks hold their own last
  update; `evaluate` broadcasts rank 0's first, so every replica evaluates the model that
  the chief checkpoints.
- torch's SyncBatchNorm refuses CPU tensors (its forward raises unless the input is on a
  GPU-like device once a process group exists), and it updates the moving variance with the
  unbiased variance where Keras uses the biased one: `sync_batch_norm` is a SpecError here.
"""

from __future__ import annotations

import gc
from collections.abc import Mapping
from dataclasses import dataclass

import numpy as np
import torch
import torch.distributed as dist
import torch.nn.functional as F
from torch import nn
from torch.nn.parallel import DistributedDataParallel

from xgraph.errors import SpecError
from xgraph.ir.analysis import AnalysedGraph
from xgraph.training.recipe import TrainingRecipe
from xgraph.training.replicas import Replicas
from xgraph.training.trainer import StepMetrics, regularized_keys, training_graph
from xgraph.weights.initial import Weights
from xgraph.weights.slots import PlacedWeight
from xgraph_torch.backend import TorchBackend, to_channels_first
from xgraph_torch.optimizers import keras_optimizer

ONE_PROCESS = Replicas()
KERAS_EPSILON = 1e-7  # keras.config.epsilon(): how far probabilities are kept from 0 and 1


@dataclass(frozen=True)
class Trained:
    """A trainable tensor of the model, and the canonical weight it holds."""

    weight: PlacedWeight
    tensor: torch.Tensor


def trainable(backend: TorchBackend, analysed: AnalysedGraph, model: nn.Module) -> list[Trained]:
    """The model's trainable tensors, in the graph's order, each with its canonical weight."""
    return [
        Trained(placed, model.get_parameter(f"{node.name}.{placed.framework_key}"))
        for node in analysed.graph.nodes
        for placed in backend.placed_weights(analysed, node)
        if placed.param.trainable
    ]


def share_tensors(source: nn.Module, target: nn.Module) -> None:
    """Make `target`'s parameters and buffers the very tensors of `source`'s submodules of the
    same names, so the whole-spec model always holds the trained weights."""
    for name, module in source.named_modules():
        other = target.get_submodule(name)
        other._parameters.update(module._parameters)
        other._buffers.update(module._buffers)


def cross_entropy_sum(
    output: torch.Tensor, labels: torch.Tensor, from_logits: bool, smoothing: float
) -> torch.Tensor:
    """Keras's categorical cross-entropy with label smoothing (y * (1 - s) + s / classes),
    summed over the rows; from probabilities as Keras does: renormalised, then clipped."""
    if output.dim() != 2:
        raise ValueError(f"training needs (batch, classes) outputs, got {tuple(output.shape)}")
    if from_logits:  # torch's smoothing is Keras's: (1 - s) * nll + s * mean over classes
        return F.cross_entropy(output, labels, label_smoothing=smoothing, reduction="sum")
    classes = output.shape[1]
    target = F.one_hot(labels, classes).to(output.dtype) * (1 - smoothing) + smoothing / classes
    probabilities = output / output.sum(dim=1, keepdim=True)
    probabilities = probabilities.clamp(KERAS_EPSILON, 1 - KERAS_EPSILON)
    return -(target * probabilities.log()).sum()


def dropout_seed(seed: int, step: int, rank: int) -> int:
    """The step's dropout seed: a resumed run draws the same masks; replicas draw their own."""
    return int(np.random.SeedSequence((seed, step, rank)).generate_state(1)[0])


def join_process_group(replicas: Replicas) -> None:
    """gloo from torchrun's variables (MASTER_ADDR/PORT), unless the caller already did."""
    if not dist.is_initialized():
        dist.init_process_group("gloo", rank=replicas.rank, world_size=replicas.world_size)
    if dist.get_world_size() != replicas.world_size:
        raise ValueError(
            f"the process group has {dist.get_world_size()} processes, "
            f"the run {replicas.world_size}"
        )


class TorchTrainer:
    """One replica's trainer (xgraph.training.trainer.Trainer)."""

    def __init__(
        self,
        analysed: AnalysedGraph,
        weights: Weights,
        recipe: TrainingRecipe,
        replicas: Replicas,
    ) -> None:
        self.backend = TorchBackend()
        self.analysed = analysed
        self.recipe = recipe
        self.replicas = replicas
        graph = training_graph(analysed)
        self.from_logits = graph.from_logits
        self.net = self.backend.build(graph.analysed, weights).train()
        self.model = self.backend.build(analysed, weights).eval()
        share_tensors(self.net, self.model)
        self.trained = trainable(self.backend, graph.analysed, self.net)
        regularized = set(regularized_keys(analysed))
        self.kernels = [t.tensor for t in self.trained if t.weight.key in regularized]
        self.rule = keras_optimizer(
            recipe.optimizer, [t.tensor for t in self.trained], self.kernels
        )
        self.replica: nn.Module = self.net  # what a training step calls: DDP's wrapper if any
        if replicas.distributed:
            join_process_group(replicas)
            # Buffers are synced from rank 0 at each forward: DDP's default (torch 2.13 calls
            # the switch forward_sync_buffers; broadcast_buffers, its old name, is deprecated).
            self.replica = DistributedDataParallel(self.net)

    def l2(self) -> torch.Tensor:
        """Keras's kernel_regularizer=L2(weight_decay): weight_decay * sum of squares."""
        total = torch.zeros(())
        if self.recipe.weight_decay:
            for kernel in self.kernels:
                total = total + kernel.square().sum()
        return total * self.recipe.weight_decay

    def global_sum(self, values: list[float]) -> list[float]:
        """Sums over replicas (float64, so counts stay exact)."""
        tensor = torch.tensor(values, dtype=torch.float64)
        if self.replicas.distributed:
            dist.all_reduce(tensor)
        return tensor.tolist()

    def train_step(
        self, images: np.ndarray, labels: np.ndarray, learning_rate: float, step: int
    ) -> StepMetrics:
        x = torch.from_numpy(np.ascontiguousarray(to_channels_first(images), dtype=np.float32))
        y = torch.from_numpy(np.asarray(labels, dtype=np.int64))
        (count,) = self.global_sum([float(len(y))])
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(dropout_seed(self.recipe.seed, step, self.replicas.rank))
            output = self.replica(x)
        cross_entropy = cross_entropy_sum(output, y, self.from_logits, self.recipe.label_smoothing)
        l2 = self.l2()
        loss = cross_entropy * (self.replicas.world_size / count) + l2
        self.rule.optimizer.zero_grad(set_to_none=True)
        loss.backward()
        self.rule.step(learning_rate)
        correct = (output.detach().argmax(dim=1) == y).sum()
        total, right = self.global_sum([cross_entropy.item(), float(correct)])
        return StepMetrics(total + count * l2.item(), round(right), round(count))

    def evaluate(self, images: np.ndarray, labels: np.ndarray) -> StepMetrics:
        if self.replicas.distributed:
            for buffer in self.net.buffers():  # every replica evaluates rank 0's statistics
                dist.broadcast(buffer, src=0)
        cross_entropy, correct = 0.0, 0
        if len(labels):
            x = torch.from_numpy(np.ascontiguousarray(to_channels_first(images), dtype=np.float32))
            y = torch.from_numpy(np.asarray(labels, dtype=np.int64))
            self.net.eval()
            try:
                with torch.no_grad():
                    output = self.net(x)
                    cross_entropy = cross_entropy_sum(
                        output, y, self.from_logits, self.recipe.label_smoothing
                    ).item()
                    correct = int((output.argmax(dim=1) == y).sum())
            finally:
                self.net.train()
        total, right, count = self.global_sum([cross_entropy, float(correct), float(len(labels))])
        with torch.no_grad():
            l2 = self.l2().item()
        return StepMetrics(total + count * l2, round(right), round(count))

    def close(self) -> None:
        """Drop DDP, then a barrier and the process group destroyed while every replica still
        holds it. A process that exits with its gloo group alive, while a peer still runs,
        aborts in the group's destructor ("terminate called without an active exception",
        status 250 through the launcher): 4 exits in 30 in a two-process experiment, 0 in 90
        this way. DDP's reducer sits in a reference cycle that keeps the group alive until
        the interpreter's last collection, hence gc.collect() before destroying it."""
        if not self.replicas.distributed or not dist.is_initialized():
            return
        self.replica = self.net
        gc.collect()
        dist.barrier()
        dist.destroy_process_group()

    def weights(self) -> Weights:
        """A snapshot: get_weights hands out views of the live tensors where layouts agree
        (vectors), which later steps would change."""
        weights = self.backend.get_weights(self.model, self.analysed)
        return {key: value.copy() for key, value in weights.items()}

    def optimizer_state(self) -> dict[str, np.ndarray]:
        """`KEY/NAME` for each torch state tensor of a weight (canonical layout), and the
        step count and last learning rate that the Keras adaptation needs."""
        state = {
            "iterations": np.asarray(self.rule.iterations, dtype=np.int64),
            "learning_rate": np.asarray(self.rule.last_rate, dtype=np.float64),
        }
        for trained in self.trained:
            for name, value in self.rule.optimizer.state.get(trained.tensor, {}).items():
                if not isinstance(value, torch.Tensor):
                    continue
                array = value.detach().numpy()
                if value.dim():
                    array = trained.weight.from_framework(array)
                # a copy, 0-d kept
                state[f"{trained.weight.key}/{name}"] = np.array(array, order="C")
        return state

    def load_state(self, weights: Weights, optimizer_state: Mapping[str, np.ndarray]) -> None:
        self.backend.set_weights(self.model, self.analysed, weights)
        self.rule.iterations = int(optimizer_state["iterations"])
        self.rule.last_rate = float(optimizer_state["learning_rate"])
        self.rule.optimizer.state.clear()
        for trained in self.trained:
            prefix = f"{trained.weight.key}/"
            for name, array in optimizer_state.items():
                if not name.startswith(prefix) or "/" in name[len(prefix) :]:
                    continue
                value = np.asarray(array)
                if value.ndim:
                    value = trained.weight.to_framework(value)
                tensor = torch.from_numpy(np.array(value, order="C"))
                self.rule.optimizer.state[trained.tensor][name[len(prefix) :]] = tensor


def make_trainer(
    analysed: AnalysedGraph,
    weights: Weights,
    recipe: TrainingRecipe,
    replicas: Replicas = ONE_PROCESS,
    sync_batch_norm: bool = False,
) -> TorchTrainer:
    """The torch trainer of `analysed` (the whole spec) for this process's replica."""
    if sync_batch_norm:
        raise SpecError(
            "the torch backend cannot synchronise BatchNorm on CPU: torch's SyncBatchNorm "
            "needs GPUs (its forward refuses CPU tensors)",
            hint="train with per-replica BatchNorm (the default), or with --backend keras, "
            "whose synchronised BatchNorm runs on CPU",
        )
    return TorchTrainer(analysed, weights, recipe, replicas)
