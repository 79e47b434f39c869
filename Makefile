# mlnotes: build the book, test the package and the notebooks.
#
#   make book      install (once), build the HTML book into _build/html (fails on any warning)
#   make test      install (once), unit tests, then every notebook under nbval
#   make unit      unit tests only            make nbval    notebooks only
#   make execute   re-execute every notebook in place (NB=book/<part>/<slug>.ipynb for one)
#   make site      headless-Chromium checks of the built book (after make book)
#   make figures   regenerate the figures in book/_figures
#   make clean     remove _build
#
# The install step runs again only when requirements.txt or pyproject.toml change.

SHELL := /bin/bash
.SHELLFLAGS := -eu -o pipefail -c
.DEFAULT_GOAL := help

PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.mlnotes-installed
TORCH_CPU_PIN := torch==2.13.0

MATHJAX_VERSION := 3.2.2
MATHJAX_DIR := _vendor/mathjax
MATHJAX_STAMP := $(MATHJAX_DIR)/.version-$(MATHJAX_VERSION)

NOTEBOOKS := $(shell find book -name '*.ipynb' -not -path '*/.ipynb_checkpoints/*' -not -path '*/_build/*' | sort)
NB ?= $(NOTEBOOKS)
JOBS ?= 2
CELL_TIMEOUT ?= 900

# Deterministic, CPU-only, small-budget runs of the notebooks; no progress bars in outputs.
NB_ENV := MLNOTES_BUDGET=small CUDA_VISIBLE_DEVICES="" PYTHONHASHSEED=0 TQDM_DISABLE=1 OMP_NUM_THREADS=2

.PHONY: help install book test unit nbval execute site figures clean

help:
	@sed -n '2,12p' Makefile | sed 's/^# \{0,1\}//'

$(PY):
	$(PYTHON) -m venv $(VENV)

$(STAMP): requirements.txt pyproject.toml | $(PY)
	@# A plain `pip install torch` (or a range) pulls a multi-GB CUDA build on Linux.
	$(PY) -c 'import torch' 2>/dev/null || $(PY) -m pip install '$(TORCH_CPU_PIN)'
	$(PY) -m pip install -r requirements.txt
	$(PY) -m pip install -e .
	touch $@

install: $(STAMP)

# MathJax 3 from the npm registry, served by the book itself (html_extra_path), so math
# renders offline. Without npm the book falls back to the CDN (book/_ext/mlnotes_book.py).
$(MATHJAX_STAMP):
	@if command -v npm >/dev/null 2>&1; then \
		tmp=$$(mktemp -d); \
		( cd "$$tmp" && npm pack --silent mathjax@$(MATHJAX_VERSION) >/dev/null && tar -xzf mathjax-$(MATHJAX_VERSION).tgz ); \
		rm -rf $(MATHJAX_DIR) && mkdir -p $(MATHJAX_DIR)/es5/output; \
		cp "$$tmp"/package/LICENSE $(MATHJAX_DIR)/; \
		cp "$$tmp"/package/es5/tex-mml-chtml.js $(MATHJAX_DIR)/es5/; \
		cp -r "$$tmp"/package/es5/{input,ui,a11y,sre,adaptors} $(MATHJAX_DIR)/es5/; \
		cp -r "$$tmp"/package/es5/output/chtml.js "$$tmp"/package/es5/output/chtml $(MATHJAX_DIR)/es5/output/; \
		rm -rf "$$tmp"; \
		touch $@; \
		echo "MathJax $(MATHJAX_VERSION) installed in $(MATHJAX_DIR)"; \
	else \
		echo "npm not found: the book will load MathJax from the CDN"; \
	fi

# -W -n: any warning or unresolved reference fails the build (after building everything,
# --keep-going); --all: a fresh Sphinx environment, so unchanged pages report their warnings too.
book: $(STAMP) $(MATHJAX_STAMP)
	$(VENV)/bin/jupyter-book build . -W -n --keep-going --all
	@echo "Open _build/html/index.html"

unit: $(STAMP)
	TQDM_DISABLE=1 $(PY) -m pytest tests -m 'not site' -n $(JOBS)

nbval: $(STAMP)
	@if [ -z "$(NOTEBOOKS)" ]; then echo "no notebooks under book/"; else set -x; \
		$(NB_ENV) $(PY) -m pytest --nbval-lax --nbval-current-env \
			--nbval-sanitize-with .ci/nbval_sanitize.cfg --nbval-cell-timeout=$(CELL_TIMEOUT) \
			-n $(JOBS) --dist loadfile $(NOTEBOOKS); fi

test: unit nbval

execute: $(STAMP)
	$(NB_ENV) $(PY) book/_tools/execute_notebooks.py --timeout $(CELL_TIMEOUT) $(NB)

site: $(STAMP)
	$(PY) -m pytest tests/test_site.py -m site -v

figures: $(STAMP)
	$(PY) book/_figures/make_dependency_map.py

clean:
	rm -rf _build
