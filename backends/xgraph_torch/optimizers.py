"""torch optimizers that follow Keras 3's update rules (the recipe's reference) exactly.

Each `KerasRule` wraps one torch optimizer and sets its knobs before every step so that
torch's arithmetic is Keras's (keras/src/optimizers/{sgd,rmsprop,adam,adamw}.py):
- SGD: torch's buffer b holds velocity / -lr, Keras's velocity v carries the learning rate
  (v = m * v - lr * g). With lr_k changing, b_k = m * b_{k-1} * lr_{k-1} / lr_k + g_k keeps
  -lr_k * b_k == v_k, so the buffer is rescaled by lr_old / lr_new before a step; torch's
  Nesterov step -lr * (g + m * b) is then Keras's m * v - lr * g as well.
- RMSprop: Keras puts epsilon inside the square root and the learning rate inside the
  momentum; torch does neither, so `KerasRMSprop` below implements Keras's rule itself.
- Adam / AdamW: torch divides by sqrt(v) / sqrt(1 - b2^t) + eps', Keras by sqrt(v) + eps
  before the bias correction: eps' = eps / sqrt(1 - b2^t) makes them equal. Keras computes
  the bias corrections in float32 (beta cast to float32): the step's lr reproduces those, and
  AdamW's decay rate is rescaled to keep Keras's w -= lr * wd * w, applied first as in Keras.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable, Sequence
from typing import overload

import numpy as np
import torch

from xgraph.training.recipe import SGD, Adam, AdamW, Optimizer, RMSprop


class KerasRMSprop(torch.optim.Optimizer):
    """Keras's RMSprop: v = rho * v + (1 - rho) * g^2 (centred: minus the mean gradient
    squared), increment = lr * g / sqrt(v + eps), w -= momentum buffer of increments."""

    def __init__(
        self,
        params: Iterable[torch.Tensor],
        lr: float,
        rho: float,
        momentum: float,
        eps: float,
        centered: bool,
    ) -> None:
        defaults = {"lr": lr, "rho": rho, "momentum": momentum, "eps": eps, "centered": centered}
        super().__init__(params, defaults)

    @overload
    def step(self, closure: None = None) -> None: ...

    @overload
    def step(self, closure: Callable[[], float]) -> float: ...

    @torch.no_grad()
    def step(self, closure: Callable[[], float] | None = None) -> float | None:
        """One update; `closure`, if given, recomputes the loss first and its value is
        returned (torch.optim.Optimizer's contract)."""
        loss = None
        if closure is not None:
            with torch.enable_grad():
                loss = closure()
        for group in self.param_groups:
            rho, momentum = group["rho"], group["momentum"]
            for param in group["params"]:
                if param.grad is None:
                    continue
                grad, state = param.grad, self.state[param]
                if not state:
                    names = ["velocity"]
                    names += ["momentum"] if momentum > 0 else []
                    names += ["average_gradient"] if group["centered"] else []
                    for name in names:
                        state[name] = torch.zeros_like(param)
                velocity = state["velocity"].mul_(rho).addcmul_(grad, grad, value=1 - rho)
                if group["centered"]:
                    average = state["average_gradient"].mul_(rho).add_(grad, alpha=1 - rho)
                    denominator = velocity - average.square() + group["eps"]
                else:
                    denominator = velocity + group["eps"]
                increment = (grad * group["lr"]).div_(denominator.sqrt_())
                if momentum > 0:
                    param.sub_(state["momentum"].mul_(momentum).add_(increment))
                else:
                    param.sub_(increment)
        return loss


class KerasRule:
    """A torch optimizer plus the adjustment each step needs to follow Keras's rule."""

    def __init__(self, optimizer: torch.optim.Optimizer) -> None:
        self.optimizer = optimizer
        self.iterations = 0  # optimizer steps taken, Keras's `iterations`
        self.last_rate = math.nan  # the previous step's learning rate (SGD's rescaling)

    def prepare(self, learning_rate: float) -> None:
        """Set up the coming step (number `iterations + 1`) for this learning rate."""
        for group in self.optimizer.param_groups:
            group["lr"] = learning_rate

    def step(self, learning_rate: float, scaler: torch.amp.GradScaler | None = None) -> None:
        """One update. Under fp16 loss scaling, the scaler's: skipped (and not counted as an
        iteration) when the scaled gradients overflowed, and the scale lowered."""
        self.prepare(learning_rate)
        self.last_rate = learning_rate  # prepare() rescaled SGD's velocity to this rate
        if scaler is None:
            self.optimizer.step()
        else:
            scale = scaler.get_scale()
            scaler.step(self.optimizer)
            scaler.update()
            if scaler.get_scale() < scale:
                return
        self.iterations += 1


class SGDRule(KerasRule):
    def prepare(self, learning_rate: float) -> None:
        momentum = self.optimizer.param_groups[0]["momentum"]
        if momentum > 0 and learning_rate <= 0:
            raise ValueError("SGD with momentum in Keras's form needs a positive learning rate")
        if momentum > 0 and self.iterations and learning_rate != self.last_rate:
            scale = self.last_rate / learning_rate
            for state in self.optimizer.state.values():
                if state.get("momentum_buffer") is not None:
                    state["momentum_buffer"].mul_(scale)
        super().prepare(learning_rate)


class AdamRule(KerasRule):
    def __init__(self, optimizer: torch.optim.Optimizer, epsilon: float) -> None:
        super().__init__(optimizer)
        self.epsilon = epsilon

    def prepare(self, learning_rate: float) -> None:
        t = self.iterations + 1
        beta_1, beta_2 = self.optimizer.param_groups[0]["betas"]
        # torch's corrections (float64) and Keras's (float32 betas and arithmetic).
        torch_1, torch_2 = 1 - beta_1**t, math.sqrt(1 - beta_2**t)
        keras_1 = np.float32(1) - np.float32(beta_1) ** np.float32(t)
        keras_2 = np.sqrt(np.float32(1) - np.float32(beta_2) ** np.float32(t))
        alpha = float(np.float32(learning_rate) * keras_2 / keras_1)
        rate = alpha * torch_1 / torch_2
        for group in self.optimizer.param_groups:
            group["lr"] = rate
            group["eps"] = self.epsilon / torch_2
            # torch decays by lr * weight_decay: Keras's lr * decay at torch's rate.
            group["weight_decay"] = group.get("keras_decay", 0.0) * learning_rate / rate


def keras_optimizer(
    settings: Optimizer, params: Sequence[torch.Tensor], decayed: Sequence[torch.Tensor]
) -> KerasRule:
    """The torch optimizer for the recipe's `optimizer:` over `params`; AdamW's decoupled
    decay applies to `decayed` only (a second parameter group)."""
    if isinstance(settings, SGD):
        sgd = torch.optim.SGD(
            params,
            lr=settings.learning_rate,
            momentum=settings.momentum,
            nesterov=settings.nesterov and settings.momentum > 0,
        )
        return SGDRule(sgd)
    if isinstance(settings, RMSprop):
        rmsprop = KerasRMSprop(
            params,
            settings.learning_rate,
            settings.rho,
            settings.momentum,
            settings.epsilon,
            settings.centered,
        )
        return KerasRule(rmsprop)
    if isinstance(settings, AdamW):
        ids = {id(p) for p in decayed}
        groups = [
            {"params": [p for p in params if id(p) in ids], "keras_decay": settings.weight_decay},
            {"params": [p for p in params if id(p) not in ids], "keras_decay": 0.0},
        ]
        adamw = torch.optim.AdamW(
            [g for g in groups if g["params"]],
            lr=settings.learning_rate,
            betas=(settings.beta_1, settings.beta_2),
            eps=settings.epsilon,
            weight_decay=0.0,  # set per group and step by AdamRule.prepare
        )
        return AdamRule(adamw, settings.epsilon)
    if isinstance(settings, Adam):
        adam = torch.optim.Adam(
            params,
            lr=settings.learning_rate,
            betas=(settings.beta_1, settings.beta_2),
            eps=settings.epsilon,
        )
        return AdamRule(adam, settings.epsilon)
    raise AssertionError(f"unknown optimizer {settings!r}")
