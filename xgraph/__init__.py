"""xgraph: one YAML spec of a convolutional network, compiled to PyTorch and Keras models."""

__version__ = "0.1.0"
