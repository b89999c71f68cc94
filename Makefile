# The two commands of the README:
#   make book   set up .venv if needed, execute every chapter at the cpu profile, build the HTML book in _build/html
#   make test   set up .venv if needed and run the test suite (what .ci/run calls)
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.steerlib-installed

.PHONY: book test test-all bench clean

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip
	$(BIN)/python -m pip install -q torch==2.13.0  # the CPU wheel; an unpinned torch pulls a multi-GB CUDA build
	$(BIN)/python -m pip install -q -e ".[test]"
	touch $(STAMP)

book: $(STAMP)
	rm -rf _build/html _build/jupyter_execute
	STEERLIB_PROFILE=cpu OMP_WAIT_POLICY=PASSIVE $(BIN)/jupyter-book build . --builder html -W -n --keep-going
	@echo "Book: _build/html/index.html"

# nbval runs the notebooks as stored (it cannot inject parameters), at the smoke profile from the environment.
NBVAL := --nbval-lax book/extrapolation/reversion.ipynb book/extrapolation/mechanism.ipynb \
         book/extrapolation/cautious-decisions.ipynb book/hallucination/unfamiliar-examples.ipynb \
         book/reasoning/pre-memorization.ipynb book/scorecard.ipynb

test: $(STAMP)
	STEERLIB_PROFILE=smoke STEERLIB_THREADS=1 OMP_WAIT_POLICY=PASSIVE $(BIN)/python -m pytest -m "not slow" -n 2 --dist loadfile tests $(NBVAL)

test-all: $(STAMP)
	STEERLIB_PROFILE=smoke STEERLIB_THREADS=1 OMP_WAIT_POLICY=PASSIVE $(BIN)/python -m pytest -n 2 --dist loadfile tests $(NBVAL)

bench: $(STAMP)
	$(BIN)/python benchmarks/bench_ensemble.py

# Every generated folder: the built book, chapter results (results/ at the root, where runs and nbval write, and old
# book/**/results), caches of tools and tests. Not .venv, and not the run cache ($STEERLIB_CACHE, outside the tree).
clean:
	rm -rf _build results .cache .pytest_cache .ruff_cache
	find book -type d -name results -prune -exec rm -rf {} +
	find . -path ./$(VENV) -prune -o -type d \( -name __pycache__ -o -name .ipynb_checkpoints \) -prune -exec rm -rf {} +
