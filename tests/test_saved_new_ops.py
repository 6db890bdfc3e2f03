"""Models with ConvNeXt's ops saved and loaded back: the `.pt2` runs with torch alone, and the
`.keras`, which holds xgraph's own LayerScale layer, loads once `xgraph_keras.layers` is
imported (as `xgraph predict` and the keras backend's `load` do) and computes what the build
computes."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from xgraph.api import loads
from xgraph.backend import load_backend
from xgraph.weights.initial import random_weights

SPEC = """\
xgraph: 1
name: convnext_ops
inputs: [{name: image, shape: [8, 8, 3]}]
nodes:
  - {name: stem, op: conv2d, filters: 6, kernel_size: 2, strides: 2}
  - {name: ln, op: layer_norm, epsilon: 1.0e-6}
  - {name: pw, op: dense, units: 12, activation: gelu}
  - {name: pw2, op: dense, units: 6}
  - {name: scale, op: layer_scale}
  - {name: drop, op: stochastic_depth, rate: 0.2}
  - {name: add, op: add, inputs: [ln, drop]}
  - {name: gap, op: global_avg_pool}
"""


def test_saved_models_load_and_compute_the_build(tmp_path: Path) -> None:
    analysed = loads(SPEC)
    weights = random_weights(analysed, seed=3)
    x = np.random.default_rng(0).standard_normal((2, 8, 8, 3)).astype(np.float32)
    for name, suffix in (("torch", ".pt2"), ("keras", ".keras")):
        backend = load_backend(name)
        model = backend.build(analysed, weights)
        expected = backend.predict(model, [x])[0]
        path = tmp_path / f"convnext_ops{suffix}"
        backend.save(model, analysed, path)
        loaded = backend.load(path)
        got = backend.predict(loaded, [x])[0]
        np.testing.assert_allclose(got, expected, rtol=1e-6, atol=1e-7, err_msg=name)
        assert np.abs(expected).max() > 0.1  # the branch LayerScale scales counts
