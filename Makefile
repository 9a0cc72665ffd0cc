# Two entry points: `make run` (set up, then the main job) and `make test` (set up, then the tests).
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
SUDO := $(shell [ "$$(id -u)" = 0 ] || echo sudo)
FASHION_MNIST := /usr/share/datasets/fashion-mnist/t10k-images-idx3-ubyte.gz

.PHONY: run test setup data lint benchmark pi-check phone-check clean

# The virtual environment, rebuilt when pyproject.toml or constraints.txt changes: the exact versions the
# tests passed with (constraints.txt), so a fresh clone installs the same set next month.
$(BIN)/.installed: pyproject.toml constraints.txt
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -c constraints.txt -e ".[dev]"
	touch $@

# Fashion-MNIST from Debian's dataset-fashion-mnist, so nothing is downloaded at run time.
data:
	@if [ -f $(FASHION_MNIST) ]; then echo "Fashion-MNIST: $(dir $(FASHION_MNIST))"; \
	elif command -v apt-get >/dev/null 2>&1; then $(SUDO) apt-get update -qq && $(SUDO) apt-get install -y -qq dataset-fashion-mnist; \
	else echo "no apt-get: edge-pipeline looks in ~/.keras/datasets, then lets Keras download Fashion-MNIST"; fi

setup: $(BIN)/.installed data

run: setup
	$(BIN)/edge-pipeline run

test: setup
	$(BIN)/python -m pytest

# The public surface is type-checked: the API, its options and parser, the handle, the CLI, the result types.
TYPED := pipeline/surface pipeline/errors.py pipeline/importing/stage.py pipeline/output/tables.py pipeline/training/stage.py \
	pipeline/conversion/stage.py pipeline/measure/evaluate.py pipeline/measure/benchmark.py pipeline/reporting/record.py \
	pipeline/devices/deploy.py pipeline/devices/on_device.py pipeline/devices/emulated_bench.py \
	pipeline/comparison/stage.py pipeline/comparison/gate.py

lint: setup
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy $(TYPED)

benchmark: setup
	$(BIN)/python benchmarks/suite.py

# edge_runtime on an emulated Raspberry Pi (Debian bookworm arm64 under qemu-user), once per interpreter.
MODEL ?= models/fashion-mnist-cnn
pi-check: setup
	@command -v debootstrap >/dev/null && command -v qemu-aarch64-static >/dev/null || \
		$(SUDO) apt-get install -y -qq debootstrap qemu-user-static
	$(BIN)/python -m pipeline.devices.emulator check $(MODEL)

# The phone variants in MediaPipe Tasks' ImageClassifier (a venv of its own, made once outside .venv).
phone-check: setup
	$(BIN)/python -m pipeline.devices.phone_check check $(MODEL)

clean:
	rm -rf $(VENV) .pytest_cache .ruff_cache .hypothesis benchmarks/work
