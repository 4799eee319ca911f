# The two commands a newcomer needs: `make demo` and `make test`. Both install what they need.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: demo test lint bench bench-national clean

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[dev]'
	touch $(STAMP)

demo: $(STAMP)
	$(BIN)/claims demo

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/mypy

test: lint
	$(BIN)/pytest -q

bench: $(STAMP)
	$(BIN)/python -m bench $(if $(SIZE),--size $(SIZE),)
	$(BIN)/python -m bench.compare_bench $(if $(COMPARE_SIZE),--size $(COMPARE_SIZE),)
	$(BIN)/python -m bench.verify_cost $(if $(VERIFY_SIZE),--size $(VERIFY_SIZE),)

bench-national: $(STAMP)
	$(BIN)/python -m bench.national

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache
