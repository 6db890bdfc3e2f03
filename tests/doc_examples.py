"""The examples of the docs, read from their Markdown and checked against what xgraph does.

In a ```console block, a line starting with `$ ` is a command (`NAME=VALUE` words before
`xgraph` set the environment); the lines up to the next command are its output, standard
output and standard error as a terminal shows them. A last line `[N]` is a non-zero exit
status (none: 0). A line `...` stands for any number of lines, and `<...>` for any text
within a line (timings, paths). A ```yaml block right after `<!-- file: PATH -->` shows that
file, which must be equal to it. Other ```yaml blocks that are whole specs are validated;
smaller ones must be YAML, and the nodes among them must fit their op. ```python blocks run,
```toml blocks parse.
"""

from __future__ import annotations

import difflib
import os
import re
import shlex
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
DOCS = [
    ROOT / "README.md",
    *sorted((ROOT / "docs").glob("*.md")),
    *sorted(ROOT.glob("examples/*/README.md")),
]

_FENCE = re.compile(r"^```(\w*)\n(.*?)^```", re.S | re.M)
_FILE_MARK = re.compile(r"<!-- file: (\S+) -->\s*$")
_STATUS = re.compile(r"^\[(\d+)\]$")


@dataclass
class Command:
    line: str  # without the `$ `
    expected: list[str] = field(default_factory=list)
    status: int = 0


@dataclass
class Block:
    """One fenced block of a Markdown file; `where` is FILE:LINE of its first line."""

    doc: Path
    line: int
    lang: str
    body: str
    shows_file: str | None = None

    @property
    def where(self) -> str:
        return f"{self.doc.relative_to(ROOT)}:{self.line}"

    def commands(self) -> list[Command]:
        commands: list[Command] = []
        for line in self.body.splitlines():
            if line.startswith("$ "):
                commands.append(Command(line[2:]))
            elif commands:
                commands[-1].expected.append(line.rstrip())
        for command in commands:
            while command.expected and not command.expected[-1]:
                command.expected.pop()
            if command.expected and (status := _STATUS.match(command.expected[-1])):
                command.status = int(status.group(1))
                command.expected.pop()
        return commands


def blocks(doc: Path) -> list[Block]:
    text = doc.read_text()
    found = []
    for match in _FENCE.finditer(text):
        line = text.count("\n", 0, match.start()) + 1
        before = text[: match.start()].rstrip("\n").rsplit("\n", 1)[-1]
        mark = _FILE_MARK.match(before)
        found.append(
            Block(doc, line, match.group(1), match.group(2), mark.group(1) if mark else None)
        )
    return found


def all_blocks() -> list[Block]:
    return [block for doc in DOCS for block in blocks(doc)]


def output_pattern(expected: list[str]) -> re.Pattern[str]:
    """`...` lines match any lines, `<...>` any text within a line; the rest literally."""
    parts = []
    for line in expected:
        if line == "...":
            parts.append(r"(?:[^\n]*\n)*?")
        else:
            parts.append(".*?".join(re.escape(piece) for piece in line.split("<...>")) + r"\n")
    return re.compile("".join(parts))


def normalised(output: str) -> str:
    lines = [line.rstrip() for line in output.splitlines()]
    while lines and not lines[-1]:
        lines.pop()
    return "".join(line + "\n" for line in lines)


def run_command(command: Command, cwd: Path) -> tuple[int, str]:
    """Run one documented command as a shell would, xgraph being this environment's."""
    words = shlex.split(command.line)
    env = dict(os.environ)
    while words and re.fullmatch(r"[A-Z_]+=.*", words[0]):
        name, _, value = words.pop(0).partition("=")
        env[name] = value
    assert words and words[0] == "xgraph", f"not an xgraph command: {command.line}"
    # A shell expands `specs/*.yaml` in sorted order; so does this.
    words = [
        found
        for word in words
        for found in (
            sorted(str(p.relative_to(cwd)) for p in cwd.glob(word)) if "*" in word else [word]
        )
    ]
    env.setdefault("COLUMNS", "100")
    result = subprocess.run(
        [sys.executable, "-m", "xgraph", *words[1:]],
        cwd=cwd,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        check=False,
    )
    return result.returncode, result.stdout


def check_command(command: Command, cwd: Path) -> None:
    """Run the command and compare its exit status and output with the documented ones."""
    status, output = run_command(command, cwd)
    actual = normalised(output)
    assert status == command.status, (
        f"$ {command.line}\nexit status {status}, documented {command.status}\n{actual}"
    )
    if not output_pattern(command.expected).fullmatch(actual):
        diff = difflib.unified_diff(
            command.expected, actual.splitlines(), "documented", "actual", lineterm="", n=1
        )
        raise AssertionError(f"$ {command.line}\n" + "\n".join(list(diff)[:60]))
