"""Shared fixtures: the repository's paths, the CLI run in-process, the analysed Xception spec."""

from __future__ import annotations

import importlib.util
import json
import os
import shutil
import sys
import tempfile
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from xgraph.api import load
from xgraph.cli import main
from xgraph.ir.analysis import AnalysedGraph

ROOT = Path(__file__).resolve().parent.parent
SPECS = ROOT / "specs"
XCEPTION = SPECS / "xception.yaml"
SPEC_FILES = sorted(SPECS.glob("*.yaml"))
# What a thin variant file may hold: it names a base and sets its parameters' defaults.
_THIN_KEYS = frozenset({"xgraph", "name", "description", "extends", "params"})


def is_thin_variant(path: Path) -> bool:
    """A file that only `extends` another spec and sets parameters (efficientnet_b3.yaml):
    its graph is its base's definition at other parameters, so the slow per-spec checks
    (generated code, every rewrite pass) run on the definitions, and thin files get the
    structural ones (against Keras, the gallery, the fuzzer)."""
    import yaml

    document = yaml.safe_load(path.read_text())
    return "extends" in document and set(document) <= _THIN_KEYS


DEFINITION_SPECS = [path for path in SPEC_FILES if not is_thin_variant(path)]


@dataclass(frozen=True)
class CliResult:
    """What one in-process run of the `xgraph` command returned and printed."""

    code: int
    out: str
    err: str

    def json(self) -> Any:
        return json.loads(self.out)


CliRunner = Callable[..., CliResult]


@pytest.fixture
def run_cli(capsys: pytest.CaptureFixture[str]) -> CliRunner:
    """Run `xgraph ARGS...` through `xgraph.cli.main`, capturing its exit status and output."""

    def run(*args: str | Path) -> CliResult:
        capsys.readouterr()
        code = main([str(arg) for arg in args])
        captured = capsys.readouterr()
        return CliResult(code, captured.out, captured.err)

    return run


@pytest.fixture(scope="session")
def root() -> Path:
    """The repository's root: the CLI's subprocesses run there."""
    return ROOT


@pytest.fixture(scope="session")
def xception_path() -> Path:
    return XCEPTION


@pytest.fixture(scope="session")
def xception() -> AnalysedGraph:
    """specs/xception.yaml with its default parameters, compiled once per session."""
    return load(XCEPTION)


@pytest.fixture(scope="session")
def dot_program() -> str:
    """Graphviz's `dot`, which `make test` installs; its absence is a failure, not a skip."""
    program = shutil.which("dot")
    assert program, "Graphviz's 'dot' is not on PATH: install graphviz (apt-get install graphviz)"
    return program


def import_source(source: str, directory: Path, name: str) -> Any:
    """Generated source written to a file and imported from there (tests of codegen)."""
    path = directory / f"{name}.py"
    path.write_text(source)
    spec = importlib.util.spec_from_file_location(name, path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


# --- Test tiers ---------------------------------------------------------------------------------
# `make test` runs every test; `make check` (`pytest --fast-tier`) runs those that import no
# framework and train nothing, for the edit loop. The tables below say which tests need a
# framework or train, by module: EVERY_TEST, or the test functions (all their parameters) that
# do. A test needs a framework if it imports one in its own process or in a subprocess it starts
# (`xgraph build`, `parity`, `codegen`, a framework's weight files). The spec folders' parity and
# numeric items are marked by xgraph's pytest plugin itself. In the fast tier a test that imports
# a framework fails (FrameworkGuard), so the tables stay true as the suite grows.

FRAMEWORKS = frozenset({"torch", "tensorflow", "keras", "onnx", "onnxruntime", "openvino"})
FAST_TIER = "not framework and not training"
EVERY_TEST = ("*",)

FRAMEWORK_TESTS: dict[str, tuple[str, ...]] = {
    "test_architecture.py": (
        "test_the_core_holds_no_table_of_framework_classes",
        "test_reading_rules_and_keras_files_imports_no_framework",
    ),
    "test_backends.py": (
        "test_every_backend_lowers_every_op_and_converts_its_weights",
        "test_gelu_tanh_is_the_tanh_approximation",
        "test_one_op_graph_matches_analysis_in_both_backends",
        "test_same_seed_gives_both_backends_identical_initial_weights",
        "test_torch_lowering_pads_strided_same_from_the_input_size",
        "test_torch_lowering_translates_keras_batch_norm_terms",
    ),
    "test_adding_an_op.py": ("test_the_op_builds_and_agrees_in_every_backend",),
    "test_build_needs.py": (
        "test_every_accepted_name_builds_in_every_backend_and_in_the_generated_code",
        "test_keras_builds_and_runs_every_model_name_the_rule_accepts",
        "test_keras_really_fails_on_every_refused_name",
        "test_spec_text_cannot_inject_code_into_the_generated_module",
        "test_the_torch_list_is_every_attribute_of_the_model_torch_builds",
        "test_the_torch_model_class_hides_nothing_the_module_uses",
        "test_torch_really_fails_on_every_refused_name",
    ),
    "test_cli.py": (
        "test_build_without_output_writes_the_spec_name_in_the_current_folder",
        "test_json_output_fits_its_published_schema",
        "test_one_seed_gives_both_backends_the_same_weights_from_the_cli",
        "test_parity_json_lists_differences_that_fit_the_schema",
    ),
    "test_codegen.py": (  # the code printers import the framework they print for
        "test_a_block_named_like_a_module_method_gets_another_name",
        "test_convnext_reads_as_written_by_hand",
        "test_every_op_generates_code_that_computes_the_build",
        "test_generated_models_equal_the_builds",
        "test_header_names_spec_parameters_and_version",
        "test_imports_only_the_framework",
        "test_keras_names_never_shadow_the_modules_the_code_uses",
        "test_keras_takes_a_keyword_as_a_layer_name",
        "test_nasnet_reads_as_written_by_hand",
        "test_value_only_parameters_become_keyword_arguments",
        "test_xception_module_is_current",
        "test_xception_module_is_short_stable_and_ruff_clean",
    ),
    "test_codegen_api.py": EVERY_TEST,
    "test_codegen_init.py": (
        "test_generated_kernels_have_the_spec_initialisers_variance",
        "test_generated_biases_are_zero_and_batch_norms_the_identity",
        "test_the_generated_module_says_how_it_initialises",
        "test_generated_keras_kernels_have_the_spec_initialisers_variance",
    ),
    "test_codegen_sizes.py": EVERY_TEST,
    "test_docs.py": ("test_documented_example",),  # examples run build, parity, codegen
    "test_fold_batch_norm.py": (
        "test_folded_pair_computes_the_same_function",
        "test_xception_folds_all_forty_batch_norms_in_both_backends",
    ),
    "test_fuzz_weights.py": EVERY_TEST,
    "test_import_keras.py": EVERY_TEST,
    "test_import_onnx.py": EVERY_TEST,
    "test_import_hostile.py": ("test_a_hostile_onnx_file_is_refused_within_the_budgets",),
    "test_groups_cropping_scaled_add.py": EVERY_TEST,
    "test_hostile_weights.py": EVERY_TEST,
    "test_keras_app_formats.py": EVERY_TEST,
    "test_keras_reference.py": EVERY_TEST,
    "test_keras_weight_files.py": EVERY_TEST,
    "test_multipliers.py": ("test_half_width_xception_agrees_in_every_backend",),
    "test_onnx.py": EVERY_TEST,
    "test_op_plugins.py": (
        "test_an_op_a_backend_cannot_lower_is_a_located_error",
        "test_an_op_sharing_a_keras_class_does_not_take_over_keras_files",
        "test_builds_load_without_xgraph_and_compute_the_spec",
        "test_parameter_and_numeric_parity",
        "test_weights_round_trip_canonical_torch_keras",
    ),
    "test_optimize.py": EVERY_TEST,
    "test_outputs.py": ("test_every_artifact_gets_the_same_mode",),
    "test_pytest_plugin.py": (
        "test_the_plugin_checks_a_users_folder_and_names_the_divergent_node",
    ),
    "test_saved_new_ops.py": EVERY_TEST,
    "test_testing_api.py": (
        "test_a_check_passes_on_a_correct_op",
        "test_a_check_fails_naming_the_backend_and_weight",
        "test_the_example_plugin_runs_the_checks_in_its_own_folder",
    ),
    "test_threads.py": ("test_this_suites_workers_keep_to_their_share_in_every_engine",),
    "test_torch_layers.py": EVERY_TEST,
    "test_weights.py": EVERY_TEST,
    "test_xception_backends.py": EVERY_TEST,
    "test_zoo.py": (
        "test_mobilenet_width_multiplier_counts",
        "test_reshape_between_images_matches_keras",
        "test_spec_is_the_keras_model",
    ),
    "test_zoo_modern.py": (
        "test_structure_is_the_keras_model",
        "test_numbers_are_the_keras_models",
    ),
    "test_zoo_classic.py": (
        "test_structure_is_the_keras_model",
        "test_numbers_are_the_keras_models",
    ),
}

# Tests that train (a trainer's steps, `xgraph train`, training parity): `training` and
# `framework` both.
TRAINING_TESTS: dict[str, tuple[str, ...]] = {
    "test_first_day.py": EVERY_TEST,
    "test_isa_caps.py": ("test_key_cases_pass_under_the_cap",),
    "test_predict.py": (
        "test_a_run_records_its_classes_and_preprocessing_everywhere",
        "test_predict_gives_the_same_classes_from_every_format",
        "test_predict_prints_the_top_classes_as_text",
    ),
    "test_train_cli.py": EVERY_TEST,
    "test_train_precision.py": EVERY_TEST,
    "test_train_launch.py": (
        "test_runs_with_short_and_empty_shares_end_cleanly",
        "test_a_killed_worker_is_named_the_other_stopped_and_resume_completes",
        "test_a_failure_after_training_says_what_was_written",
    ),
    "test_train_keras.py": EVERY_TEST,
    "test_train_torch.py": EVERY_TEST,
    "test_training_new_ops.py": EVERY_TEST,
    "test_training_parity.py": EVERY_TEST,
    "test_tune.py": (  # trials train in torch or Keras
        "test_a_search_on_the_digits_prunes_and_its_best_spec_trains_again",
        "test_two_workers_share_a_journal_and_one_killed_leaves_a_failed_trial",
        "test_a_study_whose_every_trial_fails_exits_1",
        "test_postgresql_studies_are_shared_between_workers",
    ),
    "test_xception_backends.py": (
        "test_training_step_changes_weights_in_torch",
        "test_training_step_changes_weights_in_keras",
    ),
}


def _listed(table: dict[str, tuple[str, ...]], module: str, function: str) -> bool:
    names = table.get(module, ())
    return names == EVERY_TEST or function in names


def tier_markers(module: str, function: str) -> list[str]:
    """The tier markers of test `function` in test `module`, from the tables."""
    if _listed(TRAINING_TESTS, module, function):
        return ["framework", "training"]
    return ["framework"] if _listed(FRAMEWORK_TESTS, module, function) else []


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption(
        "--fast-tier",
        action="store_true",
        help=f"run only the tests that need no framework ({FAST_TIER}), failing any that "
        "imports one (make check)",
    )


def pytest_configure(config: pytest.Config) -> None:
    """The fast tier: the marker selection added to any -m given, and the guard."""
    if config.getoption("fast_tier"):
        given = config.option.markexpr
        config.option.markexpr = f"({given}) and {FAST_TIER}" if given else FAST_TIER
        config.pluginmanager.register(FrameworkGuard(), "xgraph-framework-guard")


def pytest_ignore_collect(collection_path: Path, config: pytest.Config) -> bool | None:
    """In the fast tier a module whose every test needs a framework is not even imported:
    its imports (torch at the top) would cost seconds and trip the guard."""
    name = collection_path.name
    whole = EVERY_TEST in (FRAMEWORK_TESTS.get(name), TRAINING_TESTS.get(name))
    return True if whole and config.getoption("fast_tier") else None


# The longest tests (a minute or more each: whole tune searches, the oneDNN caps, killed
# workers), started first: pytest-xdist hands out tests in collection order, and one of these
# begun last would keep the suite waiting on one core while the other idles.
SLOWEST_FIRST = (
    "test_tune.py::test_a_search_on_the_digits_prunes_and_its_best_spec_trains_again",
    "test_isa_caps.py::test_key_cases_pass_under_the_cap",
    "test_tune.py::test_two_workers_share_a_journal_and_one_killed_leaves_a_failed_trial",
    "test_train_launch.py::test_a_killed_worker_is_named_the_other_stopped_and_resume_completes",
)


def _slowness_rank(item: pytest.Item) -> int:
    name = f"{item.path.name}::{getattr(item, 'originalname', item.name)}"
    return SLOWEST_FIRST.index(name) if name in SLOWEST_FIRST else len(SLOWEST_FIRST)


@pytest.hookimpl(tryfirst=True)  # before pytest's own -m deselection reads the markers
def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Mark each test from the tier tables (the spec items come marked by the plugin), and
    move the slowest to the front (a stable sort: the rest keep their order)."""
    for item in items:
        if isinstance(item, pytest.Function):
            for marker in tier_markers(item.path.name, item.originalname):
                item.add_marker(marker)
    items.sort(key=_slowness_rank)


def loaded_frameworks() -> frozenset[str]:
    """The frameworks this process has imported (a module stays in sys.modules)."""
    return frozenset(name for name in FRAMEWORKS if name in sys.modules)


# Put first on a fast-tier test's subprocesses' PYTHONPATH: at exit, a subprocess that
# imported a framework says so in the log the guard reads (`python -I` or a PYTHONPATH of the
# test's own escapes it).
SUBPROCESS_REPORTER = f"""\
import atexit, json, os, sys

_TEST, _LOG = os.environ.get("PYTEST_CURRENT_TEST"), os.environ.get("XGRAPH_FAST_TIER_LOG")


def _report():
    found = sorted(name for name in {sorted(FRAMEWORKS)!r} if name in sys.modules)
    if found:
        with open(_LOG, "a") as log:
            log.write(json.dumps({{"test": _TEST, "argv": sys.argv[:3], "found": found}}) + "\\n")


if _TEST and _LOG:
    atexit.register(_report)
"""


class FrameworkGuard:
    """Keeps the fast tier honest: a test that imports a framework, in its process or in a
    subprocess, fails naming it (list it in the tables above), and so does a module that
    imports one when collected."""

    def __init__(self) -> None:
        early = loaded_frameworks()
        if early:
            raise pytest.UsageError(f"--fast-tier: {sorted(early)} imported before collection")
        self.folder = Path(tempfile.mkdtemp(prefix="xgraph-fast-tier-"))
        (self.folder / "sitecustomize.py").write_text(SUBPROCESS_REPORTER)
        self.log = self.folder / "imports.jsonl"
        self.log.touch()
        self.read = 0
        self.before = early
        self.saved = {name: os.environ.get(name) for name in ("PYTHONPATH", "XGRAPH_FAST_TIER_LOG")}
        paths = [str(self.folder), os.environ.get("PYTHONPATH")]
        os.environ["PYTHONPATH"] = os.pathsep.join(path for path in paths if path)
        os.environ["XGRAPH_FAST_TIER_LOG"] = str(self.log)

    def pytest_unconfigure(self) -> None:
        for name, value in self.saved.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value
        shutil.rmtree(self.folder, ignore_errors=True)

    def imported(self) -> list[str]:
        """The frameworks imported since the last look, in this process or a subprocess."""
        now = loaded_frameworks()
        found = [f"{name} (in the test process)" for name in sorted(now - self.before)]
        self.before = now
        with self.log.open() as log:
            log.seek(self.read)
            lines = log.readlines()
            self.read = log.tell()
        for line in lines:
            entry = json.loads(line)
            found.append(f"{', '.join(entry['found'])} (in subprocess {' '.join(entry['argv'])})")
        return list(dict.fromkeys(found))  # one line for many runs of the same command

    @pytest.hookimpl(wrapper=True)
    def pytest_make_collect_report(self, collector: pytest.Collector) -> Any:
        report = yield
        found = self.imported()
        if found and not report.failed:
            report.outcome = "failed"
            report.longrepr = f"--fast-tier: collecting {collector.nodeid} imported {found}"
        return report

    @pytest.hookimpl(wrapper=True)
    def pytest_runtest_makereport(self, item: pytest.Item, call: pytest.CallInfo) -> Any:
        report = yield
        found = self.imported()
        if found and not report.failed:
            report.outcome = "failed"
            report.longrepr = (
                f"--fast-tier: {item.nodeid} imported {'; '.join(found)}: list it in "
                "FRAMEWORK_TESTS or TRAINING_TESTS (tests/conftest.py), or import no framework"
            )
        return report


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    """Name the oneDNN instruction-set caps run and skipped (tests/test_isa_caps.py)."""
    from isa_caps import write_caps_summary

    write_caps_summary(terminalreporter)


@pytest.fixture(scope="module")
def keras_run(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Any]:
    """The Keras model of the zoo variant `request.param` (tests/zoo_harness.py), randomised,
    saved, and run once for the module's tests of it."""
    from tests.zoo_harness import keras_facts

    folder = tmp_path_factory.mktemp(request.param.id)
    yield keras_facts(request.param, folder)
    shutil.rmtree(folder, ignore_errors=True)
