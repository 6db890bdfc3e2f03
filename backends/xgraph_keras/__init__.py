"""The Keras backend: graph -> functional keras.Model of built-in layers, saved as .keras.

This package's `__init__` imports neither keras nor tensorflow: its op rules
(`xgraph_keras.rules`) and its reading of Keras weight files (`xgraph_keras.files`, with
h5py) work without them; `xgraph_keras.backend` is where TensorFlow comes in.
"""
