"""One-op graphs for every op in the registry, built-in and plugin, from each op's own
examples (`OpDef.examples`): a new op is covered by the backend tests by defining them. The
cases are xgraph.testing's, the same a plugin's own suite uses."""

from __future__ import annotations

from xgraph.testing import one_op_spec, op_examples

__all__ = ["case_ids", "one_op_spec"]


def case_ids() -> list[tuple[str, str]]:
    """(op, example id) for every example of every registered op."""
    return op_examples()
