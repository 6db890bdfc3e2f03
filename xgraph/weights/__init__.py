"""Weights across frameworks: the canonical safetensors format, the slot each backend keeps a
canonical weight in (`slots`), and reading and writing any weight file format a backend
package registers (`xgraph.weight_files`)."""
