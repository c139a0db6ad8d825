# Set-up is implicit: the first `make chat` or `make test` creates .venv and installs everything.
# PyTorch is installed first, pinned to the CPU build, so nothing pulls CUDA packages.
# System packages come first of all (scripts/sysdeps.sh): as root they are installed with apt-get,
# otherwise the one command that installs them is printed before anything slow starts.

VENV    ?= .venv
PY      := $(VENV)/bin/python
PIP     := $(VENV)/bin/pip
STAMP   := $(VENV)/.installed
PYTEST  := $(PY) -m pytest
export OMP_WAIT_POLICY ?= PASSIVE

.PHONY: setup sysdeps chat test test-unit test-integration test-fuzz bench eval clean-index tiny-model

$(STAMP): pyproject.toml | sysdeps
	python3 -m venv $(VENV)
	$(PIP) install --upgrade pip wheel setuptools
	$(PIP) install torch==2.13.0
	$(PIP) install -e '.[dev]'
	touch $(STAMP)

setup: sysdeps $(STAMP)

# what the goals asked for need from the system: the browser tests need chromium
BROWSER_GOALS := test test-integration
SYSDEPS := build $(if $(filter $(BROWSER_GOALS),$(MAKECMDGOALS)),browser)

sysdeps:
	@sh scripts/sysdeps.sh $(SYSDEPS)

chat: setup
	$(VENV)/bin/rag chat

test: test-unit test-integration test-fuzz

test-unit: setup
	$(PYTEST) -m "not integration and not fuzz"

test-integration: setup
	$(PYTEST) -m integration

# Every reader and the question path against generated hostile input, bounded in time
# (FUZZ_EXAMPLES inputs per reader; see tests/test_fuzz.py).
test-fuzz: setup
	$(PYTEST) -m fuzz

# A tiny deterministic GGUF model (under 1 MB, git-ignored) to try LLM answers without a download:
#   make tiny-model && .venv/bin/rag ask --model tiny.gguf "When does Alonso's contract expire?"
tiny-model: setup
	$(PY) -m tests.tiny_gguf $(or $(OUT),tiny.gguf)

# Answer quality: the seeds set over seeds/, and the question bank over the BBC corpus in
# ../shared with each split (train, dev, test) reported on its own
# (indexes are cached under ~/.cache/football-rag/eval, or $$RAG_EVAL_CACHE, and reused).
SHARED  ?= ../shared
eval: setup
	$(VENV)/bin/rag eval $(SHARED)/eval/seeds_qa.jsonl --corpus seeds
	@echo
	$(VENV)/bin/rag eval eval/bbc_bank.jsonl --corpus $(SHARED)/corpora/bbc-football

# Speed and memory (see docs/BENCHMARKS.md): one table, also written to bench/results/latest.json.
#   make bench                      everything, up to 1M passages (~10 min on 2 cores)
#   make bench QUICK=1              10k passages only (~1 min)
#   make bench MODEL=tiny.gguf      also time to first token and tokens/s of a GGUF model
bench: setup
	$(PY) bench/run.py $(if $(QUICK),--quick) $(if $(MODEL),--model $(MODEL)) $(BENCH_ARGS)

clean-index:
	rm -f index/rag.sqlite3* index/faiss-*
