"""Hostile model files (Keras and ONNX) given to `xgraph import`, each in a process of its
own under the budgets a refusal must keep (500 MB of data, a CPU ceiling against a refusal
that loops): exit status 2, one located error, no traceback, nothing written. The CPU time
each took is printed (with interpreter start-up)."""

from __future__ import annotations

import resource
import struct
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from fuzzing import CPU_CEILING_S
from test_import_spec import keras_file, layer, small_model, tensor

MEMORY_BYTES = 500 * 2**20
CPU_SECONDS = int(3 * CPU_CEILING_S)


def _limits() -> None:
    resource.setrlimit(resource.RLIMIT_CPU, (CPU_SECONDS, CPU_SECONDS))
    resource.setrlimit(resource.RLIMIT_DATA, (MEMORY_BYTES, MEMORY_BYTES))


def zip_bomb(folder: Path) -> Path:
    """A .keras whose config.json says it expands to 4 GB (its central directory patched)."""
    path = keras_file(folder, small_model(), "bomb.keras")
    data = bytearray(path.read_bytes())
    central = data.rindex(b"PK\x01\x02")
    data[central + 24 : central + 28] = struct.pack("<I", 0xFFFF_FFF0)
    path.write_bytes(bytes(data))
    return path


def huge_config(folder: Path) -> Path:
    """A config.json of 500 MB (sparse: no disk is spent on it)."""
    path = folder / "config.json"
    with path.open("wb") as file:
        file.truncate(500 * 2**20)
    return path


def custom_class(folder: Path) -> Path:
    config = small_model()
    entry = layer("MyAttention", "stem_relu", [tensor("stem_bn", [None, 8, 8, 4])])
    entry.update(module="my_project.layers", registered_name="my_project>MyAttention")
    config["config"]["layers"][3] = entry
    return keras_file(folder, config, "custom.keras")


def lambda_layer(folder: Path) -> Path:
    config = small_model()
    entry = layer("Lambda", "stem_relu", [tensor("stem_bn", [None, 8, 8, 4])])
    entry["config"]["function"] = {"class_name": "__lambda__", "config": {"code": "4wEAAAAA"}}
    config["config"]["layers"][3] = entry
    return keras_file(folder, config, "lambda.keras")


def cyclic(folder: Path) -> Path:
    config = small_model()
    config["config"]["layers"][2]["inbound_nodes"][0]["args"][0]["config"]["keras_history"] = [
        "sum",
        0,
        0,
    ]
    return keras_file(folder, config, "cyclic.keras")


def deep_json(folder: Path) -> Path:
    """A config nested 100,000 levels deep: Python's JSON reader would recurse past its
    limit."""
    path = folder / "deep.json"
    path.write_text("[" * 100_000 + "]" * 100_000)
    return path


def _onnx_image() -> Any:
    from onnx import TensorProto, helper

    return helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 3, 8, 8])


def onnx_cycle(folder: Path) -> Path:
    """Two ONNX nodes that read each other's output."""
    import onnx
    from onnx import TensorProto, helper

    out = helper.make_tensor_value_info("b", TensorProto.FLOAT, [1, 3, 8, 8])
    nodes = [helper.make_node("Relu", ["b"], ["a"]), helper.make_node("Add", ["x", "a"], ["b"])]
    path = folder / "cycle.onnx"
    onnx.save(helper.make_model(helper.make_graph(nodes, "cycle", [_onnx_image()], [out])), path)
    return path


def onnx_dangling(folder: Path) -> Path:
    """A node that reads a value no node makes."""
    import onnx
    from onnx import TensorProto, helper

    out = helper.make_tensor_value_info("b", TensorProto.FLOAT, [1, 3, 8, 8])
    nodes = [helper.make_node("Add", ["x", "nowhere"], ["b"])]
    path = folder / "dangling.onnx"
    onnx.save(helper.make_model(helper.make_graph(nodes, "dangling", [_onnx_image()], [out])), path)
    return path


def onnx_outside(folder: Path) -> Path:
    """A weight whose external data lies outside the model's folder ('../secret.bin')."""
    import numpy as np
    from onnx import TensorProto, helper, numpy_helper

    weight = numpy_helper.from_array(np.ones((3, 3, 1, 1), np.float32), "w")
    out = helper.make_tensor_value_info("b", TensorProto.FLOAT, [1, 3, 8, 8])
    conv = helper.make_node("Conv", ["x", "w"], ["b"])
    model = helper.make_model(
        helper.make_graph([conv], "outside", [_onnx_image()], [out], [weight])
    )
    tensor = model.graph.initializer[0]
    tensor.ClearField("raw_data")
    tensor.data_location = TensorProto.EXTERNAL
    entry = tensor.external_data.add()
    entry.key, entry.value = "location", "../secret.bin"
    (folder.parent / "secret.bin").write_bytes(b"\0" * 36)
    path = folder / "outside.onnx"
    path.write_bytes(model.SerializeToString())  # onnx.save itself refuses such a file
    return path


ONNX_CASES: dict[str, tuple[Callable[[Path], Path], str]] = {
    "onnx_cycle": (onnx_cycle, "not a valid ONNX graph"),
    "onnx_dangling": (onnx_dangling, "not a valid ONNX graph"),
    "onnx_outside": (onnx_outside, "keeps its data in '../secret.bin', outside the model's folder"),
}
CASES: dict[str, tuple[Callable[[Path], Path], str]] = {
    "zip_bomb": (zip_bomb, "'config.json' (the model's config) expands to 4,294,967,280 bytes"),
    "huge_config": (huge_config, "524,288,000 bytes of config, more than the"),
    "custom_class": (custom_class, "config.layers[3]: MyAttention 'stem_relu'"),
    "lambda": (lambda_layer, "config.layers[3]: Lambda 'stem_relu' (runs code the file holds)"),
    "cyclic": (cyclic, "refers to layer 'sum', which the config does not list"),
    "deep_json": (deep_json, "not valid JSON: maximum recursion depth exceeded"),
}


@pytest.mark.parametrize("case", sorted(CASES))
def test_a_hostile_file_is_refused_within_the_budgets(case: str, tmp_path: Path) -> None:
    _refused(case, *CASES[case], tmp_path)


@pytest.mark.parametrize("case", sorted(ONNX_CASES))
def test_a_hostile_onnx_file_is_refused_within_the_budgets(case: str, tmp_path: Path) -> None:
    _refused(case, *ONNX_CASES[case], tmp_path)


def _refused(case: str, make: Callable[[Path], Path], message: str, tmp_path: Path) -> None:
    path = make(tmp_path)
    out = tmp_path / "out.yaml"
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    result = subprocess.run(
        [sys.executable, "-m", "xgraph", "import", str(path), "-o", str(out)],
        capture_output=True,
        text=True,
        preexec_fn=_limits,
        check=False,
        timeout=600,
    )
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    spent = after.ru_utime + after.ru_stime - before.ru_utime - before.ru_stime
    print(f"{case}: refused in {spent:.3f} s of CPU with start-up")
    assert result.returncode == 2, result.stderr
    assert result.stderr.startswith(f"{path}: error: "), result.stderr
    assert message in result.stderr, result.stderr
    assert "Traceback" not in result.stderr
    assert not out.exists()
