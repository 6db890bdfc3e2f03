"""The `xgraph` command: a thin layer over `xgraph.api`.

Nothing here imports torch or tensorflow at start-up; a backend is imported only by the
commands that need it.

app.py holds the top-level parser and `main`, parser.py the parser class (did-you-mean),
common.py what the commands share; each other module defines its commands, their parsers and
handlers together: specs.py (validate, summary, graph, diff, table), language.py (ops,
schema), build.py (build, weights, codegen), parity.py, train.py.
"""

from xgraph.cli.app import main, make_parser

__all__ = ["main", "make_parser"]
