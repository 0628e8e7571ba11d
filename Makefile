# segkit course: the commands a newcomer types are `make run` and `make test`.
# Each sets itself up first (a virtual environment in .venv with the course installed).

PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
# Fixed thread counts: stored notebook outputs are bit-identical only at the same count.
export OMP_NUM_THREADS ?= 2
export MKL_NUM_THREADS ?= 2

.PHONY: help setup run train test lab lessons lessons-check regen benchmark clean

help:
	@echo "make run        set up, then run the course's main job on the embedded data"
	@echo "make test       set up, then run every test (unit, lessons in sync, nbval)"
	@echo "make lab        open JupyterLab on lessons/"
	@echo "make train      train the default U-Net on toy Carvana (about a minute on CPU)"
	@echo "make lessons    regenerate lessons/ from solutions/"
	@echo "make regen      re-execute solutions/ in place (store outputs) and regenerate lessons/"
	@echo "make benchmark  measure the training figures reported in the README"

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
	$(BIN)/python -m pytest tests -q

lab: setup
	$(BIN)/jupyter lab lessons/

lessons: setup
	$(BIN)/segkit build-lessons

lessons-check: setup
	$(BIN)/segkit build-lessons --check

regen: setup
	$(BIN)/python -m segkit.course.run --inplace solutions/*.ipynb
	$(BIN)/segkit build-lessons

benchmark: setup
	$(BIN)/python benchmarks/train_benchmark.py

clean:
	rm -rf build runs .pytest_cache
