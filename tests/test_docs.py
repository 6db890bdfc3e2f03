"""Every example in README.md, docs/ and the examples' READMEs, run and compared with what
the docs show (the conventions: tests/doc_examples.py). A doc edit that breaks an example,
or a change of behaviour that the docs do not follow, fails here."""

from __future__ import annotations

import subprocess
import sys
import tomllib
from pathlib import Path

import pytest
import yaml
from doc_examples import ROOT, Block, Command, all_blocks, check_command, output_pattern

from xgraph.api import load, loads
from xgraph.ops import REGISTRY

BLOCKS = [block for block in all_blocks() if block.lang in ("console", "yaml", "python", "toml")]


@pytest.fixture
def workspace(tmp_path: Path) -> Path:
    """A folder where the repository's specs and examples are at hand and outputs land."""
    for name in ("specs", "examples"):
        (tmp_path / name).symlink_to(ROOT / name)
    return tmp_path


def _spec_like(data: object) -> bool:
    return isinstance(data, dict) and "xgraph" in data


def _check_node_items(data: object, where: str) -> None:
    """Nodes shown on their own: the op exists and literal attributes fit it."""
    items = data if isinstance(data, list) else []
    for item in items:
        if not (isinstance(item, dict) and "op" in item):
            continue
        assert item["op"] in REGISTRY, f"{where}: unknown op {item['op']!r}"
        attrs = {
            key: value
            for key, value in item.items()
            if key not in ("op", "name", "inputs", "when") and "${" not in str(value)
        }
        if not any("${" in str(value) for value in item.values()):
            REGISTRY[item["op"]].attrs.model_validate(attrs)


@pytest.mark.parametrize("block", BLOCKS, ids=lambda block: block.where)
def test_documented_example(block: Block, workspace: Path) -> None:
    if block.lang == "console":
        assert block.commands(), f"{block.where}: a console block without a '$ ' command"
        for command in block.commands():
            check_command(command, workspace)
    elif block.lang == "yaml":
        if block.shows_file is not None:
            shown = ROOT / block.shows_file
            assert block.body == shown.read_text(), f"{block.where} differs from {shown}"
        data = yaml.safe_load(block.body)
        if _spec_like(data) and block.shows_file is not None:
            load(ROOT / block.shows_file)  # a file shown: its extends beside the file
        elif _spec_like(data):
            loads(block.body, file=f"{block.doc}:{block.line}")  # extends: beside the doc
        else:
            _check_node_items(data, block.where)
    elif block.lang == "python":
        result = subprocess.run(
            [sys.executable, "-c", block.body], cwd=ROOT, capture_output=True, text=True
        )
        assert result.returncode == 0, f"{block.where}:\n{result.stderr}"
    else:
        tomllib.loads(block.body)


def test_docs_have_examples_of_each_kind() -> None:
    kinds = {block.lang for block in BLOCKS}
    assert {"console", "yaml", "python", "toml"} <= kinds
    assert sum(len(b.commands()) for b in BLOCKS if b.lang == "console") >= 20


def test_the_checker_fails_when_a_documented_output_is_edited(workspace: Path) -> None:
    """The check is real: the README's first command, with one output line changed or its
    exit status changed, no longer passes."""
    block = next(
        b for b in BLOCKS if b.lang == "console" and b.doc.name == "README.md" and b.commands()
    )
    command = block.commands()[0]
    check_command(command, workspace)  # as documented: passes
    edited = Command(command.line, list(command.expected), command.status)
    edited.expected[0] = edited.expected[0].replace("error", "warning")
    with pytest.raises(AssertionError, match="documented"):
        check_command(edited, workspace)
    with pytest.raises(AssertionError, match="exit status"):
        check_command(Command(command.line, command.expected, 0), workspace)


def test_placeholders_match_what_they_should_and_no_more() -> None:
    pattern = output_pattern(["wrote <...> (torch)", "...", "  time: <...> s"])
    assert pattern.fullmatch("wrote m.pt2 (torch)\n  a\n  b\n  time: 1.5 s\n")
    assert pattern.fullmatch("wrote m.pt2 (torch)\n  time: 0.2 s\n")
    assert not pattern.fullmatch("wrote m.pt2 (keras)\n  time: 0.2 s\n")
    assert not pattern.fullmatch("wrote m.pt2 (torch)\n  time: 0.2 s\nextra\n")
