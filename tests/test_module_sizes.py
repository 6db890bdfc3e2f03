"""No module of the core or the backends over 400 lines: a module that grows past it holds
more than one job, and is split along them (the layout in README.md names the jobs)."""

from __future__ import annotations

from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
LIMIT = 400
FOLDERS = ("xgraph", "backends")


def _line_count(path: Path) -> int:
    with path.open("rb") as lines:
        return sum(1 for _ in lines)


def test_no_module_is_longer_than_the_limit() -> None:
    modules = [path for folder in FOLDERS for path in sorted((ROOT / folder).rglob("*.py"))]
    assert len(modules) > 50, "the modules were not found: is ROOT the repository?"
    sizes = {path.relative_to(ROOT).as_posix(): _line_count(path) for path in modules}
    over = {path: lines for path, lines in sizes.items() if lines > LIMIT}
    assert not over, f"modules over {LIMIT} lines (split each along its jobs):\n" + "\n".join(
        f"  {path}: {lines} lines" for path, lines in sorted(over.items())
    )
