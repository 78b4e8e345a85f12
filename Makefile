# Deep RNN book: build, test and read. `make` alone lists the targets.
#
# Two stacks (README, "Piles prises en charge"), each with its own Python, pins and venv:
#   pinned   Python 3.11, numpy 1.23, PyTorch, TensorFlow 2.15 (Keras 2), MXNet 1.9.1
#            requirements/*.txt, environment.yml, .venv/
#   current  Python 3.12, numpy 2, PyTorch and TensorFlow with Keras 3 (no MXNet: 1.9.1 needs
#            numpy < 1.24 and distutils, neither exists on 3.12)
#            requirements/current/*.txt, environment-current.yml, .venv-current/
# STACK=pinned (the default) or STACK=current picks one; `make test` without STACK tests both.
# A venv is created on first use and re-installed when one of its requirement files changes.

.DEFAULT_GOAL := help
SHELL := /bin/bash
.SHELLFLAGS := -eu -o pipefail -c
comma := ,

STACKS := pinned current
ifeq ($(origin STACK),undefined)
TEST_STACKS := $(STACKS)
STACK := pinned
else
TEST_STACKS := $(STACK)
endif

# Per stack: Python version, venv, requirement files, frameworks, output folder, and the pytest
# runs of `make test-unit`: one without any framework, then one per framework, each in its own
# process (TensorFlow 2.21 imported before the CUDA build of PyTorch aborts the process; MXNet
# and TensorFlow 2.15 share a process badly). A test needing two frameworks carries both
# markers and runs in the first one's process; tests of a framework the stack lacks are
# deselected.
NO_FRAMEWORK := not torch and not tensorflow and not mxnet and not registry
ifeq ($(STACK),pinned)
PYTHON_VERSION := 3.11
VENV ?= .venv
REQ := requirements
REQUIREMENTS := $(wildcard requirements/*.txt)
STACK_FRAMEWORKS := pytorch,tensorflow,mxnet
OUT := _build
UNIT_RUNS := "$(NO_FRAMEWORK)" "torch" "tensorflow and not torch" \
  "mxnet and not torch and not tensorflow"
else ifeq ($(STACK),current)
PYTHON_VERSION := 3.12
VENV ?= .venv-current
REQ := requirements/current
REQUIREMENTS := $(wildcard requirements/current/*.txt) requirements/reference.txt
STACK_FRAMEWORKS := pytorch,tensorflow
OUT := _build/current
# This project's machine sets a pip constraints file (/etc/xdg/pip) capping torch at 2.14.1;
# the current stack pins torch 2.15.0 and brings its own constraints (its lock file), so the
# machine's are lifted for its installs only. Elsewhere PIP_CONSTRAINT=/dev/null changes nothing.
PIP_ENV := PIP_CONSTRAINT=/dev/null
UNIT_RUNS := "$(NO_FRAMEWORK)" "torch and not mxnet" "tensorflow and not torch and not mxnet"
else
$(error STACK=$(STACK): choose one of $(STACKS))
endif

# python$(PYTHON_VERSION): the one on PATH when it runs (a pyenv shim of a version that is not
# selected does not), else the newest pyenv version $(PYTHON_VERSION).*. PYTHON=... overrides.
PYTHON ?= $(shell \
  real() { "$$1" -c 'import sys; print(sys.executable)' 2>/dev/null; }; \
  real python$(PYTHON_VERSION) || { \
    v=$$(pyenv versions --bare 2>/dev/null | grep -E '^$(PYTHON_VERSION)\.[0-9]+$$' | sort -V | tail -1); \
    test -z "$$v" || real "$$(pyenv prefix "$$v")/bin/python$(PYTHON_VERSION)"; })
BIN := $(VENV)/bin
# Wheels are downloaded once into D2L_WHEELS, outside the clone (pip download skips the files
# already there), and installed from there alone (--no-index): pip's own cache keeps nothing
# from a registry that marks its answers uncacheable, as this project's machine's does, and
# each fresh clone would fetch the current stack's ~5 GB again. The platform check
# (test-platforms) keeps its wheels there too.
export D2L_WHEELS ?= $(HOME)/.cache/d2l-deep-rnn/wheels
STAMP := $(VENV)/.installed

# Tests and CI read The Time Machine from here when it exists (no download).
SHARED_DATA := $(abspath ../shared/data)
ifneq ($(wildcard $(SHARED_DATA)/timemachine.txt),)
export D2L_DATA_DIR ?= $(SHARED_DATA)
endif
# 3, not 2: the `tensorflow` wheel (current stack) logs cuInit and oneDNN lines at level E.
export TF_CPP_MIN_LOG_LEVEL ?= 3
# Epochs per training cell when CI executes the notebooks (`make test-notebooks`).
NB_EPOCHS ?= 2
FRAMEWORK ?= all
FRAMEWORKS := $(if $(filter all,$(FRAMEWORK)),$(STACK_FRAMEWORKS),$(FRAMEWORK))
ifneq ($(filter-out $(subst $(comma), ,$(STACK_FRAMEWORKS)),$(subst $(comma), ,$(FRAMEWORKS))),)
$(error FRAMEWORK=$(FRAMEWORK): the $(STACK) stack has $(STACK_FRAMEWORKS) only)
endif
SECTION ?=
UNIT_TESTS ?= tests
PYTEST := $(BIN)/python -m pytest
BUILD := $(BIN)/python build.py

.PHONY: help
help: ## List the targets and what they do
	@echo "Usage: make TARGET [STACK=pinned|current] [FRAMEWORK=pytorch|tensorflow|mxnet]"
	@echo "                   [SECTION=chapters/x.md]"
	@echo "       make book [MAX_EPOCHS=N] [JOBS=N] [SITE_URL=URL]   (JOBS: notebooks executed at once;"
	@echo "                 SITE_URL: where the site is served, the notebooks install the shim from it)"
	@echo "       make test   both stacks; make test STACK=current: Python 3.12 only"
	@grep -hE '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | \
	  awk 'BEGIN {FS = ":.*## "}; {printf "  %-16s %s\n", $$1, $$2}'

.PHONY: venv
venv: $(STAMP) ## Create or update the venv of STACK (.venv/ or .venv-current/)

# One line on stderr, and failure, unless $(PYTHON) is Python $(PYTHON_VERSION).
CHECK_PYTHON = test -n "$(PYTHON)" && $(PYTHON) -c 'import sys; sys.exit(sys.version_info[:2] \
  != ($(subst .,$(comma) ,$(PYTHON_VERSION))))' 2>/dev/null || { echo "error: the $(STACK) stack" \
  "needs Python $(PYTHON_VERSION) (found: $$($(or $(PYTHON),false) --version 2>&1 || echo none));" \
  "install it (e.g. pyenv install $(PYTHON_VERSION)) or run: make PYTHON=/path/to/python$(PYTHON_VERSION) ..." >&2; \
  exit 1; }

.PHONY: which-python
which-python: ## Print the Python that creates the venv of STACK
	@$(CHECK_PYTHON)
	@echo $(PYTHON)

$(STAMP): $(REQUIREMENTS)
	@$(CHECK_PYTHON)
	@test -x $(BIN)/python || { echo "==> creating $(VENV) with $$($(PYTHON) --version)"; \
	  $(PYTHON) -m venv $(VENV); }
	@echo "==> installing the $(STACK) stack into $(VENV) (first time: a few minutes)"
	$(PIP_ENV) $(BIN)/python -m pip download --progress-bar off -q -d $(D2L_WHEELS) \
	  -r $(REQ)/dev.txt
	$(PIP_ENV) $(BIN)/python -m pip install --progress-bar off --no-index --find-links \
	  $(D2L_WHEELS) -r $(REQ)/dev.txt
	$(BIN)/python -m pip install --progress-bar off --no-deps -r requirements/reference.txt
	$(BIN)/python -m pip install --progress-bar off --no-deps --no-build-isolation -e .
	@touch $@
	@echo "==> $(VENV) ready"

.PHONY: book
book: $(STAMP) ## Build, execute and render the whole book (MAX_EPOCHS=1 for a quick look)
	$(BUILD) all --framework $(FRAMEWORKS) --out $(OUT) $(strip $(if $(MAX_EPOCHS), \
	  --max-epochs $(MAX_EPOCHS)) $(if $(JOBS),--jobs $(JOBS)) $(if $(SITE_URL),--site-url \
	  $(SITE_URL)) $(SECTION))

.PHONY: notebooks
notebooks: $(STAMP) ## Generate the notebooks only (no execution; under a second)
	$(BUILD) notebooks --framework $(FRAMEWORKS) --out $(OUT) $(SECTION)

.PHONY: test
test: ## Install and test both stacks (what CI runs); STACK=current: Python 3.12 only
	@failed=""; for stack in $(TEST_STACKS); do \
	  echo "==> testing the $$stack stack"; \
	  $(MAKE) --no-print-directory test-stack STACK=$$stack || failed="$$failed $$stack"; \
	done; \
	if [ -n "$$failed" ]; then echo "==> tests FAILED on:$$failed" >&2; exit 1; fi; \
	echo "==> all tests passed on: $(TEST_STACKS)"

.PHONY: test-stack
test-stack: $(STAMP) lint test-unit $(if $(filter current,$(STACK)),test-platforms) test-notebooks ## The whole suite on STACK (default: pinned)

.PHONY: lint
lint: $(STAMP) ## Check style with ruff (lint and format)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

# pytest's status 5 (no test collected) fails like any other: a selection that finds nothing
# is a broken selection.
.PHONY: test-unit
test-unit: $(STAMP) ## Unit, model, build and page tests: one pytest per framework (PYTEST_ARGS=...)
	@for selection in $(UNIT_RUNS); do \
	  echo "==> pytest -m '$$selection' ($(STACK) stack)"; \
	  $(PYTEST) -m "$$selection" $(PYTEST_ARGS) $(UNIT_TESTS) || exit $$?; \
	done

.PHONY: test-notebooks
test-notebooks: $(STAMP) ## Execute the generated notebooks with nbval (NB_EPOCHS epochs per training)
	$(BUILD) notebooks --framework $(FRAMEWORKS) --out $(OUT) $(SECTION)
	D2L_MAX_EPOCHS=$(NB_EPOCHS) $(PYTEST) --nbval-lax -p book.nbval_report -p no:cacheprovider \
	  $$($(BUILD) list --framework $(FRAMEWORKS) --out $(OUT) $(SECTION))

.PHONY: test-notebooks-full
test-notebooks-full: $(STAMP) ## Execute the notebooks with nbval at full length (no epoch cap)
	$(MAKE) test-notebooks NB_EPOCHS=

# Tests marked `registry` need the package registry: they resolve each framework file of the
# current stack for Linux x86_64, macOS arm64 and Windows with pip's --dry-run (no install).
.PHONY: test-platforms
test-platforms: $(STAMP) ## Resolve the current stack's requirement files for every platform
	$(PYTEST) -m registry -n 3 $(PYTEST_ARGS) tests

.PHONY: jupyter
jupyter: $(STAMP) ## Open the generated notebooks in Jupyter (kernels with the build's settings)
	$(BUILD) notebooks --framework $(FRAMEWORKS) --out $(OUT)
	$(BIN)/python -m book.execute $(BIN)/jupyter notebook --notebook-dir=$(OUT)/notebooks

# Both stacks side by side when .venv-current/ exists too (STACK=... : that one only); d2l 1.0.3
# runs where it can (its TensorFlow code needs Keras 2: pinned stack only).
BOTH_STACKS := pinned=.venv/bin/python$(if $(wildcard .venv-current/bin/python),$\
  $(comma)current=.venv-current/bin/python)
BENCH_STACKS := $(if $(filter file,$(origin STACK)),$(BOTH_STACKS),$(STACK)=$(BIN)/python)

.PHONY: bench
bench: $(STAMP) ## Time training against d2l 1.0.3 on both stacks, and the whole section
	$(BIN)/python -m benchmarks.train_speed --stacks $(BENCH_STACKS) --section --update-readme \
	  $(BENCH_ARGS)

.PHONY: bench-perplexity
bench-perplexity: $(STAMP) ## Compare validation perplexity with d2l 1.0.3 over seeds (resumable)
	$(BIN)/python -m benchmarks.perplexity --update-readme $(PPL_ARGS)

.PHONY: lock
lock: ## Re-resolve the lock file of STACK from its top-level pins (needs the network)
	rm -rf /tmp/d2l-lock-venv && $(PYTHON) -m venv /tmp/d2l-lock-venv
	grep -hv -e '^-' -e '^#' -e '^$$' $(filter-out %/lock.txt %/reference.txt,$(REQUIREMENTS)) \
	  | sort -u > /tmp/d2l-lock-top.txt
	$(PIP_ENV) /tmp/d2l-lock-venv/bin/pip install -r /tmp/d2l-lock-top.txt
	{ sed -n '1,/^[^#]/p' $(REQ)/lock.txt | sed '$$d'; /tmp/d2l-lock-venv/bin/pip freeze | \
	  sed 's/+cpu//'; } > $(REQ)/lock.txt.tmp && mv $(REQ)/lock.txt.tmp $(REQ)/lock.txt

.PHONY: clean
clean: ## Remove the build output of both stacks (keeps the venvs)
	rm -rf _build

.PHONY: distclean
distclean: clean ## Remove the build output and the venv of STACK
	rm -rf $(VENV)
