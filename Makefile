# maildoctor: the two commands a newcomer runs are `make demo` and `make test`.
PYTHON  ?= python3
VENV    ?= .venv
BIN     := $(VENV)/bin
# A separate venv for the real Synapse used by conformance tests and benchmarks,
# so its pins never fight ours.
SYNAPSE_VENV    ?= .venv-synapse
SYNAPSE_VERSION ?= 1.163.2
# The test Synapse seen with other packages in front of it: an older Twisted (and a treq
# older than Synapse requires), for `--synapse-python` against a different installation.
OLD_TWISTED_VENV ?= .venv-synapse-old-twisted
# The test Synapse with maildoctor installed beside it, for the Synapse module's tests.
MODULE_VENV ?= .venv-synapse-maildoctor

.PHONY: demo test venv synapse synapse-old-twisted synapse-with-maildoctor system-deps lint typecheck bench clean

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

# A small venv whose site-packages come before the Synapse venv's (a .pth file): Synapse
# itself is shared, Twisted 22.4.0 and treq 20.9.0 (Synapse wants >= 21.5.0) shadow its own.
$(OLD_TWISTED_VENV)/bin/python: $(SYNAPSE_VENV)/bin/synapse_homeserver
	$(PYTHON) -m venv $(OLD_TWISTED_VENV)
	$(SYNAPSE_VENV)/bin/python -c 'import sysconfig; print(sysconfig.get_paths()["purelib"])' \
	  > "$$($(OLD_TWISTED_VENV)/bin/python -c 'import sysconfig; print(sysconfig.get_paths()["purelib"])')/synapse-venv.pth"
	$(OLD_TWISTED_VENV)/bin/pip install -q --no-deps 'twisted==22.4.0' 'treq==20.9.0'

synapse-old-twisted: $(OLD_TWISTED_VENV)/bin/python

# The same overlay, with maildoctor (and its dependencies) installed in front of Synapse:
# what `pip install maildoctor` into Synapse's venv gives an admin.
$(MODULE_VENV)/bin/maildoctor: $(SYNAPSE_VENV)/bin/synapse_homeserver pyproject.toml
	$(PYTHON) -m venv $(MODULE_VENV)
	$(SYNAPSE_VENV)/bin/python -c 'import sysconfig; print(sysconfig.get_paths()["purelib"])' \
	  > "$$($(MODULE_VENV)/bin/python -c 'import sysconfig; print(sysconfig.get_paths()["purelib"])')/synapse-venv.pth"
	$(MODULE_VENV)/bin/pip install -q -e .
	@touch $@

synapse-with-maildoctor: $(MODULE_VENV)/bin/maildoctor

test: system-deps venv synapse synapse-old-twisted synapse-with-maildoctor
	MAILDOCTOR_SYNAPSE_PYTHON=$(abspath $(SYNAPSE_VENV))/bin/python \
	MAILDOCTOR_OLD_TWISTED_PYTHON=$(abspath $(OLD_TWISTED_VENV))/bin/python \
	MAILDOCTOR_SYNAPSE_MODULE_PYTHON=$(abspath $(MODULE_VENV))/bin/python \
	  $(BIN)/pytest $(PYTEST_ARGS)

lint: venv
	$(BIN)/ruff check src tests bench
	$(BIN)/mypy

bench: venv synapse
	MAILDOCTOR_SYNAPSE_PYTHON=$(abspath $(SYNAPSE_VENV))/bin/python $(BIN)/python bench/run_all.py

clean:
	rm -rf $(VENV) $(SYNAPSE_VENV) $(OLD_TWISTED_VENV) $(MODULE_VENV) .pytest_cache .mypy_cache .hypothesis
