"""The plugin's own suite: every example of every op it provides, built in every installed
backend and compared across them (xgraph.testing)."""

import pytest

from xgraph.testing import check_op_example, op_examples


@pytest.mark.parametrize(("op", "example"), op_examples("xgraph-example-ops"))
def test_op_example(op: str, example: str) -> None:
    check_op_example(op, example)
