"""The op registry: every op's attributes, shape rule, parameters and MACs, against numbers
computed by hand.

CASES holds at least one case per op; `test_every_op_has_a_case` fails for an op added to
the registry without one.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import pytest
from pydantic import ValidationError

from xgraph.ops import BUILTIN, REGISTRY, Attrs, OpDef, ParamSpec, Shape
from xgraph.ops.windows import resolve_padding, same_padding


@dataclass(frozen=True)
class Case:
    """One op applied to input shapes, and what it must give."""

    id: str
    op: str
    attrs: dict[str, Any]
    inputs: Sequence[Shape]
    shape: Shape
    trainable: int = 0
    non_trainable: int = 0
    macs: int = 0


CASES = [
    # prelu: one slope per channel, shared over height and width, as Keras's (1, 1, C) alpha.
    Case("prelu image", "prelu", {}, [(8, 8, 5)], (8, 8, 5), trainable=5),
    Case("prelu features", "prelu", {}, [(7,)], (7,), trainable=7),
    # reshape: the same 2*3*4 = 24 values in another shape; -1 is what the others leave.
    Case("reshape to features", "reshape", {"target_shape": [24]}, [(2, 3, 4)], (24,)),
    Case("reshape infers -1", "reshape", {"target_shape": [-1, 2]}, [(2, 3, 4)], (12, 2)),
    Case("reshape to image", "reshape", {"target_shape": [1, 1, 10]}, [(10,)], (1, 1, 10)),
    Case("input image", "input", {"shape": [32, 32, 3]}, [], (32, 32, 3)),
    Case("input vector", "input", {"shape": [10]}, [], (10,)),
    # conv2d: kernel kh*kw*cin*cout (+ bias cout); MACs = out positions * cout * kh*kw*cin.
    Case(
        "conv2d valid",
        "conv2d",
        {"filters": 16, "kernel_size": 3},
        [(32, 32, 3)],
        (30, 30, 16),
        trainable=3 * 3 * 3 * 16 + 16,
        macs=30 * 30 * 16 * 27,
    ),
    Case(
        "conv2d same strided",
        "conv2d",
        {"filters": 8, "kernel_size": 3, "strides": 2, "padding": "same"},
        [(32, 32, 3)],
        (16, 16, 8),
        trainable=3 * 3 * 3 * 8 + 8,
        macs=16 * 16 * 8 * 27,
    ),
    Case(
        "conv2d xception stem",
        "conv2d",
        {"filters": 32, "kernel_size": 3, "strides": 2, "use_bias": False},
        [(299, 299, 3)],
        (149, 149, 32),
        trainable=864,
        macs=149 * 149 * 32 * 27,
    ),
    Case(
        "conv2d explicit padding",
        "conv2d",
        {"filters": 4, "kernel_size": 3, "padding": [[1, 2], [0, 0]], "use_bias": False},
        [(10, 10, 3)],
        (11, 8, 4),
        trainable=3 * 3 * 3 * 4,
        macs=11 * 8 * 4 * 27,
    ),
    Case(
        "conv2d explicit padding, one number",
        "conv2d",
        {"filters": 1, "kernel_size": 3, "padding": 1},
        [(5, 5, 1)],
        (5, 5, 1),
        trainable=10,
        macs=25 * 9,
    ),
    Case(
        "conv2d dilated valid",
        "conv2d",
        {"filters": 1, "kernel_size": 3, "dilation_rate": 2},
        [(32, 32, 1)],
        (28, 28, 1),
        trainable=10,
        macs=28 * 28 * 9,
    ),
    Case(
        "conv2d dilated same",
        "conv2d",
        {"filters": 1, "kernel_size": 3, "dilation_rate": 2, "padding": "same"},
        [(32, 32, 1)],
        (32, 32, 1),
        trainable=10,
        macs=32 * 32 * 9,
    ),
    Case(
        "conv2d rectangular kernel",
        "conv2d",
        {"filters": 3, "kernel_size": [3, 5]},
        [(10, 10, 2)],
        (8, 6, 3),
        trainable=3 * 5 * 2 * 3 + 3,
        macs=8 * 6 * 3 * 30,
    ),
    # grouped conv2d: kernel kh*kw*(cin/groups)*cout; MACs divided by the groups.
    Case(
        "conv2d groups",
        "conv2d",
        {"filters": 6, "kernel_size": 3, "groups": 2, "padding": "same"},
        [(8, 8, 4)],
        (8, 8, 6),
        trainable=3 * 3 * 2 * 6 + 6,
        macs=8 * 8 * 6 * 3 * 3 * 2,
    ),
    Case(
        "conv2d groups per channel (ConvNeXt's depthwise)",
        "conv2d",
        {"filters": 96, "kernel_size": 7, "groups": 96, "padding": "same"},
        [(56, 56, 96)],
        (56, 56, 96),
        trainable=7 * 7 * 96 + 96,
        macs=56 * 56 * 96 * 49,
    ),
    # depthwise: kernel kh*kw*cin*multiplier; MACs = out positions * cout * kh*kw.
    Case(
        "depthwise multiplier",
        "depthwise_conv2d",
        {"kernel_size": 3, "depth_multiplier": 2, "padding": "same"},
        [(8, 8, 3)],
        (8, 8, 6),
        trainable=3 * 3 * 3 * 2 + 6,
        macs=8 * 8 * 6 * 9,
    ),
    Case(
        "depthwise strided",
        "depthwise_conv2d",
        {"kernel_size": 3, "strides": 2, "use_bias": False},
        [(9, 9, 4)],
        (4, 4, 4),
        trainable=3 * 3 * 4,
        macs=4 * 4 * 4 * 9,
    ),
    # separable: depthwise kh*kw*cin*m, pointwise cin*m*cout; MACs of both steps.
    Case(
        "separable xception block2",
        "separable_conv2d",
        {"filters": 128, "kernel_size": 3, "padding": "same", "use_bias": False},
        [(147, 147, 64)],
        (147, 147, 128),
        trainable=3 * 3 * 64 + 64 * 128,  # 8,768 as Keras counts it
        macs=147 * 147 * 64 * 9 + 147 * 147 * 64 * 128,
    ),
    Case(
        "separable multiplier and bias",
        "separable_conv2d",
        {"filters": 5, "kernel_size": 3, "depth_multiplier": 2},
        [(8, 8, 3)],
        (6, 6, 5),
        trainable=3 * 3 * 3 * 2 + 6 * 5 + 5,
        macs=6 * 6 * 6 * 9 + 6 * 6 * 6 * 5,
    ),
    # batch_norm: gamma and beta trainable, moving mean and variance not.
    Case("batch_norm", "batch_norm", {}, [(8, 8, 16)], (8, 8, 16), 32, 32),
    Case("batch_norm no center", "batch_norm", {"center": False}, [(8, 8, 16)], (8, 8, 16), 16, 32),
    Case("batch_norm no scale", "batch_norm", {"scale": False}, [(8, 8, 16)], (8, 8, 16), 16, 32),
    Case(
        "batch_norm neither",
        "batch_norm",
        {"center": False, "scale": False},
        [(8, 8, 16)],
        (8, 8, 16),
        0,
        32,
    ),
    Case("batch_norm vector", "batch_norm", {}, [(10,)], (10,), 20, 20),
    Case("activation relu", "activation", {"activation": "relu"}, [(5, 5, 3)], (5, 5, 3)),
    Case("activation none", "activation", {"activation": "none"}, [(7,)], (7,)),
    # pools: strides default to pool_size.
    Case("max_pool2d default", "max_pool2d", {}, [(9, 9, 4)], (4, 4, 4)),
    Case("max_pool2d strides = pool_size", "max_pool2d", {"pool_size": 3}, [(9, 9, 4)], (3, 3, 4)),
    Case(
        "max_pool2d xception block3",
        "max_pool2d",
        {"pool_size": 3, "strides": 2, "padding": "same"},
        [(74, 74, 256)],
        (37, 37, 256),
    ),
    Case(
        "max_pool2d stride 1", "max_pool2d", {"pool_size": 3, "strides": 1}, [(5, 5, 1)], (3, 3, 1)
    ),
    Case("avg_pool2d rectangular", "avg_pool2d", {"pool_size": [2, 3]}, [(6, 9, 2)], (3, 3, 2)),
    Case("avg_pool2d same", "avg_pool2d", {"padding": "same"}, [(5, 5, 1)], (3, 3, 1)),
    Case("global_avg_pool", "global_avg_pool", {}, [(7, 7, 32)], (32,)),
    Case(
        "global_avg_pool keepdims", "global_avg_pool", {"keepdims": True}, [(7, 7, 32)], (1, 1, 32)
    ),
    Case("global_max_pool", "global_max_pool", {}, [(10, 10, 2048)], (2048,)),
    Case("global_max_pool keepdims", "global_max_pool", {"keepdims": True}, [(3, 5, 8)], (1, 1, 8)),
    # dense: kernel in*units (+ bias units); MACs = input elements * units.
    Case(
        "dense xception classifier",
        "dense",
        {"units": 1000, "activation": "softmax"},
        [(2048,)],
        (1000,),
        trainable=2048 * 1000 + 1000,
        macs=2048 * 1000,
    ),
    Case("dense no bias", "dense", {"units": 10, "use_bias": False}, [(4,)], (10,), 40, macs=40),
    Case(
        "dense on the last axis",
        "dense",
        {"units": 2},
        [(4, 4, 8)],
        (4, 4, 2),
        trainable=8 * 2 + 2,
        macs=4 * 4 * 8 * 2,
    ),
    Case("flatten", "flatten", {}, [(3, 4, 5)], (60,)),
    Case("dropout", "dropout", {"rate": 0.5}, [(10,)], (10,)),
    Case("dropout zero", "dropout", {"rate": 0}, [(4, 4, 2)], (4, 4, 2)),
    Case(
        "dropout per example",
        "dropout",
        {"rate": 0.2, "noise_shape": [1, 1, 1]},
        [(4, 4, 2)],
        (4, 4, 2),
    ),
    Case(
        "dropout per channel",
        "dropout",
        {"rate": 0.2, "noise_shape": [1, 1, 2]},
        [(4, 4, 2)],
        (4, 4, 2),
    ),
    # multiply: NumPy broadcasting within one rank (an SE gate's (1, 1, C) over the image).
    Case("multiply gate", "multiply", {}, [(4, 4, 8), (1, 1, 8)], (4, 4, 8)),
    Case("multiply both ways", "multiply", {}, [(4, 1, 8), (1, 5, 1), (4, 5, 8)], (4, 5, 8)),
    Case("multiply vectors", "multiply", {}, [(6,), (6,)], (6,)),
    # drop-path: no weights, any rank
    Case("stochastic depth image", "stochastic_depth", {"rate": 0.1}, [(4, 4, 2)], (4, 4, 2)),
    Case("stochastic depth features", "stochastic_depth", {"rate": 0.0}, [(6,)], (6,)),
    # layer_norm: gamma and beta (C,) as chosen; layer_scale: gamma (C,)
    Case("layer norm image", "layer_norm", {"epsilon": 1e-6}, [(4, 4, 6)], (4, 4, 6), trainable=12),
    Case("layer norm no scale", "layer_norm", {"scale": False}, [(6,)], (6,), trainable=6),
    Case(
        "layer norm neither",
        "layer_norm",
        {"scale": False, "center": False},
        [(2, 2, 3)],
        (2, 2, 3),
    ),
    Case("layer scale", "layer_scale", {}, [(4, 4, 6)], (4, 4, 6), trainable=6),
    # rescaling: no weights; normalization: mean, variance (C,) and Keras's count () unless given.
    Case("rescaling scalar", "rescaling", {"scale": 0.5}, [(4, 4, 3)], (4, 4, 3)),
    Case(
        "rescaling per channel",
        "rescaling",
        {"scale": [1, 2, 3], "offset": -1},
        [(4, 4, 3)],
        (4, 4, 3),
    ),
    Case("normalization weights", "normalization", {}, [(4, 4, 3)], (4, 4, 3), non_trainable=7),
    Case("normalization features", "normalization", {}, [(5,)], (5,), non_trainable=11),
    Case(
        "normalization constants",
        "normalization",
        {"mean": [0.5, 0.4, 0.3], "variance": [0.1, 0.2, 0.3]},
        [(4, 4, 3)],
        (4, 4, 3),
    ),
    Case("add two", "add", {}, [(4, 4, 2), (4, 4, 2)], (4, 4, 2)),
    Case("add three", "add", {}, [(6,), (6,), (6,)], (6,)),
    Case("concat channels", "concat", {}, [(4, 4, 2), (4, 4, 3)], (4, 4, 5)),
    Case("concat height", "concat", {"axis": 0}, [(4, 4, 2), (6, 4, 2)], (10, 4, 2)),
    Case("concat width", "concat", {"axis": 1}, [(4, 1, 2), (4, 2, 2), (4, 3, 2)], (4, 6, 2)),
    Case("concat negative axis", "concat", {"axis": -3}, [(1, 2, 3), (2, 2, 3)], (3, 2, 3)),
    Case("concat vectors", "concat", {}, [(3,), (5,)], (8,)),
    # scaled_add: inputs[0] + scale * inputs[1], no weights.
    Case("scaled_add", "scaled_add", {"scale": 0.17}, [(4, 4, 2), (4, 4, 2)], (4, 4, 2)),
    Case("scaled_add vectors", "scaled_add", {"scale": 1}, [(6,), (6,)], (6,)),
    # cropping2d: c, [ch, cw] or [[top, bottom], [left, right]] cut off, as Cropping2D's.
    Case("cropping2d default", "cropping2d", {}, [(8, 8, 3)], (8, 8, 3)),
    Case("cropping2d one number", "cropping2d", {"cropping": 2}, [(8, 9, 3)], (4, 5, 3)),
    Case("cropping2d per axis", "cropping2d", {"cropping": [1, 2]}, [(8, 8, 3)], (6, 4, 3)),
    Case(
        "cropping2d explicit (NASNet's)",
        "cropping2d",
        {"cropping": [[1, 0], [1, 0]]},
        [(112, 112, 42)],
        (111, 111, 42),
    ),
    Case("zero_pad2d default", "zero_pad2d", {}, [(8, 8, 3)], (10, 10, 3)),
    Case("zero_pad2d one number", "zero_pad2d", {"padding": 2}, [(8, 8, 3)], (12, 12, 3)),
    Case("zero_pad2d per axis", "zero_pad2d", {"padding": [1, 2]}, [(8, 8, 3)], (10, 12, 3)),
    Case(
        "zero_pad2d explicit",
        "zero_pad2d",
        {"padding": [[1, 2], [3, 4]]},
        [(8, 8, 3)],
        (11, 15, 3),
    ),
]


def apply(case: Case) -> tuple[Attrs, Shape, list[ParamSpec], int]:
    """The op's attributes, output shape, parameters and MACs for this case."""
    opdef = REGISTRY[case.op]
    attrs = opdef.attrs.model_validate(case.attrs)
    shape = tuple(opdef.infer_shape(attrs, case.inputs))
    params = opdef.params(attrs, case.inputs)
    return attrs, shape, params, opdef.macs(attrs, case.inputs, shape)


# The registry


def test_every_builtin_op_has_a_case() -> None:
    """A new built-in op needs an entry in CASES before this suite passes (a plugin's ops
    are checked by hand in the plugin's own tests)."""
    builtin = {name for name, opdef in REGISTRY.items() if opdef.origin == BUILTIN}
    missing = sorted(builtin - {case.op for case in CASES})
    assert not missing, f"ops without a case in tests/test_ops.py: {missing}"


@pytest.mark.parametrize("name", sorted(REGISTRY))
def test_op_is_defined_completely(name: str) -> None:
    opdef = REGISTRY[name]
    assert isinstance(opdef, OpDef)
    assert opdef.name == name
    assert issubclass(opdef.attrs, Attrs)
    assert callable(opdef.infer_shape)
    assert callable(opdef.params)
    assert callable(opdef.macs)
    assert opdef.summary.strip()
    assert opdef.min_inputs >= 0
    assert opdef.max_inputs is None or opdef.max_inputs >= opdef.min_inputs
    assert opdef.examples, f"op '{name}' ({opdef.origin}) has no example for the backends"
    assert len({example.id for example in opdef.examples}) == len(opdef.examples)


@pytest.mark.parametrize("name", sorted(REGISTRY))
def test_op_attributes_are_strict_and_closed(name: str) -> None:
    """Unknown attributes are an error; attribute values are immutable."""
    attrs_model = REGISTRY[name].attrs
    assert attrs_model.model_config.get("extra") == "forbid"
    assert attrs_model.model_config.get("frozen") is True
    assert attrs_model.model_config.get("strict") is True


@pytest.mark.parametrize("name", sorted(REGISTRY))
def test_op_attributes_have_a_json_schema(name: str) -> None:
    schema = REGISTRY[name].attrs.model_json_schema()
    assert schema["type"] == "object"


def test_arities() -> None:
    arity = {name: (op.min_inputs, op.max_inputs) for name, op in REGISTRY.items()}
    assert arity["input"] == (0, 0)
    assert arity["add"] == (2, None)
    assert arity["scaled_add"] == (2, 2)
    assert arity["concat"] == (2, None)
    assert arity["conv2d"] == (1, 1)


# Shapes, parameters and MACs, case by case


@pytest.mark.parametrize("case", CASES, ids=[case.id for case in CASES])
def test_output_shape(case: Case) -> None:
    assert apply(case)[1] == case.shape


@pytest.mark.parametrize("case", CASES, ids=[case.id for case in CASES])
def test_parameter_counts(case: Case) -> None:
    params = apply(case)[2]
    trainable = sum(p.size for p in params if p.trainable)
    non_trainable = sum(p.size for p in params if not p.trainable)
    assert (trainable, non_trainable) == (case.trainable, case.non_trainable)


@pytest.mark.parametrize("case", CASES, ids=[case.id for case in CASES])
def test_macs(case: Case) -> None:
    assert apply(case)[3] == case.macs


# Attribute spellings


def test_kernel_size_number_means_square() -> None:
    attrs = REGISTRY["conv2d"].attrs.model_validate({"filters": 1, "kernel_size": 3})
    assert attrs.kernel_size == (3, 3)
    assert attrs.strides == (1, 1)
    assert attrs.padding == "valid"


@pytest.mark.parametrize("spelling", ["none", None, "linear"])
def test_no_activation_is_linear(spelling: str | None) -> None:
    attrs = REGISTRY["activation"].attrs.model_validate({"activation": spelling})
    assert attrs.activation == "linear"


def test_dense_and_conv_activation_default_to_linear() -> None:
    assert REGISTRY["dense"].attrs.model_validate({"units": 1}).activation == "linear"
    conv = REGISTRY["conv2d"].attrs.model_validate({"filters": 1, "kernel_size": 1})
    assert conv.activation == "linear"


def test_pool_strides_default_to_the_pool_size() -> None:
    attrs = REGISTRY["max_pool2d"].attrs.model_validate({"pool_size": [3, 2]})
    assert attrs.strides is None
    assert attrs.window_strides == (3, 2)


def test_batch_norm_defaults_are_keras_defaults() -> None:
    attrs = REGISTRY["batch_norm"].attrs.model_validate({})
    assert (attrs.epsilon, attrs.momentum, attrs.center, attrs.scale) == (1e-3, 0.99, True, True)


def test_zero_pad2d_default_pads_one_on_every_side() -> None:
    assert REGISTRY["zero_pad2d"].attrs.model_validate({}).padding == ((1, 1), (1, 1))


def test_attributes_do_not_convert_strings_to_numbers() -> None:
    with pytest.raises(ValidationError):
        REGISTRY["conv2d"].attrs.model_validate({"filters": "3", "kernel_size": 3})


def test_unknown_attribute_is_refused() -> None:
    with pytest.raises(ValidationError):
        REGISTRY["conv2d"].attrs.model_validate({"filters": 3, "kernel_size": 3, "kernel": 3})


# TensorFlow's "same" padding


def test_strided_same_padding_puts_the_extra_pixel_after() -> None:
    """Xception's block3 pool: 3x3/2 on 74x74 pads 0 above and 1 below."""
    assert same_padding(74, 3, 2) == (0, 1)


@pytest.mark.parametrize(
    ("size", "kernel", "stride", "dilation", "pads"),
    [
        (147, 3, 2, 1, (1, 1)),  # block2's pool: odd input, symmetric
        (37, 3, 2, 1, (1, 1)),
        (19, 3, 2, 1, (1, 1)),
        (32, 3, 1, 1, (1, 1)),
        (32, 4, 1, 1, (1, 2)),  # even kernel: the extra pixel after
        (32, 1, 2, 1, (0, 0)),  # 1x1 strided: no padding
        (32, 3, 1, 2, (2, 2)),  # dilated: effective kernel 5
        (5, 2, 2, 1, (0, 1)),
    ],
)
def test_same_padding_amounts(
    size: int, kernel: int, stride: int, dilation: int, pads: tuple[int, int]
) -> None:
    assert same_padding(size, kernel, stride, dilation) == pads
    out = -(-size // stride)
    effective = (kernel - 1) * dilation + 1
    assert (size + sum(pads) - effective) // stride + 1 == out


def test_resolve_padding_gives_explicit_amounts() -> None:
    assert resolve_padding("valid", (74, 74), (3, 3), (2, 2)) == ((0, 0), (0, 0))
    assert resolve_padding("same", (74, 75), (3, 3), (2, 2)) == ((0, 1), (1, 1))
    assert resolve_padding(((1, 2), (3, 4)), (9, 9), (3, 3), (1, 1)) == ((1, 2), (3, 4))


# Canonical weights: names, shapes and trainability in the Keras layout


@pytest.mark.parametrize(
    ("op", "attrs", "inputs", "weights"),
    [
        (
            "conv2d",
            {"filters": 8, "kernel_size": [3, 5]},
            [(9, 9, 4)],
            [("kernel", (3, 5, 4, 8), True), ("bias", (8,), True)],
        ),
        (
            "depthwise_conv2d",
            {"kernel_size": 3, "depth_multiplier": 2},
            [(9, 9, 4)],
            [("depthwise_kernel", (3, 3, 4, 2), True), ("bias", (8,), True)],
        ),
        (
            "separable_conv2d",
            {"filters": 6, "kernel_size": 3, "depth_multiplier": 2, "use_bias": False},
            [(9, 9, 4)],
            [("depthwise_kernel", (3, 3, 4, 2), True), ("pointwise_kernel", (1, 1, 8, 6), True)],
        ),
        (
            "batch_norm",
            {},
            [(9, 9, 4)],
            [
                ("gamma", (4,), True),
                ("beta", (4,), True),
                ("moving_mean", (4,), False),
                ("moving_variance", (4,), False),
            ],
        ),
        (
            "dense",
            {"units": 3},
            [(7,)],
            [("kernel", (7, 3), True), ("bias", (3,), True)],
        ),
    ],
)
def test_weights_are_in_the_keras_layout(
    op: str,
    attrs: dict[str, Any],
    inputs: list[Shape],
    weights: list[tuple[str, Shape, bool]],
) -> None:
    opdef = REGISTRY[op]
    params = opdef.params(opdef.attrs.model_validate(attrs), inputs)
    assert [(p.name, p.shape, p.trainable) for p in params] == weights


@pytest.mark.parametrize(
    ("op", "attrs", "inputs", "message"),
    [
        ("multiply", {}, [(4, 4, 8), (4, 4, 3)], "cannot broadcast (4, 4, 8), (4, 4, 3)"),
        ("multiply", {}, [(4, 4, 8), (8,)], "needs inputs of one rank"),
        ("rescaling", {"scale": [1.0, 2.0]}, [(4, 4, 3)], "'scale' has 2 values for 3 channels"),
        ("dropout", {"rate": 0.1, "noise_shape": [1, 1]}, [(4, 4, 3)], "'noise_shape' (1, 1)"),
        ("dropout", {"rate": 0.1, "noise_shape": [1, 2, 1]}, [(4, 4, 3)], "1 or that axis's size"),
        (
            "conv2d",
            {"filters": 6, "kernel_size": 1, "groups": 4},
            [(4, 4, 8)],
            "conv2d with groups=4 needs input channels and filters divisible by 4, "
            "got 8 input channels and 6 filters",
        ),
        (
            "conv2d",
            {"filters": 6, "kernel_size": 1, "groups": 3},
            [(4, 4, 8)],
            "got 8 input channels and 6 filters",
        ),
        ("cropping2d", {"cropping": [[2, 2], [0, 0]]}, [(4, 5, 3)], "at least one row"),
        ("cropping2d", {"cropping": [0, 3]}, [(4, 5, 3)], "3 + 3 columns off (4, 5, 3)"),
        ("cropping2d", {}, [(8,)], "cropping2d needs an input of shape (H, W, C)"),
        ("scaled_add", {"scale": 0.5}, [(4, 4, 3), (4, 4, 2)], "scaled_add needs inputs of one"),
    ],
)
def test_new_ops_refuse_shapes_they_cannot_take(
    op: str, attrs: dict[str, Any], inputs: list[Shape], message: str
) -> None:
    from xgraph.ops import ShapeError

    opdef = REGISTRY[op]
    with pytest.raises(ShapeError, match=re.escape(message)):
        opdef.infer_shape(opdef.attrs.model_validate(attrs), inputs)


def test_groups_cropping_and_scale_refuse_bad_values() -> None:
    with pytest.raises(ValidationError, match="greater than or equal to 1"):
        REGISTRY["conv2d"].attrs.model_validate({"filters": 4, "kernel_size": 1, "groups": 0})
    with pytest.raises(ValidationError, match="greater than or equal to 0"):
        REGISTRY["cropping2d"].attrs.model_validate({"cropping": [[1, -1], [0, 0]]})
    for scale in ("0.5", None, float("nan")):
        with pytest.raises(ValidationError):
            REGISTRY["scaled_add"].attrs.model_validate({"scale": scale})
    with pytest.raises(ValidationError, match="scale"):
        REGISTRY["scaled_add"].attrs.model_validate({})


def test_normalization_takes_mean_and_variance_together() -> None:
    with pytest.raises(ValidationError, match="give both 'mean' and 'variance'"):
        REGISTRY["normalization"].attrs.model_validate({"mean": [0.5]})
