"""The gallery: every spec definition in specs/ drawn by `xgraph graph` into docs/gallery/,
linked from the README; a thin variant (efficientnet_b3.yaml: its base at other parameters)
links to its base's drawing, so the gallery holds no near-copies of megabyte drawings. A spec
changed without its drawing fails here; `XGRAPH_REGEN_GALLERY=1 pytest
tests/test_gallery.py` redraws them (Graphviz's output depends on its version: the files are
those of the Graphviz that `make test` installs)."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
import yaml
from conftest import DEFINITION_SPECS, ROOT, SPEC_FILES, CliRunner, is_thin_variant

GALLERY = ROOT / "docs" / "gallery"
SPECS = DEFINITION_SPECS


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
    for spec in SPEC_FILES:
        if is_thin_variant(spec):
            base = Path(yaml.safe_load(spec.read_text())["extends"]).stem
            assert f"(specs/{spec.name}) ([graph: {base}'s](docs/gallery/{base}.svg))" in readme
