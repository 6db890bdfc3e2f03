"""Budgets: every small input that asked for hours or gigabytes ends fast, in a located error
naming the limit, and every limit can be raised from the command line and the API.

The hostile cases run in one child process under resource limits (500 MB of address space,
and a CPU limit that stops a hang). What bounds them is work: each must be refused at the
limit it names, before doing what it asked. Time is only a ceiling against runaway work
(CPU_CEILING_S, far above what any case takes, each test printing its slowest figure), so a
slow or loaded machine passes and a missing budget, which costs minutes or hours, still fails.
"""

from __future__ import annotations

import dataclasses
import json
import re
import resource
import subprocess
import sys
import textwrap
from dataclasses import dataclass
from pathlib import Path

import pytest
from fuzzing import CPU_CEILING_S

from xgraph.api import load, loads
from xgraph.budgets import DEFAULT_BUDGETS, LIMIT_NAMES, Budgets, parse_limits
from xgraph.cli import main
from xgraph.errors import SpecError

ROOT = Path(__file__).resolve().parent.parent
# CPU_CEILING_S (tests/fuzzing.py) bounds one case with the child's start-up: the slowest took
# 0.28 s (Intel Xeon, 2026-12-03), and validating the 20,000-node spec 0.44 s as a whole command.
MEMORY_BUDGET = 500 << 20

HEAD = """\
xgraph: 1
name: hostile
params:
  n: {type: int, default: 999999999999999999}
  f: {type: float, default: 1.0e+300}
  s: {type: str, default: ab}
inputs:
  - {name: x, shape: [8, 8, 3]}
"""


def spec(nodes: str, blocks: str = "", head: str = HEAD) -> str:
    """A spec: `head`, then `blocks` and `nodes` (each given as the YAML lines under it)."""
    parts = [head]
    if blocks:
        parts.append("blocks:\n" + textwrap.indent(textwrap.dedent(blocks), "  "))
    parts.append("nodes:\n" + textwrap.indent(textwrap.dedent(nodes), "  "))
    return "".join(parts)


def doubling_chain(levels: int, operation: str, kind: str, start: str) -> str:
    """Blocks that each pass their parameter `v` on, doubled (or squared) by `operation`."""
    blocks = [
        f"b{level}:\n  params: {{v: {{type: {kind}}}}}\n  nodes:\n"
        f'    - {{use: b{level + 1}, name: "${{name}}_i", args: {{v: "${{{operation}}}"}}}}\n'
        for level in range(levels)
    ]
    blocks.append(
        f"b{levels}:\n  params: {{v: {{type: {kind}}}}}\n  nodes:\n"
        '    - {name: "${name}_n", op: activation, activation: relu}\n'
    )
    return spec(f"- {{use: b0, name: top, args: {{v: {start}}}}}\n", "".join(blocks))


NESTED_REPEAT_OFF = spec(
    "- {use: r0, name: top}\n- {name: out, op: activation, activation: relu}\n",
    """\
    r0:
      nodes: [{use: r1, name: "${name}_${i}", repeat: 100000}]
    r1:
      nodes: [{use: r2, name: "${name}_${i}", repeat: 100000}]
    r2:
      nodes: [{use: r3, name: "${name}_${i}", repeat: 100000}]
    r3:
      nodes: [{op: activation, activation: relu, when: false}]
    """,
)


def at_node_limit(nodes: int) -> str:
    """A spec of exactly `nodes` nodes: the input, four nodes, then five-node blocks."""
    units, rest = divmod(nodes - 1, 5)
    head_nodes = "- {op: activation, activation: relu}\n" * rest
    return spec(
        head_nodes + f'- {{use: unit, name: "u${{i}}", repeat: {units}, args: {{filters: 4}}}}\n',
        """\
        unit:
          params: {filters: {type: int}}
          nodes:
            - {name: "${name}_conv", op: conv2d, filters: "${filters}", kernel_size: 1}
            - {name: "${name}_bn", op: batch_norm}
            - {name: "${name}_relu", op: activation, activation: relu}
            - {name: "${name}_add", op: add, inputs: ["${name}_relu", "${input}"]}
            - {name: "${name}_out", op: activation, activation: relu}
        """,
        head=HEAD.replace("[8, 8, 3]", "[2, 2, 4]"),
    )


def chain(operator: str, count: int) -> str:
    return operator.join(["1"] * count)


BIG = "9" * 5000  # more digits than Python prints (4300)
HUGE_LIMITS = ["--limit", "integer_digits=4000"]


@dataclass(frozen=True)
class Case:
    """One command on one spec: the limit its error must name (None: it must succeed), and
    the `LINE:COL` its error must be located at (None: any location in the spec)."""

    name: str
    text: str | None  # the spec; None: `argv` names its input itself
    limit: str | None
    argv: tuple[str, ...] = ()
    where: str | None = None
    message: str = ""  # a part of the error message, where no limit is named

    def command(self, spec_path: Path) -> list[str]:
        return ["validate", str(spec_path), *self.argv] if self.text is not None else [*self.argv]


CASES = [
    # Resource exhaustion from small inputs
    Case("string_doubling", doubling_chain(40, "v + v", "str", "ab"), "value_length"),
    Case("integer_squaring", doubling_chain(40, "v * v", "int", "3"), "integer_digits"),
    Case("integer_doubling", doubling_chain(70, "v + v", "int", "3"), "integer_digits"),
    Case("nested_repeat_switched_off", NESTED_REPEAT_OFF, "expansion_steps"),
    Case("repeat_of_a_billion", spec('- {use: r, name: "r${i}", repeat: 1000000000}\n',
         "r:\n  nodes: [{op: activation, activation: relu}]\n"), "expansion_steps", where="13:37"),
    Case("dev_zero", None, "source_bytes", ("validate", "/dev/zero"), where="1:1"),
    Case("one_node_over_the_limit", at_node_limit(DEFAULT_BUDGETS.nodes + 1), "nodes"),
    Case("string_formatted_into_a_long_name",
         spec('- {name: "a${s}${s}", op: activation, activation: relu}\n'),
         "value_length", ("--set", f"s={'x' * 600}"), message="more than 1,000 characters"),
    Case("a_list_printed_long",
         spec('- {name: "a${[[s, s, s, s, s], [s, s, s, s, s]]}", op: dense, units: 1}\n'),
         "value_length", ("--set", f"s={'y' * 200}")),
    Case("long_string_parameter", spec("- {op: dense, units: 1}\n"), "value_length",
         ("--set", f"s={'z' * 5000}"), where=None),
    # Tracebacks from expressions
    Case("chain_of_plus", spec(f'- {{op: dense, units: "${{{chain("+", 3000)}}}"}}\n'),
         "expression_depth", where="10:24"),
    Case("chain_of_not", spec(f'- {{op: dense, units: 1, when: "${{{"not " * 3000}true}}"}}\n'),
         "expression_depth", where="10:33"),
    Case("chain_of_minus", spec(f'- {{op: dense, units: "${{{"-" * 3000}1}}"}}\n'),
         "expression_depth"),
    Case("nested_parentheses", spec(f'- {{op: dense, units: "${{{"(" * 500}1{")" * 500}}}"}}\n'),
         "expression_depth"),
    Case("integer_too_large_for_a_float",
         spec('- {op: dense, units: "${int(n / 3)}"}\n').replace(str(10**18 - 1), BIG[:3000]),
         None, tuple(HUGE_LIMITS), where="10:24", message="gives a number out of range"),
    Case("float_overflow_to_int", spec('- {op: dense, units: "${int(f * f)}"}\n'), None,
         where="10:24", message="int() of inf is not a whole number"),
    Case("round_of_a_huge_float", spec('- {op: dense, units: "${round(f)}"}\n'), "integer_digits"),
    Case("integer_literal_of_5000_digits", spec(f"- {{op: dense, units: {BIG}}}\n"),
         "integer_digits", where="10:24"),
    Case("name_printing_a_huge_integer", spec('- {name: "a${n * n}", op: dense, units: 1}\n'),
         "integer_digits", where="10:12"),
    Case("when_printing_a_huge_integer", spec('- {op: dense, units: 1, when: "${n * n}"}\n'),
         "integer_digits"),
    Case("repeat_of_a_huge_integer",
         spec('- {use: r, name: "r${i}", repeat: "${n * n}"}\n',
              "r:\n  nodes: [{op: dense, units: 1}]\n"),
         "integer_digits"),
    Case("error_message_printing_a_huge_integer",
         spec('- {op: dense, units: 1, when: "${n}"}\n').replace("999999999999999999", BIG[:4000]),
         None, tuple(HUGE_LIMITS), message="'when' must be true or false"),
    Case("set_of_a_huge_integer", spec("- {op: dense, units: 1}\n"), "integer_digits",
         ("--set", f"n={BIG}"), where=None),
    Case("nul_in_the_yaml", HEAD.replace("name: hostile", "name: host\x00ile") + "nodes: []\n",
         None, where="2:11", message="control character U+0000"),
    Case("bel_in_the_yaml", HEAD + "nodes:\n  - {op: dense, units: 1, name: \"a\x07\"}\n",
         None, where="10:35", message="control character U+0007"),
    # Smaller
    Case("set_twice", spec("- {op: dense, units: 1}\n"), None, ("--set", "n=1", "--set", "n=2"),
         message="--set sets 'n' twice"),
    Case("empty_model_name", spec("- {op: dense, units: 1}\n").replace("name: hostile", 'name: ""'),
         None, where="2:7", message="the model's 'name' is empty"),
    # Specs that validate but do not build: weights and activations beyond memory
    Case("filters_in_the_billions",
         spec("- {op: conv2d, filters: 3000000000, kernel_size: 3}\n"), "activation_elements",
         where="10:5"),
    Case("units_in_the_billions",
         spec("- {op: global_avg_pool}\n- {op: dense, units: 3000000000}\n"),
         "activation_elements", where="11:5"),
    Case("a_dense_kernel_too_large",
         spec("- {op: global_avg_pool}\n- {op: dense, units: 200000000}\n"), "param_elements",
         where="11:5"),
    Case("many_large_layers", spec('- {use: wide, name: "w${i}", repeat: 4}\n',
         "wide:\n  nodes: [{op: conv2d, filters: 20000, kernel_size: 1}]\n"),
         "total_param_elements"),
    Case("huge_input", spec("- {op: activation, activation: relu}\n").replace(
         "[8, 8, 3]", "[100000, 100000, 3]"), "activation_elements", where="8:5"),
    # Accepted, within the budgets
    Case("at_the_node_limit", at_node_limit(DEFAULT_BUDGETS.nodes), None),
    Case("a_refused_spec_with_the_limit_raised", at_node_limit(DEFAULT_BUDGETS.nodes + 1), None,
         ("--limit", f"nodes={DEFAULT_BUDGETS.nodes + 1}")),
]  # fmt: skip


CHILD = """
import contextlib, io, json, resource, sys, time
from xgraph.cli import main

cases = json.load(sys.stdin)
resource.setrlimit(resource.RLIMIT_AS, (MEMORY, MEMORY))
resource.setrlimit(resource.RLIMIT_CPU, (CPU_CAP, CPU_CAP))
results = {"startup": time.process_time(), "cases": []}
for name, argv in cases:
    err = io.StringIO()
    started = time.process_time()
    try:
        with contextlib.redirect_stderr(err), contextlib.redirect_stdout(io.StringIO()):
            code = main(argv)
    except BaseException as exc:  # anything but an exit status is a failure to report
        code = repr(exc)[:300]
    results["cases"].append([name, code, err.getvalue()[-2000:], time.process_time() - started])
print(json.dumps(results))
"""


def run_in_one_child(folder: Path) -> dict[str, tuple[int | str, str, float]]:
    """Every case run once, in one child process under the memory and CPU limits: its exit
    status (or the exception that escaped), its stderr, and its CPU time with the child's
    start-up."""
    commands = []
    for case in CASES:
        path = folder / f"{case.name}.yaml"
        if case.text is not None:
            path.write_text(case.text, encoding="utf-8")
        commands.append((case.name, case.command(path)))
    cap = int(3 * CPU_CEILING_S)  # stops a hang; all the cases take about 2 s together
    code = CHILD.replace("MEMORY", str(MEMORY_BUDGET)).replace("CPU_CAP", str(cap))
    done = subprocess.run(
        [sys.executable, "-c", code],
        input=json.dumps(commands),
        capture_output=True,
        text=True,
        cwd=folder,
        timeout=600,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    results = json.loads(done.stdout)
    startup = results["startup"]
    return {name: (code, err, startup + cpu) for name, code, err, cpu in results["cases"]}


def problem(case: Case, code: int | str, err: str, cpu: float) -> str | None:
    """What is wrong with one case's outcome, or None."""
    if cpu >= CPU_CEILING_S:
        return f"took {cpu:.2f} s of CPU, over the {CPU_CEILING_S:g} s ceiling"
    if "Traceback" in err or not isinstance(code, int):
        return f"ended in {code}: {err}"
    if case.limit is None and not case.message:
        return None if (code, err) == (0, "") else f"was refused: {err}"
    first = err.splitlines()[0] if err else ""
    source = "/dev/zero" if case.text is None else f"{case.name}.yaml"
    expected = [
        (code == 2, "exit status 2"),
        (re.match(rf"^(--set|\S*{re.escape(source)}):\d+:\d+: error: ", first), "a location"),
        (case.where is None or f"{source}:{case.where}: error: " in first, case.where),
        (case.limit is None or first.endswith(f"(limit '{case.limit}')"), case.limit),
        (case.limit is None or f"--limit {case.limit}=N" in err, "the hint"),
        (case.message in first, case.message),
    ]
    missing = [str(what) for met, what in expected if not met]
    return f"lacks {', '.join(missing)}: {err}" if missing else None


def test_hostile_inputs_end_cleanly_within_the_budgets(tmp_path: Path) -> None:
    """Each case: exit status 2 and one located error naming its limit (or success, for
    those within the budgets), no traceback, within the memory budget and the CPU ceiling."""
    results = run_in_one_child(tmp_path)
    slowest = max(results, key=lambda name: results[name][2])
    print(f"slowest case: {slowest}, {results[slowest][2]:.3f} s of CPU with start-up")
    problems = {case.name: found for case in CASES if (found := problem(case, *results[case.name]))}
    assert not problems, "\n".join(f"{name}: {found}" for name, found in problems.items())


def test_no_output_is_written_for_a_spec_over_budget(tmp_path: Path) -> None:
    spec_path = tmp_path / "repeat.yaml"
    spec_path.write_text(NESTED_REPEAT_OFF)
    output = tmp_path / "out.dot"
    assert main(["graph", str(spec_path), "-o", str(output)]) == 2
    assert not output.exists()


def _children_cpu() -> float:
    """CPU seconds of this process's finished children: the one just run, by difference."""
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def test_validate_at_the_node_limit_fits_the_budget_in_a_real_process(tmp_path: Path) -> None:
    """The whole command, start-up included, under RLIMIT_AS and a CPU ceiling (RLIMIT_CPU);
    the CPU time it took is printed."""
    spec_path = tmp_path / "limit.yaml"
    spec_path.write_text(at_node_limit(DEFAULT_BUDGETS.nodes))
    ceiling = int(CPU_CEILING_S)
    limits = (
        "import resource, runpy, sys;"
        f"resource.setrlimit(resource.RLIMIT_CPU, ({ceiling}, {ceiling}));"
        f"resource.setrlimit(resource.RLIMIT_AS, ({MEMORY_BUDGET}, {MEMORY_BUDGET}));"
        "sys.argv = ['xgraph', 'validate', sys.argv[1]];"
        "runpy.run_module('xgraph', run_name='__main__')"
    )
    before = _children_cpu()
    done = subprocess.run(
        [sys.executable, "-c", limits, str(spec_path)], capture_output=True, text=True, timeout=600
    )
    spent = _children_cpu() - before
    print(f"validate at the node limit: {spent:.3f} s of CPU with start-up")
    assert (done.returncode, done.stderr) == (0, ""), f"after {spent:.2f} s of CPU"
    assert done.stdout.startswith(f"{spec_path}: ok ({DEFAULT_BUDGETS.nodes} nodes")


# Setting the limits


def test_limits_are_set_from_the_command_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    spec_path = tmp_path / "wide.yaml"
    spec_path.write_text(spec("- {op: global_avg_pool}\n- {op: dense, units: 1000000}\n"))
    assert main(["validate", str(spec_path), "--limit", "param_elements=1000"]) == 2
    err = capsys.readouterr().err
    assert err.splitlines() == [
        f"{spec_path}:11:5: error: node 'dense': weight 'kernel' of shape (3, 1000000) has "
        "3,000,000 elements, more than 1,000 (limit 'param_elements')",
        "  hint: raise it if this is meant: --limit param_elements=N, or "
        "Budgets(param_elements=N) in the Python API",
    ]
    assert main(["validate", str(spec_path), "--limit", "param_elements=3_000_000"]) == 0


@pytest.mark.parametrize(
    ("argument", "expected"),
    [
        ("nodez=5", "--limit:1:1: error: unknown limit 'nodez' (limits: source_bytes,"),
        ("nodes", "--limit:1:1: error: --limit needs NAME=VALUE, got 'nodes'"),
        ("nodes=lots", "--limit:1:7: error: limit 'nodes' needs a whole number, got 'lots'"),
        ("nodes=0", "--limit:1:7: error: limit 'nodes' must be a whole number >= 1, got 0"),
        ("integer_digits=5000", "--limit:1:16: error: limit 'integer_digits' can be at most 4,000"),
    ],
)
def test_a_bad_limit_is_a_located_error(
    capsys: pytest.CaptureFixture[str], argument: str, expected: str
) -> None:
    assert main(["validate", str(ROOT / "specs" / "xception.yaml"), "--limit", argument]) == 2
    err = capsys.readouterr().err
    assert err.startswith(expected), err
    if argument.startswith("nodez"):
        assert "  hint: did you mean 'nodes'?" in err


def test_a_limit_set_twice_is_an_error() -> None:
    with pytest.raises(SpecError, match="--limit sets 'nodes' twice"):
        parse_limits(["nodes=10", "nodes=20"])


def test_the_api_takes_budgets() -> None:
    text = spec('- {use: r, name: "r${i}", repeat: 30}\n', "r:\n  nodes: [{op: dense, units: 2}]\n")
    assert len(loads(text).graph) == 31
    with pytest.raises(SpecError) as caught:
        loads(text, budgets=Budgets(nodes=20))
    assert caught.value.message == "the spec expands to more than 20 nodes (limit 'nodes')"
    assert caught.value.location is not None
    assert len(load(ROOT / "specs" / "xception.yaml", budgets=Budgets(nodes=200)).graph) == 134
    with pytest.raises(SpecError, match="limit 'nodes'"):
        load(ROOT / "specs" / "xception.yaml", budgets=Budgets(nodes=100))


def test_budgets_refuse_values_that_are_no_limit() -> None:
    with pytest.raises(ValueError, match="must be a whole number >= 1"):
        Budgets(nodes=0)
    with pytest.raises(ValueError, match="can be at most 200"):
        Budgets(expression_depth=1000)


def test_the_defaults_leave_every_spec_here_far_below_each_limit() -> None:
    """Real networks are far from the limits: a tenth of each budget is still enough, and half
    of the parameter budget (keras.applications' largest, ConvNeXtXLarge, holds 350,196,968
    parameters: 35% of the default)."""
    tight = Budgets(
        **{
            name: max(1, getattr(DEFAULT_BUDGETS, name) // 10)
            for name in ("yaml_values", "expansion_steps", "nodes", "activation_elements")
        },
        total_param_elements=DEFAULT_BUDGETS.total_param_elements // 2,
    )
    for path in sorted((ROOT / "specs").glob("*.yaml")):
        load(path, budgets=tight)


def test_every_limit_is_documented() -> None:
    safety = (ROOT / "docs" / "spec.md").read_text().split("## Safety limits")[1]
    for limit in dataclasses.fields(Budgets):
        assert f"`{limit.name}`" in safety, f"docs/spec.md does not list the limit {limit.name}"
    assert len(LIMIT_NAMES) == len(dataclasses.fields(Budgets))
