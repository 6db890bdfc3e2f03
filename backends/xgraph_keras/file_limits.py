"""How much a Keras weights file for a graph may hold: every count and size a reader checks
before it reads, bounded by the graph (a hostile file cannot make xgraph read more)."""

from __future__ import annotations

from xgraph.ir.analysis import AnalysedGraph

# A layer holds a handful of variables (a BatchNorm four); a file may list every layer,
# weighted or not, and a Keras model has a few layers a node does not make (paddings).
MOST_VARIABLES_PER_LAYER = 16
_LAYERS_PER_NODE = 4
_MORE_LAYERS = 64
# A .keras archive: config.json, metadata.json, model.weights.h5 and perhaps a few assets.
MOST_ARCHIVE_ENTRIES = 256
# Bytes a .keras may expand to: each value as float64 three times over (a model saved with
# an optimiser's state), and room for HDF5's bookkeeping and the config, per layer.
_BYTES_PER_VALUE = 24
_BYTES_PER_LAYER = 64 << 10
_BYTES_BASE = 1 << 20
# A legacy file's model_config: Keras writes about 1 KB of JSON per layer.
_CONFIG_BYTES_PER_LAYER = 16 << 10


def most_layers(analysed: AnalysedGraph) -> int:
    return _LAYERS_PER_NODE * len(analysed.graph) + _MORE_LAYERS


def most_config_bytes(analysed: AnalysedGraph) -> int:
    return _CONFIG_BYTES_PER_LAYER * most_layers(analysed) + _BYTES_BASE


def most_strings(analysed: AnalysedGraph) -> int:
    """Variable-length strings a file may hold: a layer's name and its weights' names for
    each layer, and a few of Keras's own (versions, the model's config)."""
    return (MOST_VARIABLES_PER_LAYER + 1) * most_layers(analysed) + _MORE_LAYERS


def archive_limit(analysed: AnalysedGraph) -> int:
    return (
        _BYTES_PER_VALUE * analysed.total_params
        + _BYTES_PER_LAYER * most_layers(analysed)
        + _BYTES_BASE
    )
