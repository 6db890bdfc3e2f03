"""Today's CNN vocabulary: specs/mobilenet_v2.yaml, mobilenet_v3*.yaml, efficientnet*.yaml
and efficientnet_v2*.yaml are the 18 networks keras.applications builds with those names.

Every constructor, at its defaults and with the keyword arguments users pass (alpha,
include_top with each pooling, classes, minimalistic, include_preprocessing, drop_connect_rate,
another input size), is compared with its spec node by node: output shapes and trainable /
non-trainable counts (`test_structure_is_the_keras_model`). The smallest variant of each
family at a reduced size, and larger ones (EfficientNetB1, MobileNetV3Large), are compared
number by number in the torch, Keras and ONNX builds, from the Keras model's own
`.weights.h5`. `make zoo` runs the numbers of every constructor at its default size
(benchmarks/zoo.py).
"""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.zoo_harness import (
    Constructors,
    KerasFacts,
    Variant,
    assert_numbers,
    assert_structure,
    assert_totals,
    configure,
    sized,
)

PIXELS = (0.0, 255.0)  # models that rescale their own input take pixel values

# keras.applications with weights=None and default arguments (Keras 3.15.1): the spec of
# each constructor, its default input and (total, trainable, non-trainable) parameters.
CONSTRUCTORS: Constructors = {
    "mobilenet_v2": ("MobileNetV2", 224, (3_538_984, 3_504_872, 34_112)),
    "mobilenet_v3_small": ("MobileNetV3Small", 224, (2_554_968, 2_542_856, 12_112)),
    "mobilenet_v3_large": ("MobileNetV3Large", 224, (5_507_432, 5_483_032, 24_400)),
    "efficientnet_b0": ("EfficientNetB0", 224, (5_330_571, 5_288_548, 42_023)),
    "efficientnet_b1": ("EfficientNetB1", 240, (7_856_239, 7_794_184, 62_055)),
    "efficientnet_b2": ("EfficientNetB2", 260, (9_177_569, 9_109_994, 67_575)),
    "efficientnet_b3": ("EfficientNetB3", 300, (12_320_535, 12_233_232, 87_303)),
    "efficientnet_b4": ("EfficientNetB4", 380, (19_466_823, 19_341_616, 125_207)),
    "efficientnet_b5": ("EfficientNetB5", 456, (30_562_527, 30_389_784, 172_743)),
    "efficientnet_b6": ("EfficientNetB6", 528, (43_265_143, 43_040_704, 224_439)),
    "efficientnet_b7": ("EfficientNetB7", 600, (66_658_687, 66_347_960, 310_727)),
    "efficientnet_v2_b0": ("EfficientNetV2B0", 224, (7_200_312, 7_139_704, 60_608)),
    "efficientnet_v2_b1": ("EfficientNetV2B1", 240, (8_212_124, 8_141_052, 71_072)),
    "efficientnet_v2_b2": ("EfficientNetV2B2", 260, (10_178_374, 10_096_086, 82_288)),
    "efficientnet_v2_b3": ("EfficientNetV2B3", 300, (14_467_622, 14_358_406, 109_216)),
    "efficientnet_v2_s": ("EfficientNetV2S", 384, (21_612_360, 21_458_488, 153_872)),
    "efficientnet_v2_m": ("EfficientNetV2M", 480, (54_431_388, 54_139_356, 292_032)),
    "efficientnet_v2_l": ("EfficientNetV2L", 480, (119_027_848, 118_515_272, 512_576)),
    "convnext_tiny": ("ConvNeXtTiny", 224, (28_589_128, 28_589_128, 0)),
    "convnext_small": ("ConvNeXtSmall", 224, (50_223_688, 50_223_688, 0)),
    "convnext_base": ("ConvNeXtBase", 224, (88_591_464, 88_591_464, 0)),
    "convnext_large": ("ConvNeXtLarge", 224, (197_767_336, 197_767_336, 0)),
    "convnext_xlarge": ("ConvNeXtXLarge", 224, (350_196_968, 350_196_968, 0)),
}
# ConvNeXt's residual sums are tensor arithmetic in Keras (`inputs + x`), not Add layers.
KERAS_OPS = {spec: ("Add",) for spec in CONSTRUCTORS if spec.startswith("convnext")}


def variant(
    id: str, spec: str, args: dict | None = None, sets: tuple[str, ...] = (), **more: object
) -> Variant:
    """A configuration of `spec`'s constructor, with the pixels the model takes."""
    pixels = PIXELS if not spec.startswith("mobilenet_v2") else (-1.0, 1.0)
    more = {"pixels": pixels, "keras_ops": KERAS_OPS.get(spec, ()), **more}
    return configure(CONSTRUCTORS, id, spec, args, sets, **more)


def with_size(
    id: str, spec: str, size: int | tuple[int, int], *rest: object, **more: object
) -> Variant:
    return sized(variant, id, spec, size, *rest, **more)  # type: ignore[arg-type]


def _efficientnet(
    coefficients: tuple[float, float, int], rate: float, dropout: float = 0.2
) -> dict:
    """The family functions' arguments (keras.src.applications' EfficientNet and
    EfficientNetV2): the named constructors do not take drop_connect_rate."""
    width, depth, size = coefficients
    return {
        "width_coefficient": width,
        "depth_coefficient": depth,
        "default_size": size,
        "dropout_rate": dropout,
        "drop_connect_rate": rate,
    }


NO_TOP = {"include_top": False}
# Every constructor at its defaults, then each keyword argument at least once (several in one
# configuration where they are independent: a Keras build takes seconds).
STRUCTURE = [
    *(variant(spec, spec) for spec in CONSTRUCTORS),
    # MobileNetV2: alpha rounds filters to multiples of 8, and widens the last conv above 1
    variant(
        "mobilenet_v2_alpha_0.35_classes_10",
        "mobilenet_v2",
        {"alpha": 0.35, "classes": 10},
        ("alpha=0.35", "classes=10"),
    ),
    with_size(
        "mobilenet_v2_alpha_1.4_no_top_97x131_max",
        "mobilenet_v2",
        (97, 131),
        {"alpha": 1.4, **NO_TOP, "pooling": "max"},
        ("alpha=1.4", "include_top=false", "pooling=max"),
    ),
    # MobileNetV3
    variant(
        "mobilenet_v3_small_alpha_0.75_minimalistic_no_top_avg",
        "mobilenet_v3_small",
        {"alpha": 0.75, "minimalistic": True, **NO_TOP, "pooling": "avg"},
        ("alpha=0.75", "minimalistic=true", "include_top=false", "pooling=avg"),
    ),
    variant(
        "mobilenet_v3_large_no_preprocessing_classes_10_dropout_0.5",
        "mobilenet_v3_large",
        {"include_preprocessing": False, "classes": 10, "dropout_rate": 0.5},
        ("include_preprocessing=false", "classes=10", "dropout_rate=0.5"),
    ),
    # EfficientNet: odd sizes change every correct_pad; drop_connect_rate per block
    with_size(
        "efficientnet_b0_no_top_97x130_avg",
        "efficientnet_b0",
        (97, 130),
        {**NO_TOP, "pooling": "avg"},
        ("include_top=false", "pooling=avg"),
    ),
    Variant(
        "efficientnet_b0_drop_connect_0.3_classes_10",
        "efficientnet_b0",
        "EfficientNet",
        {**_efficientnet((1.0, 1.0, 224), 0.3), "classes": 10, "input_shape": (64, 64, 3)},
        ("drop_connect_rate=0.3", "classes=10", "input_shape=[64,64,3]"),
    ),
    # EfficientNetV2
    with_size(
        "efficientnet_v2_b0_no_top_97x130_max",
        "efficientnet_v2_b0",
        (97, 130),
        {**NO_TOP, "pooling": "max"},
        ("include_top=false", "pooling=max"),
    ),
    variant(
        "efficientnet_v2_b3_no_preprocessing_classes_7",
        "efficientnet_v2_b3",
        {"include_preprocessing": False, "classes": 7},
        ("include_preprocessing=false", "classes=7"),
    ),
    Variant(
        "efficientnet_v2_s_drop_connect_0.3_no_top",
        "efficientnet_v2_s",
        "EfficientNetV2",
        {
            **_efficientnet((1.0, 1.0, 384), 0.3),
            "name": "efficientnetv2-s",
            "input_shape": (64, 64, 3),
            **NO_TOP,
        },
        ("drop_connect_rate=0.3", "input_shape=[64,64,3]", "include_top=false"),
    ),
]

STRUCTURE += [
    # ConvNeXt: headless with each pooling (a LayerNorm follows in Keras), the family
    # function's drop_path_rate, no preprocessing
    with_size(
        "convnext_tiny_no_top_97x130_avg",
        "convnext_tiny",
        (97, 130),
        {**NO_TOP, "pooling": "avg"},
        ("include_top=false", "pooling=avg"),
    ),
    with_size(
        "convnext_small_no_top_64_unpooled_no_preprocessing",
        "convnext_small",
        64,
        {**NO_TOP, "include_preprocessing": False},
        ("include_top=false", "include_preprocessing=false"),
    ),
    Variant(
        "convnext_tiny_drop_path_0.3_classes_10",
        "convnext_tiny",
        "ConvNeXt",
        {
            "depths": [3, 3, 9, 3],
            "projection_dims": [96, 192, 384, 768],
            "drop_path_rate": 0.3,
            "name": "convnext_tiny",
            "classes": 10,
            "input_shape": (64, 64, 3),
        },
        ("drop_path_rate=0.3", "classes=10", "input_shape=[64,64,3]"),
        keras_ops=("Add",),
    ),
]

# The smallest of each family at a reduced size, and larger ones, in every backend.
NUMERIC = [
    with_size(
        "mobilenet_v2_96",
        "mobilenet_v2",
        96,
        features=("block_2_add", "block_6_project_BN", "block_13_depthwise_relu", "out_relu"),
    ),
    with_size(
        "mobilenet_v3_small_64",
        "mobilenet_v3_small",
        64,
        features=("expanded_conv_3_squeeze_excite_mul", "expanded_conv_7_project_bn", "conv_1_bn"),
    ),
    with_size(
        "mobilenet_v3_large_minimalistic_no_top_96_avg",
        "mobilenet_v3_large",
        96,
        {"minimalistic": True, **NO_TOP, "pooling": "avg"},
        ("minimalistic=true", "include_top=false", "pooling=avg"),
        features=("expanded_conv_4_add", "expanded_conv_11_add"),
    ),
    with_size(
        "efficientnet_b0_65",
        "efficientnet_b0",
        65,
        features=(
            "normalization",
            "stem_conv",
            "block2a_dwconv",
            "block4a_dwconv",
            "block6a_se_excite",
            "top_activation",
        ),
    ),
    with_size(
        "efficientnet_b1_97_classes_7",
        "efficientnet_b1",
        97,
        {"classes": 7},
        ("classes=7",),
        features=("block2c_add", "block5d_add", "block7b_project_bn"),
    ),
    with_size(
        "efficientnet_v2_b0_64",
        "efficientnet_v2_b0",
        64,
        features=(
            "normalization",
            "block1a_project_activation",
            "block2b_add",
            "block4a_se_excite",
            "block6h_add",
            "top_activation",
        ),
    ),
]


NUMERIC += [
    with_size(
        "convnext_tiny_64",
        "convnext_tiny",
        64,
        features=(
            "convnext_tiny_prestem_normalization",
            "convnext_tiny_stage_0_block_2_layer_scale",
            "convnext_tiny_stage_2_block_4_gelu",
            "convnext_tiny_stage_3_block_2_pointwise_conv_2",
        ),
    ),
]


@pytest.mark.parametrize("spec", sorted(CONSTRUCTORS))
def test_parameter_totals_equal_keras(spec: str) -> None:
    assert_totals(CONSTRUCTORS, spec)


@pytest.mark.parametrize("variant", STRUCTURE, ids=lambda v: v.id)
def test_structure_is_the_keras_model(variant: Variant, tmp_path: Path) -> None:
    assert_structure(variant, tmp_path)


@pytest.mark.parametrize("keras_run", NUMERIC, ids=lambda v: v.id, indirect=True)
def test_numbers_are_the_keras_models(
    keras_run: KerasFacts, request: pytest.FixtureRequest
) -> None:
    """Keras's weights file read by xgraph makes the torch, Keras and ONNX builds compute
    Keras's numbers at the logits and at the named layers."""
    assert_numbers(request.node.callspec.params["keras_run"], keras_run)
