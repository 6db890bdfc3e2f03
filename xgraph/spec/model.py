"""The spec language v1 as pydantic models: the structure of a spec before expansion.

Values may still hold `${...}` expressions here; op attributes are checked after expansion,
against the op's own attribute model (`xgraph.ops`).
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Discriminator, Field, Tag, model_validator

from xgraph.ops.initializers import DEFAULT_INITIALIZER, KERNEL_INITIALIZERS

SPEC_VERSION = 1

Expression = Annotated[
    str, Field(pattern=r"^\s*\$\{.*\}\s*$", description="A `${...}` expression.")
]
Reference = Annotated[str, Field(description="A node name (may contain `${...}`).")]
Inputs = Reference | list[Reference]


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True)


class ParamDecl(Strict):
    """A spec (or block) parameter: overridable with `--set NAME=VALUE`."""

    type: Literal["int", "float", "bool", "str", "shape"]
    default: Any = Field(
        None, description="Value when not set; omitted: the parameter is required."
    )
    choices: list[Any] | None = None
    min: float | list[int] | None = Field(
        None, description="Least value; for a shape, a list: the least size of each dimension."
    )
    max: float | list[int] | None = Field(
        None, description="Greatest value; for a shape, the greatest size of each dimension."
    )
    doc: str = ""

    @model_validator(mode="after")
    def _bounds_fit_the_type(self) -> ParamDecl:
        for bound in (self.min, self.max):
            if bound is None:
                continue
            if isinstance(bound, list) and self.type != "shape":
                raise ValueError("a list as 'min' or 'max' bounds a shape parameter's dimensions")
            if not isinstance(bound, list) and self.type == "shape":
                raise ValueError(
                    "'min' and 'max' of a shape parameter are lists of sizes, such as [71, 71]"
                )
            if not isinstance(bound, list) and self.type not in ("int", "float"):
                raise ValueError(
                    f"'min' and 'max' apply to int and float parameters, not {self.type}"
                )
        return self


class InputDecl(Strict):
    """A model input: its name and the shape of one example, (H, W, C), batch implicit."""

    name: str
    shape: list[int | Expression] | Expression


class NodeItem(BaseModel):
    """One node: an op, its attributes (the other keys) and where its inputs come from."""

    model_config = ConfigDict(extra="allow", strict=True)

    op: str
    name: str | None = Field(None, description="Unique node name; default: the op name, numbered.")
    inputs: Inputs | None = Field(None, description="Default: the node before this one.")
    when: bool | Expression | None = Field(None, description="Include the node only if true.")


class UseItem(Strict):
    """An instance of a block, optionally repeated; `${name}` and `${input}` are bound inside."""

    use: str
    name: str = Field(description="Instance name, bound as `${name}` inside the block.")
    inputs: Inputs | None = None
    args: dict[str, Any] = Field(default_factory=dict)
    repeat: Annotated[int, Field(ge=0)] | Expression | None = Field(
        None, description="Instantiate the block this many times in a chain."
    )
    index: str = Field("i", description="Name bound to the repetition index, from 0.")
    when: bool | Expression | None = None


def _item_kind(value: Any) -> str | None:
    if isinstance(value, dict):
        if "use" in value:
            return "use"
        if "op" in value:
            return "node"
    return None


Item = Annotated[
    Annotated[NodeItem, Tag("node")] | Annotated[UseItem, Tag("use")],
    Discriminator(_item_kind),
]


class BlockDecl(Strict):
    """A reusable, parameterised sequence of nodes."""

    params: dict[str, ParamDecl] = Field(default_factory=dict)
    nodes: Annotated[list[Item], Field(min_length=1)]
    doc: str = ""


class Spec(Strict):
    """A whole spec file."""

    xgraph: Literal[1] = Field(description="Spec language version.")
    name: str
    description: str = ""
    params: dict[str, ParamDecl] = Field(default_factory=dict)
    inputs: Annotated[list[InputDecl], Field(min_length=1)]
    blocks: dict[str, BlockDecl] = Field(default_factory=dict)
    defaults: dict[str, dict[str, Any]] = Field(
        default_factory=dict,
        description="Per op, attribute values for every node of that op (blocks' included) "
        "that does not set the attribute itself; values may hold `${...}` expressions over "
        "the spec's params.",
    )
    nodes: Annotated[list[Item], Field(min_length=1)]
    outputs: Annotated[list[Reference], Field(min_length=1)] | None = Field(
        None, description="Default: the last node."
    )
    initializer: Literal[KERNEL_INITIALIZERS] = Field(  # type: ignore[valid-type]
        DEFAULT_INITIALIZER,
        description="Kernel initialiser of both backends (biases 0, BN gamma 1, beta 0).",
    )
    training: dict[str, Any] | None = Field(
        None,
        description="How `xgraph train` trains the model (xgraph.training.recipe); values may "
        "hold `${...}` expressions over the params.",
    )
    search: dict[str, Any] | None = Field(
        None,
        description="What `xgraph tune` searches: per parameter or training.* setting, a "
        "choice or a range (xgraph.training.search).",
    )
