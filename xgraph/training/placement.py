"""Where a run computes and in what precision: `--device` and `--precision`, parsed here
without a framework; each backend's trainer checks them against what its device can do."""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Literal, get_args

from xgraph.errors import SpecError

Precision = Literal["fp32", "bf16-mixed", "fp16-mixed"]
PRECISIONS: tuple[str, ...] = get_args(Precision)
DEVICE_FORMS = "auto, cpu, cuda, cuda:N or mps"
_DEVICE = re.compile(r"auto|cpu|mps|cuda(:\d+)?")


@dataclass(frozen=True)
class Placement:
    """The device a trainer runs on (`auto`: a GPU when the framework sees one) and the
    precision of its forward and backward passes (the weights stay float32: mixed)."""

    device: str = "auto"
    precision: Precision = "fp32"

    def __post_init__(self) -> None:
        if not _DEVICE.fullmatch(self.device):
            raise SpecError(f"--device {self.device}: not a device ({DEVICE_FORMS})")
        if self.precision not in PRECISIONS:
            raise SpecError(
                f"--precision {self.precision}: not a precision ({', '.join(PRECISIONS)})"
            )

    @property
    def device_index(self) -> int | None:
        """N of `cuda:N`; None for the others."""
        _, _, index = self.device.partition(":")
        return int(index) if index else None


DEFAULT_PLACEMENT = Placement()

FP16_ON_CPU = (
    "--precision fp16-mixed needs a GPU: CPUs compute float16 no faster than float32 (most "
    "x86 CPUs convert it), and its narrow range needs loss scaling for nothing"
)
FP16_HINT = "--precision bf16-mixed (bfloat16 runs on any x86 CPU, fast with AMX), or fp32"
