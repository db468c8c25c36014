# Two commands take a fresh machine all the way:
#   make demo   set up (Debian packages + .venv, idempotent), then run the main job
#   make test   set up, then lint, type-check and run the whole test suite
PY := .venv/bin/python
export HF_HUB_OFFLINE := 1
export TRANSFORMERS_OFFLINE := 1

.PHONY: setup demo test lint typecheck pytest bench

setup:
	@bash scripts/setup.sh

demo: setup
	.venv/bin/openhuman demo --out demo_out

lint: setup
	$(PY) -m ruff check openhuman tracking lifting tools tests
	$(PY) -m ruff format --check openhuman tracking lifting tools tests

typecheck: setup
	$(PY) -m mypy

pytest: setup
	$(PY) -m pytest

test: lint typecheck pytest

bench: setup
	for b in tools/bench_*.py; do $(PY) $$b || exit 1; done
