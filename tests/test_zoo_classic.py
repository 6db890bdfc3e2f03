"""The classic CNNs: specs/resnet101.yaml, resnet152.yaml (resnet50.yaml grown by its
conv*_blocks params), resnet50_v2.yaml ... resnet152_v2.yaml (resnet_v2.yaml),
densenet121.yaml ... densenet201.yaml (densenet.yaml) and vgg19.yaml (vgg16.yaml with a
fourth convolution in its last three blocks) are the nine networks keras.applications builds
with those names.

Every constructor at its defaults, and each family with the keyword arguments users pass
(another input size, include_top=False with each pooling, classes), is compared with its
spec node by node: output shapes and trainable / non-trainable counts
(`test_structure_is_the_keras_model`). The smallest new variant of each family at a reduced
size is compared number by number in the torch, Keras and ONNX builds, from the Keras model's
own `.weights.h5` (ResNet50 itself is tests/test_zoo.py's).
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

# keras.applications with weights=None and default arguments (Keras 3.15.1): the spec of
# each constructor, its default input and (total, trainable, non-trainable) parameters.
CONSTRUCTORS: Constructors = {
    "resnet101": ("ResNet101", 224, (44_707_176, 44_601_832, 105_344)),
    "resnet152": ("ResNet152", 224, (60_419_944, 60_268_520, 151_424)),
    "resnet50_v2": ("ResNet50V2", 224, (25_613_800, 25_568_360, 45_440)),
    "resnet101_v2": ("ResNet101V2", 224, (44_675_560, 44_577_896, 97_664)),
    "resnet152_v2": ("ResNet152V2", 224, (60_380_648, 60_236_904, 143_744)),
    "densenet121": ("DenseNet121", 224, (8_062_504, 7_978_856, 83_648)),
    "densenet169": ("DenseNet169", 224, (14_307_880, 14_149_480, 158_400)),
    "densenet201": ("DenseNet201", 224, (20_242_984, 20_013_928, 229_056)),
    "vgg19": ("VGG19", 224, (143_667_240, 143_667_240, 0)),
    "inception_resnet_v2": ("InceptionResNetV2", 299, (55_873_736, 55_813_192, 60_544)),
    "nasnet_mobile": ("NASNetMobile", 224, (5_326_716, 5_289_978, 36_738)),
    "nasnet_large": ("NASNetLarge", 331, (88_949_818, 88_753_150, 196_668)),
}


def variant(
    id: str, spec: str, args: dict | None = None, sets: tuple[str, ...] = (), **more: object
) -> Variant:
    return configure(CONSTRUCTORS, id, spec, args, sets, **more)


def with_size(
    id: str, spec: str, size: int | tuple[int, int], *rest: object, **more: object
) -> Variant:
    return sized(variant, id, spec, size, *rest, **more)  # type: ignore[arg-type]


NO_TOP = {"include_top": False}
# Every constructor at its defaults, then each family with its keyword arguments: odd sizes
# (every padding, pool and stride sees an odd side), no top with each pooling, classes.
STRUCTURE = [
    *(variant(spec, spec) for spec in CONSTRUCTORS),
    with_size(
        "resnet101_no_top_97x130_max",
        "resnet101",
        (97, 130),
        {**NO_TOP, "pooling": "max"},
        ("include_top=false", "pooling=max"),
    ),
    with_size(
        "resnet50_v2_no_top_97x130_avg",
        "resnet50_v2",
        (97, 130),
        {**NO_TOP, "pooling": "avg"},
        ("include_top=false", "pooling=avg"),
    ),
    with_size(
        "densenet169_no_top_97x130_max",
        "densenet169",
        (97, 130),
        {**NO_TOP, "pooling": "max"},
        ("include_top=false", "pooling=max"),
    ),
    with_size("vgg19_classes_10_96x128", "vgg19", (96, 128), {"classes": 10}, ("classes=10",)),
    with_size(
        "vgg19_no_top_48_avg",
        "vgg19",
        48,
        {**NO_TOP, "pooling": "avg"},
        ("include_top=false", "pooling=avg"),
    ),
    with_size(
        "inception_resnet_v2_no_top_97x130_max",
        "inception_resnet_v2",
        (97, 130),
        {**NO_TOP, "pooling": "max"},
        ("include_top=false", "pooling=max"),
    ),
    with_size(
        "nasnet_mobile_no_top_97x130_max",
        "nasnet_mobile",
        (97, 130),
        {**NO_TOP, "pooling": "max"},
        ("include_top=false", "pooling=max"),
    ),
    with_size(
        "nasnet_large_no_top_65x98_avg",
        "nasnet_large",
        (65, 98),
        {**NO_TOP, "pooling": "avg"},
        ("include_top=false", "pooling=avg"),
    ),
]

# The smallest new variant of each family at a reduced size, in every backend (ResNet50, the
# smallest of its family, is compared at 224 and 161 in tests/test_zoo.py).
NUMERIC = [
    with_size(
        "resnet50_v2_65_classes_7",
        "resnet50_v2",
        65,
        {"classes": 7},
        ("classes=7",),
        features=("conv2_block3_out", "conv3_block1_out", "conv4_block6_out", "post_relu"),
    ),
    with_size(
        "densenet121_64_classes_10",
        "densenet121",
        64,
        {"classes": 10},
        ("classes=10",),
        features=("conv2_block6_concat", "pool2_pool", "conv4_block24_concat", "relu"),
    ),
    with_size(
        "vgg19_no_top_32_max",
        "vgg19",
        32,
        {**NO_TOP, "pooling": "max"},
        ("include_top=false", "pooling=max"),
        features=("block2_pool", "block3_conv4", "block5_conv4"),
    ),
    with_size(
        "inception_resnet_v2_75_classes_10",
        "inception_resnet_v2",
        75,
        {"classes": 10},
        ("classes=10",),
        features=("block35_10_ac", "block17_20_ac", "custom_scale_layer_39", "conv_7b_ac"),
    ),
    with_size(
        "nasnet_mobile_32_classes_10",
        "nasnet_mobile",
        32,
        {"classes": 10},
        ("classes=10",),
        features=(
            "reduction_concat_stem_2",
            "normal_concat_3",
            "reduction_concat_reduce_4",
            "normal_concat_12",
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
    Keras's numbers at the logits (or pooled features) and at the named layers."""
    assert_numbers(request.node.callspec.params["keras_run"], keras_run)
