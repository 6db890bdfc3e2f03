"""The bad spec corpus: every mistake exits with status 2 and one located, hinted message.

Each file in `tests/bad_specs/` states what `xgraph validate` must print, in its leading
comment lines:

    # expect: LINE:COL: error: MESSAGE     the first line, after the file's path
    # expect: --set:N:COL: error: MESSAGE  ... or about the N-th --set argument
    # hint: TEXT                           every hint line, in order (none if absent)
    # note: TEXT                           every note line, in order (none if absent)
    # args: --set NAME=VALUE ...           extra command-line arguments

`<file>` in a hint or note stands for the spec's path. Other comment lines are free text.
"""

from __future__ import annotations

import shlex
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest

from xgraph.cli import main

CORPUS = Path(__file__).parent / "bad_specs"


@dataclass(frozen=True)
class Case:
    path: Path
    expect: str
    hints: tuple[str, ...]
    notes: tuple[str, ...]
    args: tuple[str, ...]

    def expected_stderr(self) -> list[str]:
        """The full diagnostic: the located error line, then its hints and notes."""
        first = self.expect if self.expect.startswith("--set:") else f"{self.path}:{self.expect}"
        return [
            first,
            *(f"  hint: {hint}" for hint in self.hints),
            *(f"  note: {note}" for note in self.notes),
        ]


def read_case(path: Path) -> Case:
    """The expectations in the file's leading comments (some files are not UTF-8 on purpose)."""
    fields: dict[str, list[str]] = {"expect": [], "hint": [], "note": [], "args": []}
    for line in path.read_bytes().decode("utf-8", errors="replace").splitlines():
        if not line.startswith("#"):
            break
        key, colon, value = line[1:].strip().partition(":")
        if colon and key in fields:
            fields[key].append(value.strip().replace("<file>", str(path)))
    assert len(fields["expect"]) == 1, f"{path.name} needs exactly one '# expect:' line"
    return Case(
        path=path,
        expect=fields["expect"][0],
        hints=tuple(fields["hint"]),
        notes=tuple(fields["note"]),
        args=tuple(arg for args in fields["args"] for arg in shlex.split(args)),
    )


CASES = [read_case(path) for path in sorted(CORPUS.glob("*.yaml"))]


def run_in_process(
    capsys: pytest.CaptureFixture[str], command: list[str], case: Case
) -> tuple[int, str, str]:
    code = main([*command, *case.args])
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def test_corpus_covers_the_acceptance_list() -> None:
    """Guards the corpus against shrinking: one case at least for every kind of mistake."""
    required = {
        # YAML itself
        "empty_file", "malformed_indentation", "malformed_unclosed_bracket",
        "duplicate_key_top_level", "duplicate_key_in_node", "python_object_tag",
        "top_level_list", "not_utf8", "deep_nesting", "recursive_alias",
        # the spec's structure
        "version_2", "unknown_top_level_key", "missing_nodes", "misspelt_nodes",
        "unknown_param_key", "node_without_op",
        # ops and attributes
        "unknown_op", "unknown_attribute", "missing_attribute", "attr_string_for_int",
        "negative_filters", "dropout_rate_too_large", "momentum_one", "bad_padding_string",
        "strides_with_dilation",
        # references and graph structure
        "unknown_reference", "unknown_output", "duplicate_node_name", "invalid_node_name",
        "cycle", "self_loop", "dead_node", "add_one_input",
        # shapes
        "add_different_shapes", "concat_mismatch", "window_larger_than_input",
        "conv_after_global_pool",
        # blocks and expressions
        "unknown_block", "block_uses_itself", "block_unknown_arg", "block_arg_missing",
        "repeat_negative", "expression_unknown_param", "expression_function_call",
        # parameters and --set
        "param_without_default", "set_unknown_param", "set_wrong_type", "set_not_name_value",
        "set_not_in_choices",
    }  # fmt: skip
    names = {case.path.stem for case in CASES}
    assert required <= names, f"missing cases: {sorted(required - names)}"
    assert len(CASES) >= 40


@pytest.mark.parametrize("case", CASES, ids=[case.path.stem for case in CASES])
def test_bad_spec_is_refused_with_a_located_message(
    capsys: pytest.CaptureFixture[str], case: Case
) -> None:
    code, out, err = run_in_process(capsys, ["validate", str(case.path)], case)
    assert code == 2
    assert out == ""
    assert "Traceback" not in err
    assert err.splitlines() == case.expected_stderr()


@pytest.mark.parametrize("command", ["summary", "graph"])
@pytest.mark.parametrize("name", ["unknown_op", "set_unknown_param"])
def test_every_command_reports_the_same_error(
    capsys: pytest.CaptureFixture[str], tmp_path: Path, command: str, name: str
) -> None:
    case = read_case(CORPUS / f"{name}.yaml")
    output = ["-o", str(tmp_path / "out.dot")] if command == "graph" else []
    code, out, err = run_in_process(capsys, [command, str(case.path), *output], case)
    assert (code, out) == (2, "")
    assert err.splitlines() == case.expected_stderr()
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize(
    "name", ["unknown_op", "malformed_unclosed_bracket", "python_object_tag", "set_wrong_type"]
)
def test_real_process_exits_2_without_traceback(name: str) -> None:
    case = read_case(CORPUS / f"{name}.yaml")
    result = subprocess.run(
        [sys.executable, "-m", "xgraph", "validate", str(case.path), *case.args],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 2
    assert result.stdout == ""
    assert "Traceback" not in result.stderr
    assert result.stderr.splitlines() == case.expected_stderr()


@pytest.mark.parametrize("text", ["", "\n\n", "   \n", "---\n", "# only a comment\n"])
def test_empty_file_is_refused(
    capsys: pytest.CaptureFixture[str], tmp_path: Path, text: str
) -> None:
    path = tmp_path / "empty.yaml"
    path.write_text(text)
    assert main(["validate", str(path)]) == 2
    err = capsys.readouterr().err
    assert err.startswith(f"{path}:1:1: error: the file is empty")


def test_missing_file_is_refused(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    path = tmp_path / "absent.yaml"
    assert main(["validate", str(path)]) == 2
    err = capsys.readouterr().err
    assert err == f"{path}:1:1: error: cannot read file: No such file or directory\n"
