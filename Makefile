# Deep RNN book: build, test and read. `make` alone lists the targets.
#
# Everything runs inside .venv/, created from requirements/ on first use and
# re-installed when a requirements file changes. Python 3.11 is required.

.DEFAULT_GOAL := help
SHELL := /bin/bash
.SHELLFLAGS := -eu -o pipefail -c

PYTHON ?= $(shell command -v python3.11 || command -v python3 || echo python3)
VENV ?= .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
REQUIREMENTS := $(wildcard requirements/*.txt)

# Tests and CI read The Time Machine from here when it exists (no download).
SHARED_DATA := $(abspath ../shared/data)
ifneq ($(wildcard $(SHARED_DATA)/timemachine.txt),)
export D2L_DATA_DIR ?= $(SHARED_DATA)
endif
export TF_CPP_MIN_LOG_LEVEL ?= 2
# Epochs per training cell when CI executes the notebooks (`make test-notebooks`).
NB_EPOCHS ?= 2
FRAMEWORK ?= all
SECTION ?=
PYTEST := $(BIN)/python -m pytest

.PHONY: help
help: ## List the targets and what they do
	@echo "Usage: make TARGET [FRAMEWORK=pytorch|tensorflow|mxnet] [SECTION=chapters/x.md]"
	@echo "       make book [MAX_EPOCHS=N] [JOBS=N] [SITE_URL=URL]   (JOBS: notebooks executed at once;"
	@echo "                 SITE_URL: where the site is served, the notebooks install the shim from it)"
	@grep -hE '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | \
	  awk 'BEGIN {FS = ":.*## "}; {printf "  %-16s %s\n", $$1, $$2}'

.PHONY: venv
venv: $(STAMP) ## Create or update the virtual environment in .venv/

$(STAMP): $(REQUIREMENTS)
	@$(PYTHON) -c 'import sys; sys.exit(sys.version_info[:2] != (3, 11))' 2>/dev/null || \
	  { echo "error: Python 3.11 is required (found: $$($(PYTHON) --version 2>&1 || echo none));" \
	         "install it or run: make PYTHON=/path/to/python3.11 ..." >&2; exit 1; }
	@test -x $(BIN)/python || { echo "==> creating $(VENV) with $$($(PYTHON) --version)"; \
	  $(PYTHON) -m venv $(VENV); }
	@echo "==> installing pinned packages into $(VENV) (first time: a few minutes)"
	$(BIN)/python -m pip install --progress-bar off -r requirements/dev.txt
	$(BIN)/python -m pip install --progress-bar off --no-deps -r requirements/reference.txt
	$(BIN)/python -m pip install --progress-bar off --no-deps --no-build-isolation -e .
	@touch $@
	@echo "==> $(VENV) ready"

.PHONY: book
book: $(STAMP) ## Build, execute and render the whole book (MAX_EPOCHS=1 for a quick look)
	$(BIN)/python build.py all --framework $(FRAMEWORK) $(strip $(if $(MAX_EPOCHS),--max-epochs \
	  $(MAX_EPOCHS)) $(if $(JOBS),--jobs $(JOBS)) $(if $(SITE_URL),--site-url $(SITE_URL)) $(SECTION))

.PHONY: notebooks
notebooks: $(STAMP) ## Generate the notebooks only (no execution; under a second)
	$(BIN)/python build.py notebooks --framework $(FRAMEWORK) $(SECTION)

.PHONY: test
test: $(STAMP) lint test-unit test-notebooks ## Run the whole test suite (what CI runs)
	@echo "==> all tests passed"

.PHONY: lint
lint: $(STAMP) ## Check style with ruff (lint and format)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

.PHONY: test-unit
test-unit: $(STAMP) ## Unit, model, build and page tests (no notebook execution)
	$(PYTEST) tests

.PHONY: test-notebooks
test-notebooks: $(STAMP) ## Execute the generated notebooks with nbval (NB_EPOCHS epochs per training)
	$(BIN)/python build.py notebooks --framework $(FRAMEWORK) $(SECTION)
	D2L_MAX_EPOCHS=$(NB_EPOCHS) $(PYTEST) --nbval-lax -p book.nbval_report -p no:cacheprovider \
	  $$($(BIN)/python build.py list --framework $(FRAMEWORK) $(SECTION))

.PHONY: test-notebooks-full
test-notebooks-full: $(STAMP) ## Execute the notebooks with nbval at full length (no epoch cap)
	$(MAKE) test-notebooks NB_EPOCHS=

.PHONY: jupyter
jupyter: $(STAMP) ## Open the generated notebooks in Jupyter (kernels with the build's settings)
	$(BIN)/python build.py notebooks
	$(BIN)/python -m book.execute $(BIN)/jupyter notebook --notebook-dir=_build/notebooks

.PHONY: bench
bench: $(STAMP) ## Time training against d2l 1.0.3, and the whole section (benchmarks/results/)
	$(BIN)/python -m benchmarks.train_speed --section --update-readme $(BENCH_ARGS)

.PHONY: bench-perplexity
bench-perplexity: $(STAMP) ## Compare validation perplexity with d2l 1.0.3 over seeds (resumable)
	$(BIN)/python -m benchmarks.perplexity --update-readme $(PPL_ARGS)

.PHONY: lock
lock: ## Re-resolve requirements/lock.txt from the top-level pins (needs the network)
	rm -rf /tmp/d2l-lock-venv && $(PYTHON) -m venv /tmp/d2l-lock-venv
	grep -hv -e '^-' -e '^#' requirements/dev.txt requirements/base.txt requirements/torch.txt \
	  requirements/tensorflow.txt requirements/mxnet.txt | sort -u > /tmp/d2l-lock-top.txt
	/tmp/d2l-lock-venv/bin/pip install -r /tmp/d2l-lock-top.txt
	{ sed -n '1,3p' requirements/lock.txt; /tmp/d2l-lock-venv/bin/pip freeze | sed 's/+cpu//'; } \
	  > requirements/lock.txt.tmp && mv requirements/lock.txt.tmp requirements/lock.txt

.PHONY: clean
clean: ## Remove the build output (keeps .venv/)
	rm -rf _build

.PHONY: distclean
distclean: clean ## Remove the build output and .venv/
	rm -rf $(VENV)
