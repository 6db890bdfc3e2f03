"""Weights across frameworks: the canonical format, Keras files read with h5py, and matching
the tensors of a file to the nodes of a graph."""
