"""The gallery: every spec in specs/ drawn by `xgraph graph` into docs/gallery/, linked from
the README. A spec changed without its drawing fails here; `XGRAPH_REGEN_GALLERY=1 pytest
tests/test_gallery.py` redraws them (Graphviz's output depends on its version: the files are
those of the Graphviz that `make test` installs)."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from conftest import ROOT, CliRunner

GALLERY = ROOT / "docs" / "gallery"
SPECS = sorted((ROOT / "specs").glob("*.yaml"))


@pytest.mark.parametrize("spec", SPECS, ids=lambda path: path.stem)
def test_the_drawing_of_every_spec_is_current(
    spec: Path, run_cli: CliRunner, tmp_path: Path, dot_program: str
) -> None:
    drawn = tmp_path / f"{spec.stem}.svg"
    assert run_cli("graph", spec, "-o", drawn).code == 0
    kept = GALLERY / f"{spec.stem}.svg"
    if os.environ.get("XGRAPH_REGEN_GALLERY"):
        kept.write_bytes(drawn.read_bytes())
    assert kept.is_file(), f"{kept} is missing: XGRAPH_REGEN_GALLERY=1 pytest {__file__}"
    assert drawn.read_bytes() == kept.read_bytes(), f"{kept} is out of date"


def test_every_drawing_belongs_to_a_spec_and_is_linked() -> None:
    assert {path.stem for path in GALLERY.glob("*.svg")} == {spec.stem for spec in SPECS}
    readme = (ROOT / "README.md").read_text()
    for spec in SPECS:
        assert f"(docs/gallery/{spec.stem}.svg)" in readme, spec.stem
