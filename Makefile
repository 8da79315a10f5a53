# Two commands do all set-up on a fresh machine:
#   make book   -> builds the demo book into _build/html/index.html
#   make test   -> runs the full test suite (incl. a tiny-profile build of every chapter)
PYTHON ?= python3
VENV   := .venv
PY     := $(VENV)/bin/python
STAMP  := $(VENV)/.installed

.PHONY: book test install bench clean clean-cache

book: $(STAMP)
	$(PY) -m lib build --profile demo

test: $(STAMP)
	$(PY) -m pytest -q

install: $(STAMP)

# Idempotent: redone only when the dependency list changes.
$(STAMP): pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q torch==2.14.1 torchvision==0.29.1
	$(PY) -m pip install -q -e '.[test]'
	touch $(STAMP)

bench: $(STAMP)
	for b in bench/bench_*.py; do echo "== $$b"; $(PY) $$b || exit 1; done

clean:
	rm -rf _build

clean-cache:
	rm -rf data/cache
