"""Hostile YAML fails fast and harmlessly: bounded expansion and size, no code, no output.

What bounds a refusal is work: the budgets (xgraph/budgets.py) stop expansion, nesting and
reading at a fixed count, and the refused text is checked by what it did, not by how long it
took. Time is only a ceiling against runaway work: CPU time of this process (which other
processes on a busy machine do not inflate) under tests/fuzzing.py's CPU_CEILING_S, each test
printing its figure (`pytest -rP`). A refusal takes milliseconds; each test says what the
bug it guards would cost, far above the ceiling, so a slow or loaded machine passes and the
bug still fails.
"""

from __future__ import annotations

import time
from pathlib import Path

import pytest
from fuzzing import CPU_CEILING_S

from xgraph.api import loads
from xgraph.budgets import DEFAULT_BUDGETS
from xgraph.cli import main
from xgraph.errors import SpecError
from xgraph.spec import source

MAX_SOURCE_BYTES = DEFAULT_BUDGETS.source_bytes

VALID_SPEC = """\
xgraph: 1
name: tiny
inputs:
  - {name: image, shape: [8, 8, 3]}
nodes:
  - {name: conv, op: conv2d, filters: 4, kernel_size: 3}
  - {name: pool, op: global_avg_pool}
"""


def billion_laughs(levels: int = 9, width: int = 9) -> str:
    """Each anchor lists the previous one `width` times: width**levels strings in all."""
    lines = ["xgraph: 1", "name: bomb", f"lol0: &lol0 [{', '.join(['lol'] * width)}]"]
    for level in range(1, levels + 1):
        aliases = ", ".join([f"*lol{level - 1}"] * width)
        lines.append(f"lol{level}: &lol{level} [{aliases}]")
    return "\n".join(lines) + "\n"


def refuse(argv: list[str], capsys: pytest.CaptureFixture[str]) -> tuple[str, float]:
    """Run the CLI, expecting a refusal: its stderr and the CPU time it took (the work done,
    which other processes on a busy machine do not inflate as they do wall-clock time)."""
    start = time.process_time()
    code = main(argv)
    elapsed = time.process_time() - start
    err = capsys.readouterr().err
    assert code == 2
    assert "Traceback" not in err
    return err, elapsed


def assert_under_ceiling(spent: float) -> None:
    """Print the refusal's CPU time, the figure the ceiling is judged by, and check it."""
    print(f"refused in {spent:.3f} s of CPU")
    assert spent < CPU_CEILING_S, f"{spent:.2f} s of CPU, over the {CPU_CEILING_S:g} s ceiling"


def test_alias_bomb_is_refused_quickly(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """9**10 (3.5 billion) strings. Without the expansion budget, converting them takes hours
    and tens of GB: 14.5 s of CPU at 6 levels already, about 12 times more per level (Intel
    Xeon, 2026-12-03)."""
    path = tmp_path / "bomb.yaml"
    path.write_text(billion_laughs())
    err, elapsed = refuse(["validate", str(path)], capsys)
    assert err.startswith(f"{path}:")
    assert "expands to more than" in err
    assert "alias bomb" in err
    assert_under_ceiling(elapsed)


def test_mapping_alias_bomb_is_refused_quickly(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """6**12 (2 billion) values. Without the expansion budget: hours, 15.6 s of CPU at 7 levels
    already, about 9 times more per level (Intel Xeon, 2026-12-03)."""
    lines = ["xgraph: 1", "name: bomb", "m0: &m0 {a: 1, b: 2, c: 3, d: 4, e: 5, f: 6}"]
    for level in range(1, 12):
        entries = ", ".join(f"k{i}: *m{level - 1}" for i in range(6))
        lines.append(f"m{level}: &m{level} {{{entries}}}")
    path = tmp_path / "bomb.yaml"
    path.write_text("\n".join(lines) + "\n")
    err, elapsed = refuse(["validate", str(path)], capsys)
    assert "alias bomb" in err
    assert_under_ceiling(elapsed)


def test_alias_inside_its_own_anchor_is_refused() -> None:
    with pytest.raises(SpecError, match="alias is used inside its own anchor") as caught:
        loads("xgraph: 1\nname: &self [a, *self]\n", file="loop.yaml")
    assert (caught.value.location.line, caught.value.location.column) == (2, 7)


def test_file_of_several_megabytes_is_refused_quickly(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Refused on its size, whatever it holds. Reading these 1.3 MB whole would cost only
    milliseconds, so no time bound can see it: the reader's byte limit is what
    test_a_file_without_end_is_read_only_to_the_size_limit guards. The ceiling here catches
    a refusal that loops."""
    path = tmp_path / "huge.yaml"
    node = "  - {op: batch_norm}\n"
    body = node * (5 * MAX_SOURCE_BYTES // len(node))
    path.write_text(VALID_SPEC + body)
    assert path.stat().st_size > 4 * MAX_SOURCE_BYTES
    err, elapsed = refuse(["validate", str(path)], capsys)
    assert err.startswith(f"{path}:1:1: error: file is ")
    assert "larger than" in err
    assert_under_ceiling(elapsed)


def test_text_of_several_megabytes_is_refused_quickly(monkeypatch: pytest.MonkeyPatch) -> None:
    """Refused on its length, before anything reads it: a limit on work, checked by making
    the character scan and the YAML parser fail the test if they run. Time could not tell:
    libyaml parses these 2.6 MB in 0.02 s of CPU (Intel Xeon, 2026-12-03). The CPU ceiling
    catches a refusal that loops."""
    text = VALID_SPEC + "# padding\n" * MAX_SOURCE_BYTES

    def read(*args: object) -> None:
        raise AssertionError("the text was read before its size was checked")

    monkeypatch.setattr(source, "_check_printable", read)
    monkeypatch.setattr(source, "_Loader", read)
    start = time.process_time()
    with pytest.raises(SpecError, match="larger than"):
        loads(text)
    assert_under_ceiling(time.process_time() - start)


def test_deep_nesting_is_refused_without_overflowing_the_stack(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """The bug this guards is a crash, not a delay: the composer recurses once a level, and
    the message shows the depth budget stopped it. The ceiling catches a refusal that loops."""
    path = tmp_path / "deep.yaml"
    path.write_text("xgraph: 1\ndescription: " + "[" * 50_000 + "]" * 50_000 + "\n")
    err, elapsed = refuse(["validate", str(path)], capsys)
    assert "nests deeper than" in err
    assert_under_ceiling(elapsed)


@pytest.mark.parametrize(
    "tag",
    [
        "!!python/object/apply:os.system",
        "!!python/object/apply:subprocess.call",
        "!!python/name:os.system",
        "!!binary",
        "!custom",
    ],
)
def test_application_tags_are_refused_and_never_run(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], tag: str
) -> None:
    marker = tmp_path / "ran"
    path = tmp_path / "tagged.yaml"
    path.write_text(VALID_SPEC + f'description: {tag} ["touch {marker}"]\n')
    err, _ = refuse(["validate", str(path)], capsys)
    assert err.startswith(f"{path}:8:14: error: unsupported YAML tag '{tag}'")
    assert not marker.exists()


def test_duplicate_keys_are_an_error(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    path = tmp_path / "twice.yaml"
    path.write_text(VALID_SPEC + "name: other\n")
    err, _ = refuse(["validate", str(path)], capsys)
    assert err.splitlines() == [
        f"{path}:8:1: error: duplicate key 'name'",
        f"  note: first given at {path}:2:1",
    ]


@pytest.mark.parametrize(
    "bad",
    [
        "nodes:\n  - {op: seperable_conv2d}\n",  # fails while compiling
        "nodes:\n  - {op: conv2d, filters: 4, kernel_size: 30}\n",  # fails in shape inference
        "nodes: [\n",  # fails while parsing
    ],
    ids=["unknown-op", "shape-error", "malformed"],
)
def test_graph_writes_no_output_for_a_bad_spec(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], bad: str
) -> None:
    spec = tmp_path / "bad.yaml"
    spec.write_text(VALID_SPEC.split("nodes:")[0] + bad)
    out = tmp_path / "out" / "graph.dot"
    refuse(["graph", str(spec), "-o", str(out)], capsys)
    assert [p for p in tmp_path.rglob("*") if p.is_file()] == [spec]


def test_graph_leaves_an_existing_output_untouched(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    spec = tmp_path / "bad.yaml"
    spec.write_text(VALID_SPEC + "  - {name: logits, op: dense, units: 0}\n")
    out = tmp_path / "graph.dot"
    out.write_text("previous drawing\n")
    refuse(["graph", str(spec), "-o", str(out)], capsys)
    assert out.read_text() == "previous drawing\n"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["bad.yaml", "graph.dot"]


def test_a_file_without_end_is_read_only_to_the_size_limit(
    capsys: pytest.CaptureFixture[str],
) -> None:
    """/dev/zero reports size 0 and never ends: reading stops one byte past the limit. A
    reader without that limit never ends either: it reads until memory runs out."""
    err, elapsed = refuse(["validate", "/dev/zero"], capsys)
    assert err.splitlines()[0] == (
        "/dev/zero:1:1: error: file is larger than 262,144 bytes (limit 'source_bytes')"
    )
    assert_under_ceiling(elapsed)
