"""The key numeric and training cases pass on older instruction sets than this CPU's: each cap
(tests/isa_caps.py) re-runs them in a fresh pytest process, after a probe under the same
environment has shown that torch's and TensorFlow's oneDNN, ATen and MKL all run at the cap.
The summary line of the run names the caps run and those this CPU cannot run."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path
from types import SimpleNamespace

import pytest
from isa_caps import (
    AVX2,
    AVX512_CORE,
    CAPS,
    Cap,
    Probe,
    cap_violations,
    capped_env,
    caps_summary_line,
    cpu_flags,
    machine_isa,
    passed_count,
    run_probe,
    skip_reason,
)

KEY_CASES = (
    # Every pair of backends, node by node: Xception, then residual adds, depthwise convs and
    # Inception's concatenations of pools and asymmetric kernels (torch against Keras).
    "specs/xception.yaml::numeric[keras-onnx]",
    "specs/xception.yaml::numeric[keras-torch]",
    "specs/xception.yaml::numeric[onnx-torch]",
    "specs/resnet50.yaml::numeric[keras-torch]",
    "specs/mobilenet.yaml::numeric[keras-torch]",
    "specs/inception_v3.yaml::numeric[keras-torch]",
    # Training parity: one plain SGD step with BatchNorm statistics, then two optimizers with
    # momentum and moments under two schedules.
    "tests/test_training_parity.py::"
    "test_one_sgd_step_gives_the_same_weights_and_statistics_in_both_backends",
    "tests/test_training_parity.py::"
    "test_five_steps_give_the_same_losses_and_weights_in_torch_and_keras[adam-cosine]",
    "tests/test_training_parity.py::"
    "test_five_steps_give_the_same_losses_and_weights_in_torch_and_keras[sgd_nesterov-step]",
    # Data-parallel `xgraph train --nproc 2`, whose worker processes inherit the cap: torch DDP
    # and tf.distribute (MultiWorkerMirroredStrategy), each against one process.
    "tests/test_train_cli.py::test_two_processes_train_as_one_with_the_same_global_batch[torch-ddp]",
    "tests/test_train_cli.py::"
    "test_two_processes_train_as_one_with_the_same_global_batch[keras-multiworker]",
    # Keras's own weight file read into the torch build: Xception at 299, features to logits.
    "tests/test_keras_weight_files.py::test_keras_file_reproduces_keras_at_299[weights_h5]",
)

# What the uncapped probe printed on the Sapphire Rapids these caps were measured on.
UNCAPPED = Probe(
    onednn_isas=[
        "Intel AVX10.1 and Intel AMX with bfloat16 and 8-bit integer support",
        "Intel AVX-512 with float16, Intel DL Boost and bfloat16 support and Intel AMX with "
        "bfloat16 and 8-bit integer support",
    ],
    aten="AVX512",
    mkl_isa="Intel(R) Advanced Vector Extensions 512 (Intel(R) AVX-512) with support for INT8, "
    "BF16, FP16 (limited) instructions, and Intel(R) Advanced Matrix Extensions (Intel(R) AMX) "
    "with INT8 and BF16",
    output="",
)
ZEN3_FLAGS = frozenset({"sse4_2", "avx", "avx2", "fma", "bmi2", "vaes", "vpclmulqdq"})


def _pytest(node_ids: tuple[str, ...], env: dict[str, str], cwd: Path) -> tuple[int, str]:
    """Run `node_ids` in a fresh pytest under `env`: its exit status and output."""
    command = [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "-n", "0"]
    run = subprocess.run(
        [*command, *node_ids],
        env=env,
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=900,
        check=False,
    )
    return run.returncode, run.stdout + run.stderr


@pytest.mark.parametrize("cap", CAPS, ids=[cap.name for cap in CAPS])
def test_key_cases_pass_under_the_cap(cap: Cap, root: Path) -> None:
    reason = skip_reason(cap, cpu_flags())
    if reason:
        pytest.skip(reason)
    env = capped_env(cap, os.environ)
    probe = run_probe(env, root)
    problems = cap_violations(cap, probe)
    assert not problems, f"{cap.name} not in effect: {problems}\n{probe.output[-4000:]}"
    code, output = _pytest(KEY_CASES, env, root)
    assert code == 0, f"under {cap.name}:\n{output[-8000:]}"
    assert passed_count(output) == len(KEY_CASES), f"under {cap.name}:\n{output[-8000:]}"


def test_a_cpu_without_avx512_runs_avx2_and_skips_avx512_core_naming_its_flags() -> None:
    assert skip_reason(AVX2, ZEN3_FLAGS) is None
    assert skip_reason(AVX512_CORE, ZEN3_FLAGS) == (
        "AVX512_CORE: this CPU lacks avx512f, avx512bw, avx512vl, avx512dq"
    )
    assert machine_isa(ZEN3_FLAGS) == "AVX2"
    amx = ZEN3_FLAGS | {"avx512f", "avx512bw", "avx512vl", "avx512dq", "amx_tile", "amx_bf16"}
    assert machine_isa(amx) == "AVX512_CORE_AMX"
    assert machine_isa(frozenset({"sse4_2", "avx"})) == "below AVX2"


def test_an_ignored_cap_is_caught_by_the_probe_check() -> None:
    """An unknown value of ONEDNN_MAX_CPU_ISA is ignored silently: the run is uncapped."""
    assert len(cap_violations(AVX2, UNCAPPED)) == 4  # both oneDNN lines, ATen, MKL
    assert len(cap_violations(AVX512_CORE, UNCAPPED)) == 3  # ATen has no level above AVX512
    assert cap_violations(AVX2, Probe([AVX2.onednn_isa] * 2, "AVX2", AVX2.mkl_isa, "")) == []
    # MKL on an AMD CPU may stay below an AVX512 cap: below is accepted, above is not.
    on_zen5 = Probe([AVX512_CORE.onednn_isa] * 2, "AVX512", AVX2.mkl_isa, "")
    assert cap_violations(AVX512_CORE, on_zen5) == []
    assert cap_violations(AVX2, Probe([AVX2.onednn_isa] * 2, "AVX2", None, "")) == [
        "MKL_VERBOSE named no instruction set"
    ]
    one_library = Probe([AVX2.onednn_isa], "AVX2", AVX2.mkl_isa, "")
    assert cap_violations(AVX2, one_library) == [
        "expected 2 oneDNN isa lines (torch, TensorFlow): ['Intel AVX2']"
    ]


def _report(cap: str, outcome: str, longrepr: object = None) -> SimpleNamespace:
    nodeid = f"tests/test_isa_caps.py::test_key_cases_pass_under_the_cap[{cap}]"
    return SimpleNamespace(nodeid=nodeid, when="call", outcome=outcome, longrepr=longrepr)


def test_the_summary_line_names_the_caps_run_and_skipped() -> None:
    skipped = ("tests/test_isa_caps.py", 80, "Skipped: AVX512_CORE: this CPU lacks avx512f")
    stats = {
        "passed": [_report("AVX2", "passed"), SimpleNamespace(nodeid="tests/x.py::t", when="call")],
        "skipped": [_report("AVX512_CORE", "skipped", skipped)],
    }
    assert caps_summary_line(stats, ZEN3_FLAGS) == (
        "oneDNN caps: ran AVX2 (+ the machine's own: AVX2); "
        "skipped: AVX512_CORE: this CPU lacks avx512f"
    )
    stats = {"failed": [_report("AVX512_CORE", "failed")], "passed": [_report("AVX2", "passed")]}
    assert caps_summary_line(stats, ZEN3_FLAGS) == (
        "oneDNN caps: ran AVX2, AVX512_CORE (failed) (+ the machine's own: AVX2); skipped: none"
    )
    assert (
        caps_summary_line({"passed": [SimpleNamespace(nodeid="a.py::b", when="call")]}, ZEN3_FLAGS)
        is None
    )
