"""An example op plugin for xgraph, installed as its own package.

- `ops`: the ops' framework-neutral definitions (entry-point group `xgraph.ops`);
- `torch_rules`, `keras_rules`, `onnx_rules`: each backend's rule per op (group
  `xgraph.op_rules`), which name this package's own layers (`torch_layers`, `keras_layers`)
  where the framework has none; ONNX builds `channel_affine` from its own operators.

How to write one: docs/plugins.md.
"""
