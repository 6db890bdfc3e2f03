"""Checked by mypy (`make test`), never run: each backend, op rule, weight-file format,
trainer factory and code printer (a module) is what its declared protocol says. A missing
method or a signature that drifts from the protocol fails the type check here, naming it."""

from __future__ import annotations

from xgraph_onnx.backend import OnnxBackend
from xgraph_onnx.rules import OnnxRule

import xgraph_keras.codegen as keras_printer
import xgraph_torch.codegen as torch_printer
from xgraph.backend import Backend
from xgraph.backend.rules import OpRule
from xgraph.codegen.model import Printer
from xgraph.training.trainer import MakeTrainer, Trainer
from xgraph.weights.formats import CanonicalFiles, WeightFileFormat
from xgraph_keras.backend import KerasBackend
from xgraph_keras.files import KERAS_FILES
from xgraph_keras.rules import KerasRule
from xgraph_keras.training import KerasTrainer
from xgraph_keras.training import make_trainer as make_keras_trainer
from xgraph_torch.backend import TorchBackend
from xgraph_torch.files import STATE_DICT_FILES
from xgraph_torch.rules import TorchRule
from xgraph_torch.training import TorchTrainer
from xgraph_torch.training import make_trainer as make_torch_trainer


def backends() -> list[Backend]:
    return [TorchBackend(), KerasBackend(), OnnxBackend()]


def trainers(torch_trainer: TorchTrainer, keras_trainer: KerasTrainer) -> list[Trainer]:
    return [torch_trainer, keras_trainer]


def trainer_factories() -> list[MakeTrainer]:
    return [make_torch_trainer, make_keras_trainer]


def op_rules(torch_rule: TorchRule, keras_rule: KerasRule, onnx_rule: OnnxRule) -> list[OpRule]:
    return [torch_rule, keras_rule, onnx_rule]


def weight_file_formats() -> list[WeightFileFormat]:
    return [CanonicalFiles(), STATE_DICT_FILES, KERAS_FILES]


def printers() -> list[Printer]:
    return [torch_printer, keras_printer]
