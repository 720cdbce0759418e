# The two commands of the README's quick start. Each installs whatever is missing first.
VENV ?= .venv
PY := $(VENV)/bin/python

.PHONY: demo test bench install clean

install:
	@bash scripts/bootstrap.sh dev keops

demo:
	@bash scripts/bootstrap.sh dev keops
	@$(PY) -m shapeot demo

test:
	@bash scripts/bootstrap.sh dev keops
	@$(PY) -m pytest -q $(PYTEST_ARGS)

bench:
	@bash scripts/bootstrap.sh dev keops
	@$(PY) benchmarks/ot_engine.py

clean:
	rm -rf $(VENV) build *.egg-info .pytest_cache
