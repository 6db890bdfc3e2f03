"""Weights across frameworks: the canonical safetensors format, and reading and writing any
weight file format a backend package registers (`xgraph.weight_files`)."""
