"""`--device` and `--precision` for torch: which device a process trains on, and whether
torch's autocast computes there in the precision asked for."""

from __future__ import annotations

import os

import torch

from xgraph.errors import SpecError
from xgraph.training.placement import FP16_HINT, FP16_ON_CPU, Placement

AUTOCAST = {"bf16-mixed": torch.bfloat16, "fp16-mixed": torch.float16}
NO_GPU_HINT = "--device cpu, or auto (a GPU when torch sees one)"


def torch_device(placement: Placement) -> torch.device:
    """The device `--device` names; `auto` (and a bare `cuda`) picks this process's GPU by
    its LOCAL_RANK (torchrun's), then Apple's, then the CPU. A GPU torch cannot use is a
    SpecError saying why."""
    requested = placement.device
    local_rank = int(os.environ.get("LOCAL_RANK", "0"))
    cuda_count = torch.cuda.device_count() if torch.cuda.is_available() else 0
    if requested == "auto":
        if cuda_count:
            return torch.device("cuda", local_rank % cuda_count)
        if torch.backends.mps.is_available():
            return torch.device("mps")
        return torch.device("cpu")
    if requested.startswith("cuda"):
        if not cuda_count:
            build = " (this torch is a CPU build)" if torch.version.cuda is None else ""
            raise SpecError(
                f"--device {requested}: torch sees no CUDA GPU{build}", hint=NO_GPU_HINT
            )
        index = placement.device_index
        index = local_rank % cuda_count if index is None else index
        if index >= cuda_count:
            raise SpecError(
                f"--device {requested}: torch sees {cuda_count} CUDA GPU(s), "
                f"cuda:0 to cuda:{cuda_count - 1}",
                hint=NO_GPU_HINT,
            )
        return torch.device("cuda", index)
    if requested == "mps" and not torch.backends.mps.is_available():
        raise SpecError("--device mps: torch sees no Apple GPU (MPS)", hint=NO_GPU_HINT)
    return torch.device(requested)


def check_precision(device: torch.device, precision: str) -> None:
    """Refuse a precision the device cannot compute: fp16 on a CPU, and any autocast dtype
    that torch's autocast would quietly turn off on this device (it warns and runs fp32)."""
    if precision == "fp32":
        return
    if precision == "fp16-mixed" and device.type == "cpu":
        raise SpecError(FP16_ON_CPU, hint=FP16_HINT)
    if device.type == "cuda" and precision == "bf16-mixed" and not torch.cuda.is_bf16_supported():
        raise SpecError(
            f"--precision bf16-mixed: {torch.cuda.get_device_name(device)} has no bfloat16",
            hint="--precision fp16-mixed, or fp32",
        )
    probe = torch.ones((2, 2), device=device)
    with torch.autocast(device.type, dtype=AUTOCAST[precision]):
        computed = (probe @ probe).dtype
    if computed != AUTOCAST[precision]:
        raise SpecError(
            f"--precision {precision}: torch's autocast on {device.type} does not compute in "
            f"{AUTOCAST[precision]} (it ran {computed})",
            hint="--precision fp32",
        )
