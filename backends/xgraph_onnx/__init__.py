"""The ONNX backend: graph -> an ONNX model emitted directly from the analysed graph (no torch
or Keras export), run with ONNX Runtime.

This package's `__init__` imports nothing heavy: its op rules (`xgraph_onnx.rules`) describe
ONNX nodes as plain data; `xgraph_onnx.backend` is where onnx and onnxruntime come in.
"""
