"""Between the IR and the frameworks: the backend protocol, finding backends and their op rules
through entry points, lowering's data (`LayerCall`), and the names each backend accepts."""

from xgraph.backend.protocol import Backend
from xgraph.backend.registry import available_backends, load_backend, parse_options

__all__ = ["Backend", "available_backends", "load_backend", "parse_options"]
