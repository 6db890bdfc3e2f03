"""The learning rate of each step, computed once here for both backends: they are handed the
number, so a schedule cannot differ between frameworks."""

from __future__ import annotations

import math

from xgraph.training.recipe import Constant, Cosine, StepDecay, TrainingRecipe


def learning_rate(recipe: TrainingRecipe, step: int, steps_per_epoch: int) -> float:
    """The learning rate of optimizer step `step` (from 0) of a run of `recipe.epochs` epochs.

    A warmup rises linearly to the base rate, reaching it at its last step; the schedule then
    counts its steps from the end of the warmup."""
    base = recipe.optimizer.learning_rate
    schedule = recipe.schedule
    warmup = round(schedule.warmup_epochs * steps_per_epoch)
    if step < warmup:
        return base * (step + 1) / warmup
    done = step - warmup
    if isinstance(schedule, Constant):
        return base
    if isinstance(schedule, StepDecay):
        every = max(1, round(schedule.every_epochs * steps_per_epoch))
        return base * schedule.decay_rate ** (done // every)
    if isinstance(schedule, Cosine):
        total = max(1, recipe.epochs * steps_per_epoch - warmup)
        progress = min(done, total) / total
        cosine = 0.5 * (1 + math.cos(math.pi * progress))
        return base * (schedule.alpha + (1 - schedule.alpha) * cosine)
    raise AssertionError(f"unknown schedule {schedule!r}")
