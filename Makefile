# sluice: `make demo` runs the pipeline locally, `make test` checks everything.
# Both install what they need into the project (.venv) and start local services themselves.

SHELL := /bin/bash
VENV := .venv
STAMP := $(VENV)/.installed
PYTHON ?= python3
CARGO ?= cargo

.PHONY: all test demo venv fmt lint unit clean

all: test

$(STAMP): requirements-dev.txt
	$(PYTHON) -m venv $(VENV)
	$(VENV)/bin/pip install --quiet --disable-pip-version-check -r requirements-dev.txt
	touch $(STAMP)

## venv: the project's Python environment (moto server for the local AWS API)
venv: $(STAMP)

## test: formatting, lints and every test (unit, adapter, integration against local services)
test: venv
	$(CARGO) fmt --all -- --check
	$(CARGO) clippy --workspace --all-targets --locked -- -D warnings
	$(CARGO) test --workspace --locked

## demo: the pipeline end to end on the local stack (N=20000 events by default)
demo: venv
	$(CARGO) run --quiet --locked -p sluice-local --bin sluice-demo

## fmt: format the code
fmt:
	$(CARGO) fmt --all

clean:
	$(CARGO) clean
	rm -rf $(VENV)
