"""Training from the spec: the `training:` recipe, data, the loop, checkpoints and scale-out.

The framework-free parts live here; each backend brings its `Trainer` (xgraph.training.trainer).
"""
