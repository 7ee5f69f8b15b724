# The course's commands. `make help` lists them.

VENV ?= .venv
PYTHON := $(VENV)/bin/python
SIZE ?= full
ASSIGNMENT ?=
SUBMISSIONS ?=

# nbgrader runs `alembic` from PATH when it creates a gradebook, and notebook kernels start
# `python` from PATH: both must come from the course's virtual environment.
export PATH := $(abspath $(VENV))/bin:$(PATH)

.DEFAULT_GOAL := help
.PHONY: help setup run test build check kit grade lab clean

help:  ## list the commands
	@grep -E '^[a-z]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  make %-8s %s\n", $$1, $$2}'
	@echo "  Variables: SIZE=smoke|full (make run), ASSIGNMENT=01_attention_numpy ... (make kit, make grade),"
	@echo "             SUBMISSIONS=a folder per student or an LMS zip (make grade)"

$(VENV)/.installed: pyproject.toml
	@scripts/make-venv.sh $(VENV)
	$(PYTHON) -m pip install --quiet --upgrade pip
	$(PYTHON) -m pip install -e '.[course]'
	touch $@

setup: $(VENV)/.installed  ## create .venv and install the course into it

run: $(VENV)/.installed  ## run every solution notebook on the bundled data (SIZE=full or smoke)
	$(PYTHON) -m mytorch.course run --size $(SIZE)

test: $(VENV)/.installed  ## run the test suite
	$(PYTHON) -m pytest

build: $(VENV)/.installed  ## regenerate the answer cells of solutions/ and the release in notebooks/
	$(PYTHON) -m mytorch.course build

check: $(VENV)/.installed  ## fail, naming file and cell, if a generated file is stale
	$(PYTHON) -m mytorch.course build --check

kit: $(VENV)/.installed  ## build the student kit of ASSIGNMENT under dist/
	@test -n "$(ASSIGNMENT)" || { echo "Set ASSIGNMENT, e.g. make kit ASSIGNMENT=02_positions_and_masks"; exit 2; }
	$(PYTHON) -m mytorch.course kit $(ASSIGNMENT)

grade: $(VENV)/.installed  ## autograde a class: ASSIGNMENT, SUBMISSIONS=folder or LMS zip
	@test -n "$(ASSIGNMENT)" -a -n "$(SUBMISSIONS)" || { echo "Set ASSIGNMENT and SUBMISSIONS, e.g. make grade ASSIGNMENT=02_positions_and_masks SUBMISSIONS=downloads/class.zip"; exit 2; }
	$(PYTHON) -m mytorch.course grade $(ASSIGNMENT) --submissions $(SUBMISSIONS)

lab: $(VENV)/.installed  ## open the course in JupyterLab
	$(VENV)/bin/jupyter lab notebooks

clean:  ## remove the virtual environment, run outputs, kits and caches
	rm -rf $(VENV) runs dist data/cache .pytest_cache
