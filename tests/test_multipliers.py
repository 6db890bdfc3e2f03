"""Width multipliers: `make_divisible()` rounds as MobileNetV2 does, and Xception's `width`
scales every filter count by it, counts and parity checked against a hand-halved spec."""

from __future__ import annotations

from pathlib import Path

import pytest

from xgraph.api import load
from xgraph.cli import main
from xgraph.ir.analysis import AnalysedGraph
from xgraph.spec.expressions import ExpressionError, evaluate

ROOT = Path(__file__).resolve().parent.parent
XCEPTION = ROOT / "specs" / "xception.yaml"

# Xception's filter counts at width 0.5, worked out by hand with MobileNetV2's rule: the
# nearest multiple of 8 (364 -> 368), never more than 10% below half.
HALVED = {32: 16, 64: 32, 128: 64, 256: 128, 728: 368, 1024: 512, 1536: 768, 2048: 1024}


@pytest.mark.parametrize(
    ("text", "value"),
    [
        ("make_divisible(728)", 728),  # width 1.0 changes nothing
        ("make_divisible(364.0, 8)", 368),  # to the nearest multiple: 45.5 eighths -> 46
        ("make_divisible(11.2)", 16),  # 8 would be 29% below 11.2: one divisor more
        ("make_divisible(3, divisor=8)", 8),  # at least the divisor
        ("make_divisible(20, 8, min_value=32)", 32),
        ("make_divisible(v=100, divisor=16)", 96),
    ],
)
def test_make_divisible_rounds_as_mobilenet_v2(text: str, value: int) -> None:
    result = evaluate(text, {})
    assert (result, type(result)) == (value, int)


@pytest.mark.parametrize(
    "text",
    [
        "make_divisible()",
        "make_divisible(1, 2, 3, 4)",
        "make_divisible(8, step=2)",
        "make_divisible(8, v=8)",
        "make_divisible(8, divisor=0)",
        "make_divisible(8, divisor=2.5)",
        "make_divisible('a')",
    ],
)
def test_a_wrong_make_divisible_call_is_refused(text: str) -> None:
    with pytest.raises(ExpressionError):
        evaluate(text, {})


# Xception halved by hand, as a variant author writes it without `width`: every filter count
# overridden with its HALVED value (xception_tiny's way).
HAND_HALVED = f"""\
xgraph: 1
extends: {XCEPTION.as_posix()}
name: xception_halved_by_hand
blocks:
  middle_block:
    params:
      filters: {{default: 368}}
override:
  block1_conv1: {{filters: 16}}
  block1_conv2: {{filters: 32}}
  block2: {{args: {{filters: 64}}}}
  block3: {{args: {{filters: 128}}}}
  block4: {{args: {{filters: 368}}}}
  "block${{middle_flow_blocks + 5}}": {{args: {{filters: 368, exit_filters: 512}}}}
  block14_sepconv1: {{filters: 768}}
  block14_sepconv2: {{filters: 1024}}
"""


def _hand_halved(tmp_path: Path) -> AnalysedGraph:
    path = tmp_path / "halved.yaml"
    path.write_text(HAND_HALVED)
    return load(path)


def test_width_one_keeps_keras_xception() -> None:
    analysed = load(XCEPTION)
    assert (analysed.total_params, analysed.non_trainable_params) == (22_910_480, 54_528)


def test_half_width_counts_equal_the_hand_halved_spec(tmp_path: Path) -> None:
    halved, by_hand = load(XCEPTION, ["width=0.5"]), _hand_halved(tmp_path)
    assert halved.shapes == by_hand.shapes
    assert halved.counts == by_hand.counts
    assert (halved.total_params, halved.non_trainable_params) == (6_402_376, 27_488)


@pytest.mark.parametrize("spec", ["xception.yaml", "xception_intermediate_relu.yaml"])
def test_every_channel_count_is_scaled(spec: str) -> None:
    """Only the classifier's units stay: the variants that extend xception.yaml inherit it."""
    full, half = load(ROOT / "specs" / spec), load(ROOT / "specs" / spec, ["width=0.5"])
    for node in full.graph.nodes:
        if node.op not in ("input", "dense"):
            assert half.shapes[node.name][-1] == HALVED[full.shapes[node.name][-1]], node.name


def test_middle_flow_blocks_still_sets_the_depth() -> None:
    analysed = load(XCEPTION, ["width=0.5", "middle_flow_blocks=2"])
    assert analysed.shapes["block6_add"][-1] == 368
    assert analysed.shapes["block7_add"][-1] == 512  # the exit flow's block follows


@pytest.mark.parametrize("width", ["0", "-0.5"])
def test_a_width_of_zero_or_less_is_refused_at_the_set(width: str, capsys) -> None:
    assert main(["validate", str(XCEPTION), "--set", f"width={width}"]) == 2
    assert "--set:1:7: error: parameter 'width' must be at least" in capsys.readouterr().err


def test_half_width_xception_agrees_in_every_backend(capsys) -> None:
    """Parameters and every node's numbers, at 71x71 (Xception's smallest input)."""
    sets = ["--set", "width=0.5", "--set", "input_shape=[71,71,3]"]
    assert main(["parity", str(XCEPTION), *sets, "--json"]) == 0
    assert main(["parity", str(XCEPTION), *sets, "--numeric", "--json", "--batch", "1"]) == 0
    capsys.readouterr()
