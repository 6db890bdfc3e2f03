"""The `training:` section: validated and located like every other section, reachable by
`--set training.KEY=VALUE` and by `extends`, and the learning rate each schedule gives."""

from __future__ import annotations

import math
from pathlib import Path

import pytest

from xgraph.api import load, loads
from xgraph.errors import SpecError
from xgraph.training.recipe import SGD, Adam, Cosine, RMSprop, StepDecay, TrainingRecipe, recipe_of
from xgraph.training.schedule import learning_rate

ROOT = Path(__file__).resolve().parent.parent
SPEC = """\
xgraph: 1
name: small
params:
  rate: {type: float, default: 0.05}
inputs: [{name: image, shape: [8, 8, 3]}]
nodes:
  - {name: gap, op: global_avg_pool}
  - {name: logits, op: dense, units: 3}
"""


def _error(text: str, overrides: list[str] | None = None) -> SpecError:
    with pytest.raises(SpecError) as caught:
        loads(text, overrides or [], file="spec.yaml")
    return caught.value


def test_xception_carries_the_papers_imagenet_recipe() -> None:
    recipe = recipe_of(load(ROOT / "specs/xception.yaml"))
    assert recipe.optimizer == SGD(name="sgd", learning_rate=0.045, momentum=0.9)
    assert recipe.schedule == StepDecay(name="step", decay_rate=0.94, every_epochs=2)
    assert (recipe.weight_decay, recipe.batch_size) == (1e-5, 128)


def test_a_spec_without_the_section_trains_by_the_defaults() -> None:
    assert recipe_of(loads(SPEC)) == TrainingRecipe()


def test_values_may_be_expressions_over_the_params() -> None:
    text = SPEC + "training: {optimizer: {name: sgd, learning_rate: '${rate * 2}'}}\n"
    assert recipe_of(loads(text)).optimizer.learning_rate == pytest.approx(0.1)
    assert recipe_of(loads(text, ["rate=0.5"])).optimizer.learning_rate == pytest.approx(1.0)


def test_set_reaches_every_setting_and_a_new_optimizer_starts_from_its_defaults() -> None:
    text = SPEC + "training: {optimizer: {name: sgd, momentum: 0.9}, batch_size: 8}\n"
    recipe = recipe_of(
        loads(
            text,
            [
                "training.batch_size=16",
                "training.optimizer.learning_rate=0.3",
                "training.schedule=cosine",
            ],
        )
    )
    assert recipe.batch_size == 16
    assert recipe.optimizer == SGD(name="sgd", learning_rate=0.3, momentum=0.9)
    assert recipe.schedule == Cosine(name="cosine")
    assert recipe_of(loads(text, ["training.optimizer=rmsprop"])).optimizer == RMSprop(
        name="rmsprop"
    )
    changed = loads(SPEC, ["training.optimizer.name=adam", "training.optimizer.beta_1=0.8"])
    assert recipe_of(changed).optimizer == Adam(name="adam", beta_1=0.8)


@pytest.mark.parametrize(
    ("section", "expected"),
    [
        (
            "training: {optimizer: {name: sgd, lerning_rate: 0.1}}",
            "spec.yaml:9:35: error: training: optimizer 'sgd' has no setting 'lerning_rate'",
        ),
        (
            "training: {optimizer: {name: adamm}}",
            "spec.yaml:9:30: error: training: unknown optimizer 'adamm'",
        ),
        ("training: {schedule: cosin}", "spec.yaml:9:22: error: training: unknown schedule"),
        ("training: {batch_size: 0}", "spec.yaml:9:24: error: training: 'batch_size'"),
        ("training: {epochs: 2.5}", "spec.yaml:9:20: error: training: 'epochs'"),
        ("training: {bach_size: 2}", "spec.yaml:9:12: error: training: unknown key 'bach_size'"),
        ("training: {optimizer: {learning_rate: 1}}", "training: the optimizer needs a 'name'"),
        ("training: [1]", "spec.yaml:9:11: error: 'training'"),
        ("training: {label_smoothing: 1.5}", "spec.yaml:9:29: error: training: 'label_smoothing'"),
    ],
)
def test_a_bad_section_is_a_located_error(section: str, expected: str) -> None:
    assert expected in _error(SPEC + section + "\n").format()


def test_hints_name_the_nearest_setting() -> None:
    error = _error(SPEC + "training: {optimizer: {name: sgd, lerning_rate: 0.1}}\n")
    assert error.hint == "did you mean 'learning_rate'?"
    assert _error(SPEC + "training: {optimizer: {name: adamm}}\n").hint == "did you mean 'adam'?"


@pytest.mark.parametrize(
    ("overrides", "expected"),
    [
        (["training.optimizer.lerning_rate=0.1"], "--set:1:33: error: training: optimizer 'sgd'"),
        (["training.optimizr=adam"], "--set:1:1: error: unknown training setting 'optimizr'"),
        (["training.batch_size=-1"], "--set:1:21: error: training: 'batch_size'"),
        (
            ["training.epochs=1", "training.epochs=2"],
            "--set:2:1: error: --set sets 'training.epochs' twice",
        ),
        (["training..epochs=1"], "--set:1:1: error: --set 'training..epochs' is not a key"),
    ],
)
def test_a_bad_set_is_located_at_the_set(overrides: list[str], expected: str) -> None:
    assert expected in _error(SPEC, overrides).format()


def test_extends_merges_the_section_setting_by_setting(tmp_path: Path) -> None:
    (tmp_path / "base.yaml").write_text(
        SPEC + "training: {optimizer: {name: sgd, momentum: 0.9}, epochs: 7}\n"
    )
    (tmp_path / "variant.yaml").write_text(
        "xgraph: 1\nextends: base.yaml\nname: variant\n"
        "training: {optimizer: {learning_rate: 0.2}, batch_size: 4}\n"
    )
    recipe = recipe_of(load(tmp_path / "variant.yaml"))
    assert recipe.optimizer == SGD(name="sgd", learning_rate=0.2, momentum=0.9)
    assert (recipe.epochs, recipe.batch_size) == (7, 4)
    (tmp_path / "other.yaml").write_text(
        "xgraph: 1\nextends: base.yaml\nname: other\ntraining: {optimizer: {name: adam}}\n"
    )
    assert recipe_of(load(tmp_path / "other.yaml")).optimizer == Adam(name="adam")
    (tmp_path / "bad.yaml").write_text(
        "xgraph: 1\nextends: base.yaml\nname: bad\ntraining: {optimizer: {lr: 0.2}}\n"
    )
    with pytest.raises(SpecError, match=r"bad.yaml:4:24: error: training: optimizer 'sgd'"):
        load(tmp_path / "bad.yaml")


def _recipe(schedule: dict, epochs: int = 4) -> TrainingRecipe:
    return TrainingRecipe.model_validate(
        {"optimizer": {"name": "sgd", "learning_rate": 1.0}, "schedule": schedule, "epochs": epochs}
    )


def test_each_schedule_gives_its_documented_rate() -> None:
    step = _recipe({"name": "step", "decay_rate": 0.5, "every_epochs": 1})
    assert [learning_rate(step, s, 3) for s in range(7)] == [1, 1, 1, 0.5, 0.5, 0.5, 0.25]
    warm = _recipe({"name": "constant", "warmup_epochs": 1})
    assert [learning_rate(warm, s, 4) for s in range(6)] == [0.25, 0.5, 0.75, 1, 1, 1]
    cosine = _recipe({"name": "cosine", "alpha": 0.1, "warmup_epochs": 1}, epochs=3)
    rates = [learning_rate(cosine, s, 2) for s in range(6)]
    assert rates[:2] == [0.5, 1.0]
    assert rates[2:] == pytest.approx(
        [0.1 + 0.9 * 0.5 * (1 + math.cos(math.pi * k / 4)) for k in range(4)]
    )
    assert learning_rate(cosine, 100, 2) == pytest.approx(0.1)
