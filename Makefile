# maildoctor: the two commands a newcomer runs are `make demo` and `make test`.
PYTHON  ?= python3
VENV    ?= .venv
BIN     := $(VENV)/bin
# A separate venv for the real Synapse used by conformance tests and benchmarks,
# so its pins never fight ours.
SYNAPSE_VENV    ?= .venv-synapse
SYNAPSE_VERSION ?= 1.163.2

.PHONY: demo test venv synapse system-deps lint typecheck bench clean

$(BIN)/maildoctor: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip
	$(BIN)/pip install -q -e '.[dev,twisted]'
	@touch $@

venv: $(BIN)/maildoctor

# The bundled example: a broken homeserver.yaml (the `smpt_pass` typo) checked, then
# probed against the built-in test SMTP server.
demo: venv
	@bash scripts/demo.sh $(BIN)

system-deps:
	@bash scripts/install-system-deps.sh

$(SYNAPSE_VENV)/bin/synapse_homeserver:
	$(PYTHON) -m venv $(SYNAPSE_VENV)
	$(SYNAPSE_VENV)/bin/pip install -q --upgrade pip
	$(SYNAPSE_VENV)/bin/pip install -q 'matrix-synapse==$(SYNAPSE_VERSION)'

synapse: $(SYNAPSE_VENV)/bin/synapse_homeserver

test: system-deps venv synapse
	MAILDOCTOR_SYNAPSE_PYTHON=$(abspath $(SYNAPSE_VENV))/bin/python $(BIN)/pytest $(PYTEST_ARGS)

lint: venv
	$(BIN)/ruff check src tests bench
	$(BIN)/mypy

bench: venv synapse
	MAILDOCTOR_SYNAPSE_PYTHON=$(abspath $(SYNAPSE_VENV))/bin/python $(BIN)/python bench/run_all.py

clean:
	rm -rf $(VENV) $(SYNAPSE_VENV) .pytest_cache .mypy_cache .hypothesis
