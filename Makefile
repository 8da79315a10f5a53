# Two commands do all set-up on a fresh machine:
#   make book   -> builds the demo book into _build/html/index.html
#   make test   -> runs the full test suite (incl. a tiny-profile build of every chapter,
#                  opened page by page in headless Chromium)
#   make publish -> puts the built book (_build/html) on the gh-pages branch of REMOTE
PYTHON ?= python3
VENV   := .venv
PY     := $(VENV)/bin/python
STAMP  := $(VENV)/.installed
BROWSER_STAMP := $(VENV)/.chromium
REMOTE ?= origin
SUDO   := $(shell [ "$$(id -u)" = 0 ] || echo sudo)

.PHONY: book test install bench clean clean-cache publish browser

book: $(STAMP)
	$(PY) -m lib build --profile demo

test: $(STAMP) $(BROWSER_STAMP)
	$(PY) -m pytest -q

# Publishes what was built last (e.g. a paper-profile build made on a GPU machine).
publish: $(STAMP)
	$(PY) -m lib.publish _build/html --remote $(REMOTE)

# Debian's Chromium for tests/test_browser.py. Idempotent: installed once, then a stamp;
# when it cannot be installed the stamp is not written and the browser test skips, saying why.
browser: $(BROWSER_STAMP)
$(BROWSER_STAMP): | $(STAMP)
	command -v chromium >/dev/null 2>&1 || { $(SUDO) apt-get update -q && $(SUDO) apt-get install -y -q chromium; } \
	  || echo "make: chromium could not be installed; tests/test_browser.py will skip"
	if command -v chromium >/dev/null 2>&1; then touch $@; fi

install: $(STAMP)

# Idempotent: redone only when the dependency list changes.
$(STAMP): pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q torch==2.14.1 torchvision==0.29.1
	$(PY) -m pip install -q -e '.[test,use]'
	touch $(STAMP)

bench: $(STAMP)
	for b in bench/bench_*.py; do echo "== $$b"; $(PY) $$b || exit 1; done

clean:
	rm -rf _build

clean-cache:
	rm -rf data/cache
