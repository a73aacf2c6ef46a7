# The two set-up commands are `make run` and `make test`; everything else is for developers.
PY ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: run test headless bench package package-test image image-test clean

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PY) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[gui,test,bench]'
	touch $(STAMP)

run: $(STAMP)
	$(BIN)/faultwatch --demo

headless: $(STAMP)
	$(BIN)/faultwatch --demo --headless

# The container image tests need podman and a built image: `make image-test` runs them.
# Parallel workers (pytest-xdist): most of the suite's time is waiting on real processes and devices,
# not CPU, so more workers than cores still pays (docs/benchmarks.md); TEST_WORKERS=0 runs it serially.
# --dist worksteal: each worker starts on its own share, headed by long modules (tests/conftest.py), and
# an idle worker takes queued tests from a busy one. A crashed worker's test is reported as failed and
# its queue goes to the others (loadscope/loadfile hung for ever instead: pytest-xdist#1323, #1363).
# Bytecode caching is on for the run even where PYTHONDONTWRITEBYTECODE is set: every worker imports the
# whole suite, and re-doing pytest's assertion rewrite and the compile each time was ~4 s CPU a worker.
TEST_WORKERS ?= 4
TEST_DIST ?= --dist worksteal
test: $(STAMP)
	PYTHONDONTWRITEBYTECODE= QT_QPA_PLATFORM=offscreen $(BIN)/python -m pytest -q -m "not image" -n $(TEST_WORKERS) $(TEST_DIST)

bench: $(STAMP)
	$(BIN)/python bench/throughput.py
	QT_QPA_PLATFORM=offscreen $(BIN)/python bench/gui_lag.py

$(VENV)/.package-installed: $(STAMP)
	$(BIN)/python -m pip install --quiet -e '.[gui,package]'
	touch $@

package: $(VENV)/.package-installed
	$(BIN)/python packaging/build.py

# Builds the bundle (build.py smoke-tests the built executable), then runs the package tests on it.
package-test: package
	QT_QPA_PLATFORM=offscreen $(BIN)/python -m pytest -q -m package tests/e2e/test_package.py

# The headless engine's container image (docs/deploy.md): podman, runc and mmdebstrap (Debian packages).
image: $(STAMP)
	$(BIN)/python packaging/container/build.py

# Builds the image, then runs it with podman: events stream, /healthz, HEALTHCHECK, clean stop on SIGTERM.
image-test: image
	$(BIN)/python -m pytest -q -m image tests/e2e/test_image.py

clean:
	rm -rf build dist $(VENV)
