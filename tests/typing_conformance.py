"""Checked by mypy (`make test`), never run: each backend and each trainer factory is what its
declared protocol says. A missing method or a signature that drifts from the protocol fails
the type check here, naming the class."""

from __future__ import annotations

from xgraph_onnx.backend import OnnxBackend

from xgraph.backend import Backend
from xgraph.training.trainer import MakeTrainer, Trainer
from xgraph_keras.backend import KerasBackend
from xgraph_keras.training import KerasTrainer
from xgraph_keras.training import make_trainer as make_keras_trainer
from xgraph_torch.backend import TorchBackend
from xgraph_torch.training import TorchTrainer
from xgraph_torch.training import make_trainer as make_torch_trainer


def backends() -> list[Backend]:
    return [TorchBackend(), KerasBackend(), OnnxBackend()]


def trainers(torch_trainer: TorchTrainer, keras_trainer: KerasTrainer) -> list[Trainer]:
    return [torch_trainer, keras_trainer]


def trainer_factories() -> list[MakeTrainer]:
    return [make_torch_trainer, make_keras_trainer]
