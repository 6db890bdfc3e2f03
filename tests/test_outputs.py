"""Output files: `-o` is checked before any work and refused with `PATH: error: ...` (exit
status 2, no traceback, nothing written) when it would replace an input of the command, is a
folder, a link, a device, a system path or an unwritable place; missing folders are created
and announced; every artifact gets the same mode; numeric options refuse NaN, infinities and
out-of-range values. The refusals also run as subprocesses, under CPU and memory limits."""

from __future__ import annotations

import errno
import os
import resource
import stat
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING

import pytest
from fuzzing import CPU_CEILING_S

from xgraph import files
from xgraph.api import load
from xgraph.errors import SpecError
from xgraph.files import atomic_path, check_output, write_atomically

if TYPE_CHECKING:
    from conftest import CliRunner

TINY = """\
xgraph: 1
name: tiny
inputs:
  - {name: image, shape: [8, 8, 3]}
nodes:
  - {name: conv, op: conv2d, filters: 4, kernel_size: 3}
  - {name: out, op: global_avg_pool}
"""

VARIANT = """\
xgraph: 1
extends: tiny.yaml
name: variant
"""


@pytest.fixture
def work(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A folder holding the spec (`tiny.yaml`), a variant of it, and a weights file, made
    the current folder, as a user's would be."""
    (tmp_path / "tiny.yaml").write_text(TINY)
    (tmp_path / "variant.yaml").write_text(VARIANT)
    (tmp_path / "tiny.safetensors").write_bytes(b"not read: refused before")
    (tmp_path / "model.keras").write_bytes(b"not read: refused before")
    monkeypatch.chdir(tmp_path)
    return tmp_path


def listing(folder: Path) -> dict[str, tuple[int, int, int]]:
    """Every entry under `folder`, with its size, mode and modification time."""
    found = {}
    for path in sorted(folder.rglob("*")):
        status = path.lstat()
        found[str(path.relative_to(folder))] = (
            status.st_size,
            status.st_mode,
            status.st_mtime_ns,
        )
    return found


@pytest.fixture
def unchanged(work: Path) -> Iterator[None]:
    """The test's commands leave the folder as they found it."""
    before = listing(work)
    yield
    assert listing(work) == before


# What each command reads and what it writes, `OUT` standing for the -o path.
COMMANDS = {
    "graph": ["graph", "tiny.yaml", "-o", "OUT"],
    "codegen": ["codegen", "tiny.yaml", "--backend", "torch", "-o", "OUT"],
    "weights": ["weights", "tiny.yaml", "--from", "tiny.safetensors", "-o", "OUT"],
    "build": ["build", "tiny.yaml", "--backend", "onnx", "-o", "OUT"],
}


def run_with_output(run_cli: CliRunner, command: str, output: str) -> tuple[int, str]:
    result = run_cli(*[output if word == "OUT" else word for word in COMMANDS[command]])
    assert "Traceback" not in result.err
    return result.code, result.err


def refused(run_cli: CliRunner, command: str, output: str, message: str) -> None:
    code, err = run_with_output(run_cli, command, output)
    assert code == 2, err
    assert err.splitlines()[0] == f"{output}: error: {message}", err


@pytest.mark.usefixtures("unchanged")
@pytest.mark.parametrize("command", sorted(COMMANDS))
@pytest.mark.parametrize("spelling", ["tiny.yaml", "./tiny.yaml", "../{folder}/tiny.yaml"])
def test_the_spec_is_never_overwritten(
    run_cli: CliRunner, work: Path, command: str, spelling: str
) -> None:
    output = spelling.format(folder=work.name)
    refused(
        run_cli,
        command,
        output,
        "this is the spec ('tiny.yaml'), an input of this command: writing it would destroy it",
    )


@pytest.mark.usefixtures("unchanged")
def test_a_hard_link_to_the_spec_is_the_spec(run_cli: CliRunner, work: Path) -> None:
    os.link(work / "tiny.yaml", work / "same.dot")
    before = listing(work)
    refused(
        run_cli,
        "graph",
        "same.dot",
        "this is the spec ('tiny.yaml'), an input of this command: writing it would destroy it",
    )
    assert listing(work) == before
    (work / "same.dot").unlink()


@pytest.mark.usefixtures("unchanged")
def test_a_spec_it_extends_is_an_input_too(run_cli: CliRunner) -> None:
    result = run_cli("graph", "variant.yaml", "-o", "tiny.yaml")
    assert result.code == 2
    assert result.err.splitlines()[0] == (
        "tiny.yaml: error: this is a spec it extends ('tiny.yaml'), an input of this command: "
        "writing it would destroy it"
    )


@pytest.mark.usefixtures("unchanged")
@pytest.mark.parametrize(
    ("argv", "what"),
    [
        (["weights", "tiny.yaml", "--from", "tiny.safetensors"], "the --from file"),
        (
            ["build", "tiny.yaml", "--backend", "keras", "--weights", "model.keras"],
            "the --weights file",
        ),
    ],
)
def test_the_weights_read_are_never_overwritten(
    run_cli: CliRunner, argv: list[str], what: str
) -> None:
    output = argv[-1]
    result = run_cli(*argv, "-o", output)
    assert result.code == 2
    assert result.err.splitlines()[0] == (
        f"{output}: error: this is {what} ('{output}'), an input of this command: writing it "
        "would destroy it"
    )


@pytest.mark.usefixtures("unchanged")
@pytest.mark.parametrize("command", sorted(COMMANDS))
def test_a_symbolic_link_is_refused_naming_its_target(
    run_cli: CliRunner, work: Path, command: str
) -> None:
    """Neither replaced nor written through, whether it points at an input, another file or
    nowhere."""
    (work / "elsewhere.txt").write_text("kept")
    suffix = {"graph": ".dot", "codegen": ".py", "weights": ".pt", "build": ".onnx"}[command]
    for target in ("tiny.yaml", "elsewhere.txt", "missing.txt"):
        link = work / f"link{suffix}"
        link.symlink_to(target)
        refused(
            run_cli,
            command,
            link.name,
            f"this is a symbolic link (to '{target}'): xgraph neither replaces a link nor "
            "writes through it",
        )
        assert os.readlink(link) == target
        link.unlink()
    assert (work / "elsewhere.txt").read_text() == "kept"
    (work / "elsewhere.txt").unlink()


SYSTEM = "a system folder: xgraph writes ordinary files only"


@pytest.mark.usefixtures("unchanged")
@pytest.mark.parametrize("command", sorted(COMMANDS))
def test_places_that_are_not_files_are_refused(
    run_cli: CliRunner, work: Path, command: str
) -> None:
    (work / "folder").mkdir()
    cases = [
        ("folder", "this is a folder, not a file"),
        ("folder/", "this is a folder, not a file"),
        ("new/", "this names a folder, not a file"),
        ("/dev/null", "this is a character device, not an ordinary file"),
        ("/proc/xgraph.out", f"this is inside /proc, {SYSTEM}"),
        ("/sys/xgraph.out", f"this is inside /sys, {SYSTEM}"),
        ("tiny.yaml/x.out", "cannot write here: 'tiny.yaml' is a file, not a folder"),
        ("", "the output path is empty"),
    ]
    for output, message in cases:
        code, err = run_with_output(run_cli, command, output)
        assert code == 2, err
        assert err.splitlines()[0] == f"{output or '-o'}: error: {message}", err
    (work / "folder").rmdir()


@pytest.mark.usefixtures("unchanged")
def test_a_named_pipe_is_refused(run_cli: CliRunner, work: Path) -> None:
    os.mkfifo(work / "pipe.dot")
    refused(run_cli, "graph", "pipe.dot", "this is a named pipe, not an ordinary file")
    (work / "pipe.dot").unlink()


@pytest.mark.usefixtures("unchanged")
def test_a_folder_that_cannot_be_written_is_refused(
    run_cli: CliRunner, work: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """As the operating system reports it (os.access): a read-only folder or file system."""
    real_access = os.access

    def access(path: str | Path, mode: int) -> bool:
        return False if Path(path).resolve() == work.resolve() else real_access(path, mode)

    monkeypatch.setattr(files.os, "access", access)
    refused(run_cli, "graph", "out.dot", "cannot write here: the folder '.' is not writable")


@pytest.mark.parametrize(
    ("number", "strerror"),
    [(errno.EACCES, "Permission denied"), (errno.EROFS, "Read-only file system")],
)
def test_a_write_the_system_refuses_is_a_clean_error(
    work: Path, monkeypatch: pytest.MonkeyPatch, number: int, strerror: str
) -> None:
    """A refusal that only comes when the file is made (permissions changed meanwhile, a
    file system mounted read-only): a SpecError naming the path, no new folder left."""

    def refuse(*args: object, **kwargs: object) -> None:
        raise OSError(number, os.strerror(number))

    monkeypatch.setattr(files.tempfile, "mkstemp", refuse)
    before = listing(work)
    output = work / "new" / "out.dot"
    with pytest.raises(SpecError) as raised:
        write_atomically(output, b"digraph {}")
    assert raised.value.format() == f"{output}: error: cannot write this file: {strerror}"
    assert listing(work) == before


def test_a_full_disk_leaves_neither_a_file_nor_a_temporary_one(work: Path) -> None:
    before = listing(work)
    output = work / "deep" / "er" / "out.dot"
    with (
        pytest.raises(SpecError, match="No space left on device"),
        atomic_path(output) as temporary,
    ):
        temporary.write_bytes(b"partial")
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
    assert listing(work) == before


def test_missing_folders_are_created_and_said_so(run_cli: CliRunner, work: Path) -> None:
    result = run_cli("graph", "tiny.yaml", "-o", "out/graphs/tiny.dot")
    assert result.code == 0
    assert result.err == "creating folders 'out', 'out/graphs'\n"
    assert (work / "out" / "graphs" / "tiny.dot").read_text().startswith("digraph")


def test_a_failed_command_creates_no_folder(run_cli: CliRunner, work: Path) -> None:
    before = listing(work)
    result = run_cli("graph", "tiny.yaml", "-o", "out/tiny.pdf")
    assert result.code == 2
    assert "cannot draw to 'tiny.pdf'" in result.err
    assert listing(work) == before


@pytest.fixture
def umask_022() -> Iterator[None]:
    previous = os.umask(0o022)
    yield
    os.umask(previous)


@pytest.mark.usefixtures("umask_022")
def test_every_artifact_gets_the_same_mode(run_cli: CliRunner, work: Path) -> None:
    """0644 under the usual umask, whichever library wrote the file (safetensors replaces
    the temporary file with its own, 0600, when left alone); a file written over keeps its
    mode."""
    from xgraph.weights.formats import write_weights
    from xgraph.weights.initial import initial_weights

    analysed = load("tiny.yaml")
    write_weights(work / "weights.safetensors", analysed, initial_weights(analysed, seed=0))
    commands = [
        ["graph", "tiny.yaml", "-o", "a.dot"],
        ["codegen", "tiny.yaml", "--backend", "torch", "-o", "a.py"],
        ["build", "tiny.yaml", "--backend", "onnx", "-o", "a.onnx"],
        *(
            ["weights", "tiny.yaml", "--from", "weights.safetensors", "-o", f"a{suffix}"]
            for suffix in (".safetensors", ".pt")
        ),
    ]
    for argv in commands:
        assert run_cli(*argv).code == 0, argv
    written = ["weights.safetensors", "a.dot", "a.py", "a.onnx", "a.safetensors", "a.pt"]
    modes = {name: stat.S_IMODE((work / name).stat().st_mode) for name in written}
    assert modes == dict.fromkeys(modes, 0o644)
    os.chmod(work / "a.safetensors", 0o600)
    assert run_cli(*commands[3]).code == 0
    assert stat.S_IMODE((work / "a.safetensors").stat().st_mode) == 0o600


def test_check_output_reports_the_folders_to_create(work: Path) -> None:
    plan = check_output(work / "a" / "b" / "c.dot", [("the spec", work / "tiny.yaml")])
    assert plan.new_folders == (work / "a", work / "a" / "b")
    assert plan.folders_note() == f"creating folders '{work / 'a'}', '{work / 'a' / 'b'}'"
    assert check_output(work / "c.dot").folders_note() is None


# Numbers the command line reads


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        (["--tol", "nan"], "error: --tol must be a finite number of at least 0, got nan"),
        (["--tol", "inf"], "error: --tol must be a finite number of at least 0, got inf"),
        (["--tol=-1e-4"], "error: --tol must be a finite number of at least 0, got -0.0001"),
        (["--batch", "-3"], "error: --batch must be at least 1, got -3"),
        (
            ["--batch", "65"],
            "error: --batch must be at most 64, got 65: the numeric check keeps every node's "
            "output of every backend",
        ),
        (["--seed", "-1"], "error: --seed must be a whole number from 0 to 2**64 - 1, got -1"),
        (
            ["--seed", str(2**64)],
            f"error: --seed must be a whole number from 0 to 2**64 - 1, got {2**64}",
        ),
    ],
)
@pytest.mark.usefixtures("unchanged")
def test_numeric_options_refuse_values_that_make_no_check(
    run_cli: CliRunner, extra: list[str], message: str
) -> None:
    result = run_cli("parity", "tiny.yaml", "--numeric", "--backends", "onnx,torch", *extra)
    assert (result.code, result.err.splitlines()[0]) == (2, message)


@pytest.mark.usefixtures("unchanged")
def test_build_refuses_a_negative_seed(run_cli: CliRunner) -> None:
    result = run_cli("build", "tiny.yaml", "--backend", "onnx", "-o", "t.onnx", "--seed", "-2")
    assert (result.code, result.err) == (
        2,
        "error: --seed must be a whole number from 0 to 2**64 - 1, got -2\n",
    )


# The same refusals as a user meets them: a process of its own, within its budgets

# A ceiling against a refusal that loops, not a speed test: the whole command, interpreter
# start-up and imports included, took 0.2 to 0.3 s of CPU (Intel Xeon, 2026-12-03; each test
# prints its own), so a slow, loaded machine passes, while a refusal that loops never ends and
# is killed here (RLIMIT_CPU), failing. Doing the command's work before refusing would cost
# only 1.4 s (codegen) or 2.8 s (a torch build) here, which no time bound can tell from a slow
# start-up on a slow machine: time is not what shows that a refusal comes first.
CPU_SECONDS = int(3 * CPU_CEILING_S)
MEMORY_BYTES = 500 * 2**20


def _limits() -> None:
    resource.setrlimit(resource.RLIMIT_CPU, (CPU_SECONDS, CPU_SECONDS))
    resource.setrlimit(resource.RLIMIT_DATA, (MEMORY_BYTES, MEMORY_BYTES))


def _children_cpu() -> float:
    """CPU seconds of this process's finished children: the one just run, by difference."""
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


@pytest.mark.usefixtures("unchanged")
@pytest.mark.parametrize(
    ("argv", "error"),
    [
        (["graph", "tiny.yaml", "-o", "tiny.yaml"], "tiny.yaml: error: this is the spec"),
        (["codegen", "tiny.yaml", "--backend", "torch", "-o", "/dev/null"], "/dev/null: error: "),
        (["build", "tiny.yaml", "--backend", "torch", "-o", "/proc/x.pt2"], "/proc/x.pt2: error:"),
        (["validate", "training.yaml"], "training.yaml:6:5: error: node name 'training'"),
        (["build", "training.yaml", "--backend", "torch"], "training.yaml:6:5: error: node name"),
        (["validate", "slash.yaml"], "slash.yaml:2:7: error: model name 'a/b' cannot be used"),
    ],
)
def test_each_refusal_in_a_process_of_its_own_within_budget(
    work: Path, argv: list[str], error: str
) -> None:
    """Exit status 2 and the one-line error, no traceback, within 500 MB and the CPU ceiling;
    the CPU time the command took is printed."""
    (work / "training.yaml").write_text(TINY.replace("name: conv", "name: training"))
    (work / "slash.yaml").write_text(TINY.replace("name: tiny", "name: a/b"))
    before = _children_cpu()
    result = subprocess.run(
        [sys.executable, "-m", "xgraph", *argv],
        capture_output=True,
        text=True,
        preexec_fn=_limits,
        check=False,
        timeout=600,  # stops a hang that takes no CPU, far above what a busy machine adds
    )
    spent = _children_cpu() - before
    print(f"refused in {spent:.3f} s of CPU with start-up")
    (work / "training.yaml").unlink()
    (work / "slash.yaml").unlink()
    assert result.returncode == 2, f"after {spent:.2f} s of CPU: {result.stderr}"
    assert result.stderr.startswith(error), result.stderr
    assert "Traceback" not in result.stderr
