# segkit course: the commands a newcomer types are `make run` and `make test`.
# Each sets itself up first (a virtual environment in .venv with the course installed).

PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
# `make test` runs two pytest workers (-n 2), one thread each: the notebook kernels
# they start inherit OMP_NUM_THREADS=1, and one training notebook is compared at two
# threads as well. Trained figures in stored outputs are compared within tolerances, so
# no thread count, CPU or PyTorch build has to match the one they were stored with.
TEST_THREADS := OMP_NUM_THREADS=1 MKL_NUM_THREADS=1

.PHONY: help setup run train test test-fast test-grading-corpus check-draws lab lessons
.PHONY: lessons-check regen benchmark clean
.PHONY: site

help:
	@echo "make run        set up, then run the eleven lessons headless (about 6 minutes on 2 cores)"
	@echo "make test       set up, then run every test (unit, lessons in sync, nbval), 2 workers"
	@echo "make test-fast  set up, then run the unit tests only (no test that starts a kernel)"
	@echo "make test-grading-corpus  grade every honest and hostile notebook of the grader's corpora"
	@echo "make check-draws  every form of the checks' corpus on 100 fresh draws: the counts per lesson"
	@echo "make lab        open JupyterLab on lessons/"
	@echo "make train      train the default U-Net on toy Carvana (under a minute on a laptop CPU)"
	@echo "make lessons    regenerate lessons/ from solutions/"
	@echo "make regen      re-execute solutions/ in place (store outputs) and regenerate lessons/"
	@echo "make benchmark  measure the training figures reported in the README"
	@echo "make site       build the course website into build/site (stored outputs, nothing re-run)"

$(BIN)/.segkit-installed: pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e ".[lab,test]"
	touch $@

setup: $(BIN)/.segkit-installed

run: setup
	$(BIN)/segkit run-course

train: setup
	$(BIN)/segkit train

test: setup
	$(TEST_THREADS) $(BIN)/python -m pytest tests -q -n 2 --dist loadgroup --durations=12

test-fast: setup
	$(TEST_THREADS) $(BIN)/python -m pytest tests -q -n 2 --dist loadgroup -m "not notebooks"

# `make test` grades a representative slice of the grader's corpora; this grades all of it
# (about 80 notebooks: 15 to 25 minutes on a 2-core CPU).
test-grading-corpus: setup
	SEGKIT_GRADING_CORPUS=full $(TEST_THREADS) $(BIN)/python -m pytest tests/test_grading.py \
		-q -n 2 --dist loadgroup

# The exercise checks judged on 100 fresh draws per form (right solutions accepted, wrong
# forms caught with their mistake id, per lesson); `make test` runs a slice of this.
check-draws: setup
	$(TEST_THREADS) $(BIN)/python benchmarks/check_corpus.py --draws 100 --jobs 2

lab: setup
	$(BIN)/jupyter lab lessons/

lessons: setup
	$(BIN)/segkit build-lessons

lessons-check: setup
	$(BIN)/segkit build-lessons --dry-run

regen: setup
	$(BIN)/python -m segkit_course.run --inplace solutions/*.ipynb
	$(BIN)/segkit build-lessons

benchmark: setup
	$(BIN)/python benchmarks/train_benchmark.py

clean:
	rm -rf build runs .pytest_cache

# The course website from the stored outputs (nothing is executed): build/site/index.html.
site: setup
	$(BIN)/python -m segkit_course.site
