"""Instruction-set caps: the suite's key cases re-run as on older CPUs than this one.

oneDNN, inside both torch and TensorFlow, picks its kernels by the CPU it finds: AVX2 (AMD Zen 3),
AVX-512 (Zen 5), AVX-512 with AMX (Intel Sapphire Rapids). An environment variable caps it to an
older instruction set, read once when the library first uses oneDNN, hence in a fresh process
only. A cap is run only where the CPU has its flags (/proc/cpuinfo); the machine's own ISA is
the main suite run, uncapped.

Evidence, measured on an Intel Xeon Sapphire Rapids (flags avx2, avx512f/bw/vl/dq, amx_tile,
amx_bf16, amx_int8, avx512_fp16) with torch 2.13.0+cpu (oneDNN v3.12.0) and tensorflow-cpu
2.21.0 (oneDNN v3.7.3, TF_ENABLE_ONEDNN_OPTS on by default), a conv run under
ONEDNN_VERBOSE=1 (DNNL_VERBOSE=1 prints the same; torch takes oneDNN for a conv only with a
batch above 1 or a large input):

- uncapped: torch's oneDNN prints `info,cpu,isa:Intel AVX10.1 and Intel AMX with bfloat16 and
  8-bit integer support`, TensorFlow's `isa:Intel AVX-512 with float16, Intel DL Boost and
  bfloat16 support and Intel AMX with bfloat16 and 8-bit integer support`; convs run
  `jit:avx512_core` (torch) and `brg_conv_fwd:avx512_core` (TensorFlow).
- ONEDNN_MAX_CPU_ISA=AVX2 and DNNL_MAX_CPU_ISA=AVX2 each give `isa:Intel AVX2` in both
  libraries, convs `jit:avx2` and `brg_conv_fwd:avx2`; lower case (`avx2`) works too.
- ONEDNN_MAX_CPU_ISA=AVX512_CORE and DNNL_MAX_CPU_ISA=AVX512_CORE each give `isa:Intel AVX-512
  with AVX512BW, AVX512VL, and AVX512DQ extensions` in both libraries.
- AVX512_CORE_AMX and ALL change nothing here; an unknown value (`BOGUS`) is ignored silently,
  which is why each capped run first proves its cap took effect.
- Both spellings set, to different values: both libraries follow ONEDNN_MAX_CPU_ISA. Both are
  set here, to the same value. torch can also turn the verbose output on at run time
  (torch.backends.mkldnn.verbose); TensorFlow only by the environment.

torch has two more dispatchers of its own, capped alongside so that a cap means "a CPU like
that": ATen's vectorised kernels (ATEN_CPU_CAPABILITY=avx2|avx512, read back with
torch.backends.cpu.get_cpu_capability()) and MKL's GEMM behind matmul and nn.Linear
(MKL_ENABLE_INSTRUCTIONS=AVX2|AVX512, named by MKL_VERBOSE's first line). ONNX Runtime's MLAS
dispatches by CPU too and has no such switch: the onnx pairs run capped on their torch and
Keras side only.
"""

from __future__ import annotations

import re
import subprocess
import sys
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

CAPPED_TEST = "test_isa_caps.py::test_key_cases_pass_under_the_cap"
ONEDNN_ISA = re.compile(r"^(?:onednn|dnnl)_verbose,(?:v\d+,)?info,cpu,isa:(.+)$", re.MULTILINE)
ATEN_CAPABILITY = re.compile(r"^aten-capability: (\S+)$", re.MULTILINE)
MKL_ISA = re.compile(r"^MKL_VERBOSE oneMKL .* for Intel\(R\) 64 architecture (.+?), Lnx", re.M)

# One conv in each oneDNN (torch's needs a batch above 1 to take oneDNN) and one MKL GEMM.
PROBE = """
import tensorflow as tf
import torch

print("aten-capability:", torch.backends.cpu.get_cpu_capability(), flush=True)
torch.nn.functional.conv2d(torch.ones(2, 8, 16, 16), torch.ones(8, 8, 3, 3))
tf.nn.conv2d(tf.ones([2, 16, 16, 8]), tf.ones([3, 3, 8, 8]), 1, "SAME")
with torch.backends.mkl.verbose(torch.backends.mkl.VERBOSE_ON):
    torch.ones(64, 64) @ torch.ones(64, 64)
"""


@dataclass(frozen=True)
class Cap:
    """One instruction-set level: the CPU flags it needs, how to impose it, how it reports."""

    name: str  # the value of ONEDNN_MAX_CPU_ISA
    flags: tuple[str, ...]
    onednn_isa: str = ""  # the `isa:` that oneDNN's verbose header prints under the cap
    aten: str = ""  # ATEN_CPU_CAPABILITY, and get_cpu_capability() upper-cased
    mkl: str = ""  # MKL_ENABLE_INSTRUCTIONS
    mkl_isa: str = ""  # the ISA on MKL_VERBOSE's first line under the cap, on this Intel CPU
    # What MKL's line would name if it ran above the cap. MKL keeps its own counsel on AMD
    # CPUs (it may run AVX2 code under an AVX512 cap on Zen 5), so a lower ISA is accepted.
    mkl_above: tuple[str, ...] = ()

    def env(self) -> dict[str, str]:
        """The variables that impose this cap on a fresh process."""
        return {
            "ONEDNN_MAX_CPU_ISA": self.name,
            "DNNL_MAX_CPU_ISA": self.name,
            "ATEN_CPU_CAPABILITY": self.aten.lower(),
            "MKL_ENABLE_INSTRUCTIONS": self.mkl,
            "TF_ENABLE_ONEDNN_OPTS": "1",  # TensorFlow's oneDNN is what the cap is for
        }


AVX2 = Cap(
    "AVX2",
    ("avx2",),
    onednn_isa="Intel AVX2",
    aten="AVX2",
    mkl="AVX2",
    mkl_isa="Intel(R) Advanced Vector Extensions 2 (Intel(R) AVX2) enabled processors",
    mkl_above=("AVX-512", "AVX512", "AMX", "AVX10"),
)
AVX512_CORE = Cap(
    "AVX512_CORE",
    ("avx512f", "avx512bw", "avx512vl", "avx512dq"),
    onednn_isa="Intel AVX-512 with AVX512BW, AVX512VL, and AVX512DQ extensions",
    aten="AVX512",
    mkl="AVX512",
    mkl_isa="Intel(R) Advanced Vector Extensions 512 (Intel(R) AVX-512) enabled processors",
    mkl_above=("AMX", "AVX10", "DL Boost", "Deep Learning Boost"),
)
AVX512_CORE_AMX = Cap("AVX512_CORE_AMX", (*AVX512_CORE.flags, "amx_tile", "amx_bf16"))

CAPS = (AVX2, AVX512_CORE)  # run capped; the machine's own level is the main run
LADDER = (AVX2, AVX512_CORE, AVX512_CORE_AMX)  # to name the machine's own level


def cpu_flags(cpuinfo: Path = Path("/proc/cpuinfo")) -> frozenset[str]:
    """The flags of the first processor listed (the kernel lists the same for each)."""
    for line in cpuinfo.read_text().splitlines():
        key, _, value = line.partition(":")
        if key.strip() == "flags":
            return frozenset(value.split())
    return frozenset()


def missing_flags(cap: Cap, flags: frozenset[str]) -> list[str]:
    return [flag for flag in cap.flags if flag not in flags]


def skip_reason(cap: Cap, flags: frozenset[str]) -> str | None:
    """Why `cap` cannot run on this CPU, or None: oneDNN would run below the cap, not at it."""
    missing = missing_flags(cap, flags)
    return f"{cap.name}: this CPU lacks {', '.join(missing)}" if missing else None


def machine_isa(flags: frozenset[str]) -> str:
    """The highest level of the ladder this CPU has: what the uncapped suite runs on."""
    levels = [cap.name for cap in LADDER if not missing_flags(cap, flags)]
    return levels[-1] if levels else "below AVX2"


def capped_env(cap: Cap, base: Mapping[str, str]) -> dict[str, str]:
    """`base` with the cap imposed, without this pytest's xdist and verbose settings."""
    dropped = ("PYTEST_XDIST_", "PYTEST_CURRENT_TEST", "ONEDNN_VERBOSE", "DNNL_VERBOSE")
    env = {key: value for key, value in base.items() if not key.startswith(dropped)}
    return {**env, **cap.env()}


@dataclass(frozen=True)
class Probe:
    """What a fresh process under some environment reported about its instruction sets."""

    onednn_isas: list[str]
    aten: str | None
    mkl_isa: str | None
    output: str


def run_probe(env: Mapping[str, str], cwd: Path) -> Probe:
    """Run PROBE in a fresh process under `env`, oneDNN's verbose header on."""
    run = subprocess.run(
        [sys.executable, "-c", PROBE],
        env={**env, "ONEDNN_VERBOSE": "1", "TF_CPP_MIN_LOG_LEVEL": "3"},
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    output = run.stdout + run.stderr
    aten, mkl = ATEN_CAPABILITY.search(output), MKL_ISA.search(output)
    return Probe(
        onednn_isas=ONEDNN_ISA.findall(output),
        aten=aten and aten.group(1),
        mkl_isa=mkl and mkl.group(1),
        output=output,
    )


def cap_violations(cap: Cap, probe: Probe) -> list[str]:
    """How `probe` shows the cap not in effect; empty when torch's and TensorFlow's oneDNN
    (two headers), ATen and MKL all run at exactly the cap."""
    problems = []
    if len(probe.onednn_isas) != 2:
        problems.append(f"expected 2 oneDNN isa lines (torch, TensorFlow): {probe.onednn_isas}")
    problems += [f"oneDNN runs {isa!r}" for isa in probe.onednn_isas if isa != cap.onednn_isa]
    if probe.aten != cap.aten:
        problems.append(f"ATen runs {probe.aten!r}, not {cap.aten!r}")
    if probe.mkl_isa is None:
        problems.append("MKL_VERBOSE named no instruction set")
    elif any(marker in probe.mkl_isa for marker in cap.mkl_above):
        problems.append(f"MKL runs {probe.mkl_isa!r}, above the cap ({cap.mkl_isa!r})")
    return problems


def passed_count(output: str) -> int:
    """The `N passed` of pytest's last line."""
    found = re.findall(r"(\d+) passed", output)
    return int(found[-1]) if found else 0


# ---------------------------------------------------------------------------------------------
# The terminal summary: which caps ran, which this CPU lacks


def _cap_of(nodeid: str) -> str | None:
    if CAPPED_TEST not in nodeid or not nodeid.endswith("]"):
        return None
    return nodeid.rpartition("[")[2][:-1]


def _reason(report: Any) -> str:
    longrepr = report.longrepr
    text = longrepr[2] if isinstance(longrepr, tuple | list) else str(longrepr)
    return text.removeprefix("Skipped: ")


def caps_outcomes(stats: Mapping[str, list[Any]]) -> tuple[list[str], list[str]]:
    """From a terminal reporter's stats: the caps run ("AVX2", "AVX2 (failed)"), and the skip
    reasons of those skipped (each names its cap and the flags this CPU lacks)."""
    ran, skipped = [], []
    for outcome in ("passed", "failed", "error", "skipped"):
        for report in stats.get(outcome, []):
            cap = _cap_of(getattr(report, "nodeid", ""))
            if cap is None or (outcome == "passed" and report.when != "call"):
                continue
            if outcome == "skipped":
                skipped.append(_reason(report))
            else:
                ran.append(cap if outcome == "passed" else f"{cap} ({outcome})")
    return sorted(ran, key=_ladder_order), sorted(skipped, key=_ladder_order)


def _ladder_order(text: str) -> int:
    names = [cap.name for cap in LADDER]
    name = re.split(r"[ :]", text, maxsplit=1)[0]
    return names.index(name) if name in names else len(names)


def caps_summary_line(stats: Mapping[str, list[Any]], flags: frozenset[str]) -> str | None:
    """The summary line, or None when no capped test ran or was skipped in this session."""
    ran, skipped = caps_outcomes(stats)
    if not ran and not skipped:
        return None
    own = f"(+ the machine's own: {machine_isa(flags)})"
    ran_text, skipped_text = ", ".join(ran) or "none", "; ".join(skipped) or "none"
    return f"oneDNN caps: ran {ran_text} {own}; skipped: {skipped_text}"


def write_caps_summary(terminalreporter: Any) -> None:
    """The pytest_terminal_summary of tests/conftest.py: name the caps run and skipped."""
    line = caps_summary_line(terminalreporter.stats, cpu_flags())
    if line:
        terminalreporter.write_line(line)
