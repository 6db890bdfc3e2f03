"""The node names the torch backend cannot use, stated without importing torch.

The built model (`xgraph_torch.module.GraphModule`) registers each node's layer as an
attribute named after the node, as the generated code does (`self.block1_conv1`), so state
dict keys are node names. A node name may therefore be none of the attributes an `nn.Module`
already has (`training`, `forward`, `to`, `_modules`, ...), nor of GraphModule's own, nor a
Python special name (`__init__`). tests/test_build_needs.py checks these lists against a
real GraphModule, so they stay those of the installed torch.
"""

from __future__ import annotations

from xgraph.backend.names import node_name_error
from xgraph.errors import Location
from xgraph.ir.analysis import AnalysedGraph

# Public attributes and methods of torch.nn.Module (torch 2.13).
MODULE_ATTRIBUTES = frozenset(
    [
        "T_destination",
        "add_module",
        "apply",
        "bfloat16",
        "buffers",
        "call_super_init",
        "children",
        "compile",
        "cpu",
        "cuda",
        "double",
        "dump_patches",
        "eval",
        "extra_repr",
        "float",
        "forward",
        "get_buffer",
        "get_extra_state",
        "get_parameter",
        "get_submodule",
        "half",
        "ipu",
        "load_state_dict",
        "modules",
        "mtia",
        "named_buffers",
        "named_children",
        "named_modules",
        "named_parameters",
        "parameters",
        "register_backward_hook",
        "register_buffer",
        "register_forward_hook",
        "register_forward_pre_hook",
        "register_full_backward_hook",
        "register_full_backward_pre_hook",
        "register_load_state_dict_post_hook",
        "register_load_state_dict_pre_hook",
        "register_module",
        "register_parameter",
        "register_state_dict_post_hook",
        "register_state_dict_pre_hook",
        "requires_grad_",
        "set_extra_state",
        "set_submodule",
        "share_memory",
        "state_dict",
        "to",
        "to_empty",
        "train",
        "training",
        "type",
        "xpu",
        "zero_grad",
    ]
)

# Its private ones, which nn.Module's own code reads and writes (`_modules`, `_parameters`).
MODULE_PRIVATE_ATTRIBUTES = frozenset(
    [
        "_apply",
        "_backward_hooks",
        "_backward_pre_hooks",
        "_buffers",
        "_call_impl",
        "_compiled_call_impl",
        "_forward_hooks",
        "_forward_hooks_always_called",
        "_forward_hooks_with_kwargs",
        "_forward_pre_hooks",
        "_forward_pre_hooks_with_kwargs",
        "_get_backward_hooks",
        "_get_backward_pre_hooks",
        "_get_name",
        "_is_full_backward_hook",
        "_load_from_state_dict",
        "_load_state_dict_post_hooks",
        "_load_state_dict_pre_hooks",
        "_maybe_warn_non_full_backward_hook",
        "_modules",
        "_named_members",
        "_non_persistent_buffers_set",
        "_parameters",
        "_register_load_state_dict_pre_hook",
        "_register_state_dict_hook",
        "_replicate_for_data_parallel",
        "_save_to_state_dict",
        "_slow_forward",
        "_state_dict_hooks",
        "_state_dict_pre_hooks",
        "_version",
        "_wrapped_call_impl",
    ]
)

# What xgraph's GraphModule adds (backends/xgraph_torch/module.py).
GRAPH_MODULE_ATTRIBUTES = frozenset(
    {"steps", "input_names", "output_names", "channels_last", "_release"}
)

RESERVED = MODULE_ATTRIBUTES | MODULE_PRIVATE_ATTRIBUTES | GRAPH_MODULE_ATTRIBUTES


def is_special_name(name: str) -> bool:
    """`__init__`, `__dict__`: Python's own names, present on every object or reserved."""
    return len(name) > 4 and name.startswith("__") and name.endswith("__")


def reserved_reason(name: str) -> str | None:
    """Why `name` cannot name a layer attribute of a torch module, or None if it can."""
    if name in GRAPH_MODULE_ATTRIBUTES:
        return f"'{name}' is an attribute of the torch model xgraph builds (GraphModule)"
    if name in RESERVED:
        return (
            f"every node's layer becomes an attribute of a torch nn.Module, and '{name}' is "
            "one of nn.Module's own"
        )
    if is_special_name(name):
        return (
            "every node's layer becomes an attribute of a torch nn.Module, and names that "
            "begin and end with '__' are Python's own"
        )
    return None


def check_names(analysed: AnalysedGraph, name_location: Location | None = None) -> None:
    for node in analysed.graph.nodes:
        reason = reserved_reason(node.name)
        if reason is not None:
            raise node_name_error(node, "torch", reason)
