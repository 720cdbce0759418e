# Shortcuts for the README's two commands (./demo.sh and ./test.sh), which need no make.
.PHONY: demo test bench clean
demo:
	@./demo.sh
test:
	@./test.sh
bench:
	@bash scripts/bootstrap.sh dev keops && .venv/bin/python benchmarks/ot_engine.py
clean:
	rm -rf .venv build *.egg-info .pytest_cache
