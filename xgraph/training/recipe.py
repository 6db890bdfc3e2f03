"""The `training:` section of a spec: one recipe that both backends follow to the same numbers.

Every convention is Keras's wherever the two frameworks differ (the paper trained in
TensorFlow): `weight_decay` is L2 added to the loss, as Keras's `kernel_regularizer=L2(wd)`
(`wd * sum(kernel ** 2)`, on kernels only); momentum is Keras's velocity, with the learning rate
inside it; RMSprop's and Adam's epsilon are where Keras puts them. The torch backend adapts
torch's optimizers to these rules (xgraph_torch.training).
"""

from __future__ import annotations

import math
from typing import Annotated, Any, Literal, get_args

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from xgraph.ir.analysis import AnalysedGraph

Rate = Annotated[float, Field(gt=0)]
Fraction = Annotated[float, Field(ge=0, lt=1)]


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True, frozen=True)


class SGD(_Strict):
    """Keras's SGD: velocity = momentum * velocity - lr * grad; w += velocity (Nesterov:
    w += momentum * velocity - lr * grad)."""

    name: Literal["sgd"]
    learning_rate: Rate = 0.01
    momentum: Fraction = 0.0
    nesterov: bool = False


class RMSprop(_Strict):
    """Keras's RMSprop: the mean square starts at 0 and epsilon sits inside the square root."""

    name: Literal["rmsprop"]
    learning_rate: Rate = 0.001
    rho: Fraction = 0.9
    momentum: Fraction = 0.0
    epsilon: Rate = 1e-7
    centered: bool = False


class Adam(_Strict):
    """Keras's Adam: epsilon added to the square root of the uncorrected second moment."""

    name: Literal["adam"]
    learning_rate: Rate = 0.001
    beta_1: Fraction = 0.9
    beta_2: Fraction = 0.999
    epsilon: Rate = 1e-7


class AdamW(_Strict):
    """Adam with decoupled weight decay, on kernels only: w -= lr * weight_decay * w."""

    name: Literal["adamw"]
    learning_rate: Rate = 0.001
    beta_1: Fraction = 0.9
    beta_2: Fraction = 0.999
    epsilon: Rate = 1e-7
    weight_decay: Annotated[float, Field(ge=0)] = 0.004


Optimizer = Annotated[SGD | RMSprop | Adam | AdamW, Field(discriminator="name")]
OPTIMIZERS: tuple[type[_Strict], ...] = (SGD, RMSprop, Adam, AdamW)


class Constant(_Strict):
    """The optimizer's learning rate throughout (after the warmup)."""

    name: Literal["constant"]
    warmup_epochs: Annotated[float, Field(ge=0)] = 0.0


class StepDecay(_Strict):
    """lr * decay_rate ** floor(epochs done / every_epochs), counted in steps (Keras's
    ExponentialDecay with staircase=True)."""

    name: Literal["step"]
    decay_rate: Annotated[float, Field(gt=0, le=1)] = 0.94
    every_epochs: Annotated[float, Field(gt=0)] = 2.0
    warmup_epochs: Annotated[float, Field(ge=0)] = 0.0


class Cosine(_Strict):
    """Cosine annealing from lr to alpha * lr over the steps after the warmup (Keras's
    CosineDecay)."""

    name: Literal["cosine"]
    alpha: Annotated[float, Field(ge=0, le=1)] = 0.0
    warmup_epochs: Annotated[float, Field(ge=0)] = 0.0


Schedule = Annotated[Constant | StepDecay | Cosine, Field(discriminator="name")]
SCHEDULES: tuple[type[_Strict], ...] = (Constant, StepDecay, Cosine)


def named(models: tuple[type[_Strict], ...]) -> dict[str, type[_Strict]]:
    """Each model by the name a spec gives it (its `name` literal): `{"sgd": SGD, ...}`."""
    return {get_args(model.model_fields["name"].annotation)[0]: model for model in models}


Range = Annotated[list[Annotated[float, Field(gt=0)]], Field(min_length=2, max_length=2)]


class RandomResizedCrop(_Strict):
    """Inception's crop (Szegedy et al., 2015, as torchvision's RandomResizedCrop): a box of
    `scale` of the image's area and `ratio` (width / height, drawn log-uniformly), resized to
    the spec's input. After 10 draws that do not fit, the largest centred box of an
    allowed ratio."""

    scale: Range = Field(default_factory=lambda: [0.08, 1.0])
    ratio: Range = Field(default_factory=lambda: [3 / 4, 4 / 3])

    @model_validator(mode="after")
    def _ordered(self) -> RandomResizedCrop:
        for name in ("scale", "ratio"):
            low, high = getattr(self, name)
            if low > high:
                raise ValueError(f"{name} [{low}, {high}] is not [low, high]")
        if self.scale[1] > 1:
            raise ValueError(f"scale {self.scale[1]} is more than the whole image (1)")
        if not all(map(math.isfinite, self.ratio)):
            raise ValueError("ratio must be finite")
        return self


class Augmentation(_Strict):
    """Random changes to each training image, drawn from (seed, epoch, image) alone: a resumed
    run, any number of loading workers, and both backends see the same pixels. Validation
    and `xgraph evaluate` see the image resized, never augmented."""

    random_resized_crop: RandomResizedCrop | None = None
    horizontal_flip: bool = False

    @field_validator("random_resized_crop", mode="before")
    @classmethod
    def _switch(cls, value: Any) -> Any:
        """`random_resized_crop: true` is the crop with its defaults; `false`, none."""
        if value is True:
            return {}
        return None if value is False else value

    @property
    def enabled(self) -> bool:
        return self.random_resized_crop is not None or self.horizontal_flip


class TrainingRecipe(_Strict):
    """How a spec's model is trained: `xgraph train` reads it, `--set training.KEY=VALUE`
    changes it."""

    optimizer: Optimizer = Field(
        default_factory=lambda: SGD(name="sgd", learning_rate=0.01, momentum=0.9),
        description="sgd, rmsprop, adam or adamw, with its settings.",
    )
    schedule: Schedule = Field(
        default_factory=lambda: Constant(name="constant"),
        description="constant, step or cosine; each with an optional linear warmup.",
    )
    weight_decay: Annotated[float, Field(ge=0)] = Field(
        default=0.0,
        description="L2 in Keras's sense: weight_decay * sum(kernel ** 2) joins the loss.",
    )
    label_smoothing: Fraction = 0.0
    batch_size: Annotated[int, Field(ge=1)] = Field(default=32, description="The global batch.")
    epochs: Annotated[int, Field(ge=1)] = 10
    loss: Literal["categorical_crossentropy"] = "categorical_crossentropy"
    validation_split: Fraction = Field(
        default=0.1, description="The share of each class held out for validation."
    )
    seed: Annotated[int, Field(ge=0)] = Field(
        default=0,
        description="Initial weights, the split, the order of batches, dropout masks and "
        "augmentation.",
    )
    augment: Augmentation = Field(
        default_factory=Augmentation,
        description="random_resized_crop and horizontal_flip of the training images.",
    )


DEFAULT_RECIPE = TrainingRecipe()


def recipe_of(analysed: AnalysedGraph) -> TrainingRecipe:
    """How `xgraph train` trains a model: its spec's `training:` section with the defaults
    (compiled beside the graph by xgraph.training.section), or the defaults alone."""
    recipe = analysed.sections.get("training", DEFAULT_RECIPE)
    assert isinstance(recipe, TrainingRecipe), f"the training section is a {type(recipe)}"
    return recipe
