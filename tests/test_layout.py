"""README.md's layout against the tree, both ways: every folder of the core and the backends
listed, and nothing listed (folder or module) that does not exist, so the map a new
contributor reads first stays true as packages are added, split or moved."""

from __future__ import annotations

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PACKAGES = ("xgraph", "backends")
FIX = "edit the layout block under '## Project layout' in README.md (one line per folder)"


def _layout_block() -> list[str]:
    text = (ROOT / "README.md").read_text()
    section = text.split("\n## Project layout\n", 1)[1]
    block = re.search(r"^```\n(.*?)^```", section, re.S | re.M)
    assert block, "README.md's '## Project layout' has no plain ``` block"
    return block.group(1).splitlines()


def _listed() -> list[str]:
    """The paths the layout names: the first word of each entry line, nested by its indent
    (two spaces a level); continuation lines start with more spaces than any entry."""
    paths: list[str] = []
    parents: list[str] = []
    for line in _layout_block():
        match = re.match(r"( *)(\S+)", line)
        if not match or len(match.group(1)) > 2 * len(parents):
            continue  # a continuation of the line above
        depth = len(match.group(1)) // 2
        name = match.group(2)
        del parents[depth:]
        path = "/".join([*parents, name.rstrip("/")])
        paths.append(path)
        if name.endswith("/"):
            parents.append(name.rstrip("/"))
    return paths


def _folders(top: str) -> set[str]:
    found = set()
    for path in (ROOT / top).rglob("*"):
        parts = path.relative_to(ROOT).parts
        if path.is_dir() and not any(p == "__pycache__" or p.startswith(".") for p in parts):
            found.add("/".join(parts))
    return found


def test_the_layout_lists_every_folder_of_the_core_and_the_backends() -> None:
    listed = set(_listed())
    folders = set(PACKAGES) | {folder for top in PACKAGES for folder in _folders(top)}
    missing = sorted(folders - listed)
    assert not missing, f"README.md's layout does not list {missing}: {FIX}"


def test_everything_the_layout_lists_exists() -> None:
    listed = _listed()
    assert len(listed) > 20, f"the layout block was not parsed: {listed}"
    absent = sorted(path for path in listed if not (ROOT / path).exists())
    assert not absent, f"README.md's layout lists {absent}, which do not exist: {FIX}"
