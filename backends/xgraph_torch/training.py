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

import contextlib
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
from xgraph.training.placement import DEFAULT_PLACEMENT, Placement
from xgraph.training.recipe import TrainingRecipe
from xgraph.training.replicas import Replicas
from xgraph.training.trainer import TOP_K, StepMetrics, regularized_keys, training_graph
from xgraph.weights.initial import Weights
from xgraph.weights.slots import PlacedWeight
from xgraph_torch.backend import TorchBackend, to_channels_first
from xgraph_torch.devices import AUTOCAST, check_precision, torch_device
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


def join_process_group(replicas: Replicas, device: torch.device) -> None:
    """gloo (CPU) or nccl (CUDA) from torchrun's variables (MASTER_ADDR/PORT), unless the
    caller already did."""
    if not dist.is_initialized():
        engine = "nccl" if device.type == "cuda" else "gloo"
        dist.init_process_group(engine, rank=replicas.rank, world_size=replicas.world_size)
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
        placement: Placement = DEFAULT_PLACEMENT,
    ) -> None:
        self.backend = TorchBackend()
        self.analysed = analysed
        self.recipe = recipe
        self.replicas = replicas
        self.device = torch_device(placement)
        check_precision(self.device, placement.precision)
        self.precision = placement.precision
        # Loss scaling keeps fp16's small gradients from flushing to zero; bf16 has fp32's range.
        self.scaler = (
            torch.amp.GradScaler(self.device.type) if placement.precision == "fp16-mixed" else None
        )
        graph = training_graph(analysed)
        self.from_logits = graph.from_logits
        self.net = self.backend.build(graph.analysed, weights).to(self.device).train()
        self.model = self.backend.build(analysed, weights).to(self.device).eval()
        share_tensors(self.net, self.model)
        self.trained = trainable(self.backend, graph.analysed, self.net)
        regularized = set(regularized_keys(analysed))
        self.kernels = [t.tensor for t in self.trained if t.weight.key in regularized]
        self.rule = keras_optimizer(
            recipe.optimizer, [t.tensor for t in self.trained], self.kernels
        )
        self.replica: nn.Module = self.net  # what a training step calls: DDP's wrapper if any
        if replicas.distributed:
            join_process_group(replicas, self.device)
            # Buffers are synced from rank 0 at each forward: DDP's default (torch 2.13 calls
            # the switch forward_sync_buffers; broadcast_buffers, its old name, is deprecated).
            on_gpu = self.device.type == "cuda"
            self.replica = DistributedDataParallel(
                self.net, device_ids=[self.device.index] if on_gpu else None
            )

    @property
    def where(self) -> str:
        """The device, as torch names it (`cpu`, `cuda:0`)."""
        return str(self.device)

    def autocast(self) -> contextlib.AbstractContextManager[None]:
        """The forward pass's precision: autocast to the mixed dtype, or nothing (fp32)."""
        if self.precision == "fp32":
            return contextlib.nullcontext()
        return torch.autocast(self.device.type, dtype=AUTOCAST[self.precision])

    def inputs(self, images: np.ndarray, labels: np.ndarray) -> tuple[torch.Tensor, torch.Tensor]:
        """A numpy batch (NHWC) as the model's tensors (NCHW), on its device."""
        x = torch.from_numpy(np.ascontiguousarray(to_channels_first(images), dtype=np.float32))
        y = torch.from_numpy(np.asarray(labels, dtype=np.int64))
        return x.to(self.device), y.to(self.device)

    def l2(self) -> torch.Tensor:
        """Keras's kernel_regularizer=L2(weight_decay): weight_decay * sum of squares."""
        total = torch.zeros((), device=self.device)
        if self.recipe.weight_decay:
            for kernel in self.kernels:
                total = total + kernel.square().sum()
        return total * self.recipe.weight_decay

    def global_sum(self, values: list[float]) -> list[float]:
        """Sums over replicas (float64, so counts stay exact)."""
        if not self.replicas.distributed:
            return [float(value) for value in values]
        # nccl reduces only tensors on the GPU (float64: counts stay exact)
        tensor = torch.tensor(values, dtype=torch.float64, device=self.device)
        dist.all_reduce(tensor)
        return tensor.tolist()

    def train_step(
        self, images: np.ndarray, labels: np.ndarray, learning_rate: float, step: int
    ) -> StepMetrics:
        x, y = self.inputs(images, labels)
        (count,) = self.global_sum([float(len(y))])
        forked = [self.device] if self.device.type == "cuda" else []
        with torch.random.fork_rng(devices=forked, device_type=self.device.type):
            torch.manual_seed(dropout_seed(self.recipe.seed, step, self.replicas.rank))
            with self.autocast():
                output = self.replica(x)
        output = output.float()  # the loss in float32, whatever the forward's precision
        cross_entropy = cross_entropy_sum(output, y, self.from_logits, self.recipe.label_smoothing)
        l2 = self.l2()
        loss = cross_entropy * (self.replicas.world_size / count) + l2
        self.rule.optimizer.zero_grad(set_to_none=True)
        if self.scaler is not None:
            self.scaler.scale(loss).backward()
        else:
            loss.backward()
        self.rule.step(learning_rate, self.scaler)
        correct = (output.detach().argmax(dim=1) == y).sum()
        total, right = self.global_sum([cross_entropy.item(), float(correct)])
        return StepMetrics(total + count * l2.item(), round(right), round(count))

    def evaluate(self, images: np.ndarray, labels: np.ndarray) -> StepMetrics:
        if self.replicas.distributed:
            for buffer in self.net.buffers():  # every replica evaluates rank 0's statistics
                dist.broadcast(buffer, src=0)
        classes = int(self.analysed.shapes[self.analysed.graph.outputs[0]][0])
        sums = [0.0] * (4 + 3 * classes)
        if len(labels):
            x, y = self.inputs(images, labels)
            self.net.eval()
            try:
                with torch.no_grad():
                    with self.autocast():
                        output = self.net(x)
                    sums = evaluation_sums(output.float(), y, classes, self)
            finally:
                self.net.train()
        sums[3] = float(len(labels))
        totals = self.global_sum(sums)
        with torch.no_grad():
            l2 = self.l2().item()
        totals[0] += totals[3] * l2
        return StepMetrics.from_sums(totals, classes)

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
                array = value.detach().cpu().numpy()
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
                tensor = torch.from_numpy(np.array(value, order="C")).to(self.device)
                self.rule.optimizer.state[trained.tensor][name[len(prefix) :]] = tensor


def evaluation_sums(
    output: torch.Tensor, labels: torch.Tensor, classes: int, trainer: TorchTrainer
) -> list[float]:
    """The vector StepMetrics.from_sums reads, for this share (count left at 0: the caller
    sets it, for empty shares too): cross-entropy sum, correct, top-k, count, then per class
    the images, the correct and the top-k. torch's argmax takes the first of equal scores."""
    recipe = trainer.recipe
    cross_entropy = cross_entropy_sum(output, labels, trainer.from_logits, recipe.label_smoothing)
    right = output.argmax(dim=1) == labels
    top = output.topk(min(TOP_K, classes), dim=1).indices
    in_top = (top == labels[:, None]).any(dim=1)
    per_class = [
        torch.bincount(chosen, minlength=classes)
        for chosen in (labels, labels[right], labels[in_top])
    ]
    head = [cross_entropy.item(), float(right.sum()), float(in_top.sum()), 0.0]
    return head + torch.cat(per_class).cpu().double().tolist()  # MPS has no float64


def make_trainer(
    analysed: AnalysedGraph,
    weights: Weights,
    recipe: TrainingRecipe,
    replicas: Replicas = ONE_PROCESS,
    sync_batch_norm: bool = False,
    placement: Placement = DEFAULT_PLACEMENT,
) -> TorchTrainer:
    """The torch trainer of `analysed` (the whole spec) for this process's replica."""
    if sync_batch_norm:
        raise SpecError(
            "the torch backend cannot synchronise BatchNorm on CPU: torch's SyncBatchNorm "
            "needs GPUs (its forward refuses CPU tensors)",
            hint="train with per-replica BatchNorm (the default), or with --backend keras, "
            "whose synchronised BatchNorm runs on CPU",
        )
    return TorchTrainer(analysed, weights, recipe, replicas, placement)
