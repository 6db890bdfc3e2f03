"""Parameter and multiply-accumulate counts per node, from each op's own rules."""

from __future__ import annotations

from dataclasses import dataclass
from functools import cached_property

from xgraph.budgets import Budgets, active_budgets
from xgraph.ir.check import block_notes
from xgraph.ir.graph import Graph, Node
from xgraph.ops.base import ParamSpec, Shape, format_shape


@dataclass(frozen=True)
class NodeCounts:
    params: tuple[ParamSpec, ...]
    macs: int

    @cached_property
    def size(self) -> int:
        """Elements of all the node's weights."""
        return sum(p.size for p in self.params)

    @property
    def trainable(self) -> int:
        return sum(p.size for p in self.params if p.trainable)

    @property
    def non_trainable(self) -> int:
        return sum(p.size for p in self.params if not p.trainable)


def count_nodes(
    graph: Graph, shapes: dict[str, Shape], budgets: Budgets | None = None
) -> dict[str, NodeCounts]:
    """Each node's parameters and MACs; weights beyond the budgets are refused here, before
    any backend tries to allocate them."""
    budgets = active_budgets(budgets)
    counts: dict[str, NodeCounts] = {}
    known: dict[tuple[object, ...], NodeCounts] = {}  # a repeated block's nodes: counted once
    total = 0
    for node in graph.nodes:
        inputs = [shapes[name] for name in node.inputs]
        key = (node.op, id(node.attrs), *inputs)
        found = known.get(key)
        if found is None:
            params = tuple(node.opdef.params(node.attrs, inputs))
            for param in params:
                _check_param(node, param, budgets)
            macs = node.opdef.macs(node.attrs, inputs, shapes[node.name])
            found = known[key] = NodeCounts(params=params, macs=macs)
        counts[node.name] = found
        total += found.size
        if total > budgets.total_param_elements:
            raise budgets.exceeded(
                "total_param_elements",
                f"node '{node.name}' brings the model to {total:,} parameters, "
                f"more than {budgets.total_param_elements:,}",
                node.location,
                notes=block_notes(node),
            )
    return counts


def _check_param(node: Node, param: ParamSpec, budgets: Budgets) -> None:
    if param.size > budgets.param_elements:
        raise budgets.exceeded(
            "param_elements",
            f"node '{node.name}': weight '{param.name}' of shape {format_shape(param.shape)} "
            f"has {param.size:,} elements, more than {budgets.param_elements:,}",
            node.location,
            notes=block_notes(node),
        )
