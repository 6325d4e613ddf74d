# Two commands do all the set-up on a fresh machine: `make demo` and `make test`.
PYTHON ?= python3
VENV   := .venv
PY     := $(VENV)/bin/python
PIP    := $(PY) -m pip
STAMP  := $(VENV)/.installed

.PHONY: install demo test test-fast bench system-deps clean

# torch first, pinned: a CPU build lies on this machine's disk, and a looser
# pin pulls a multi-GB CUDA build.  Everything else comes from pyproject.
$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PIP) install -q --upgrade pip
	$(PIP) install -q torch==2.13.0
	$(PIP) install -q -e '.[dev,farm,tflite]'
	touch $(STAMP)

install: $(STAMP)

# Debian's adb (an independent check of devices/adbd.py), chromium (renders
# the report in a test) and dataset-fashion-mnist (`--data fashion-mnist`, the
# demo's data).  Skipped quietly where apt-get is not ours to use; the tests
# that need them then skip with a reason, and the demo falls back to digits.
system-deps:
	@if command -v apt-get >/dev/null 2>&1 && [ "$$(id -u)" = 0 ]; then \
	  missing=""; command -v adb >/dev/null 2>&1 || missing="$$missing adb"; \
	  command -v chromium >/dev/null 2>&1 || missing="$$missing chromium"; \
	  [ -f /usr/share/datasets/fashion-mnist/train-images-idx3-ubyte.gz ] || missing="$$missing dataset-fashion-mnist"; \
	  if [ -n "$$missing" ]; then \
	    echo "installing$$missing"; \
	    (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $$missing >/dev/null) \
	      || echo "warning: could not install$$missing; tests that need them will skip"; \
	  fi; \
	fi

demo: install system-deps
	$(VENV)/bin/hwnas demo

test: install system-deps
	$(PY) -m pytest

test-fast: install
	$(PY) -m pytest -m "not slow and not integration"

bench: install
	$(PY) -m benchmarks.suites.run_all

clean:
	rm -rf $(VENV) .pytest_cache
