# Two commands do all the set-up: `make demo` and `make test` create .venv on first use.
# torch==2.13.0 is installed first and explicitly: it is the CPU build on this machine's disk,
# and any other torch requirement would download a multi-GB CUDA build.

PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.xgraph-installed
PYTEST_WORKERS ?= 2

.PHONY: demo test check lint format benchmark zoo clean

EXAMPLE_PLUGIN := examples/xgraph_example_ops

$(STAMP): pyproject.toml $(EXAMPLE_PLUGIN)/pyproject.toml Makefile
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet torch==2.13.0
	$(BIN)/python -m pip install --quiet -e '.[torch,keras,onnx,tune,dev]'
	# The example op plugin: the tests run the whole pipeline on its ops (its dependency,
	# xgraph, is the editable install above, hence --no-deps).
	$(BIN)/python -m pip install --quiet --no-deps -e $(EXAMPLE_PLUGIN)
	@command -v dot >/dev/null 2>&1 || { [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1 \
		&& (apt-get update -qq && apt-get install -y -qq graphviz >/dev/null) ; } \
		|| echo "note: Graphviz's dot is not installed; 'xgraph graph' can still write .dot files"
	@touch $(STAMP)

demo: $(STAMP)
	$(BIN)/xgraph summary specs/xception.yaml
	$(BIN)/xgraph parity specs/xception.yaml
	$(BIN)/xgraph parity specs/xception.yaml --numeric
	$(BIN)/xgraph codegen specs/xception.yaml --backend torch -o out/xception_torch.py
	$(BIN)/xgraph codegen specs/xception.yaml --backend keras -o out/xception_keras.py

benchmark: $(STAMP)
	$(BIN)/python benchmarks/bench_xception.py

zoo: $(STAMP)
	$(BIN)/python benchmarks/zoo.py

test: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/lint-imports --no-cache
	$(BIN)/mypy
	$(BIN)/python -m pytest -q -n $(PYTEST_WORKERS)

# The fast tier, for the edit loop: the linters and every test that imports no framework and
# trains nothing (tests/conftest.py: the tables, and the guard that fails a test importing one).
check: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/lint-imports --no-cache
	$(BIN)/mypy
	$(BIN)/python -m pytest -q -n $(PYTEST_WORKERS) --fast-tier

lint:
	$(BIN)/ruff check --fix . && $(BIN)/ruff format .

clean:
	rm -rf $(VENV) .pytest_cache .ruff_cache
