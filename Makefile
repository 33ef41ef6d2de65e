# Every target sets itself up on a fresh machine: it creates .venv and installs what it needs.
PY ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
TEST_STAMP := $(VENV)/.installed-test
export GRADIO_ANALYTICS_ENABLED := False
export HF_HUB_OFFLINE := 1
export TRANSFORMERS_OFFLINE := 1

.PHONY: chat test test-fast eval eval-triage triage-model bench index vectors clean

$(BIN)/python:
	$(PY) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip

# torch==2.13.0 is installed in the same command as sentence-transformers so pip never reaches for a CUDA build.
$(STAMP): pyproject.toml | $(BIN)/python
	$(BIN)/pip install --quiet torch==2.13.0 -e .
	touch $@

$(TEST_STAMP): pyproject.toml $(STAMP)
	$(BIN)/pip install --quiet torch==2.13.0 -e '.[test,postgres,scale]'
	touch $@

chat: $(STAMP)
	$(BIN)/patient-qa chat

index: $(STAMP)
	$(BIN)/patient-qa index build

# After editing a bundled article: rewrite its shipped vectors (knowledge/vectors), so a new user's first build
# looks them up instead of embedding every text; `articles check` warns while they are stale.
vectors: $(STAMP)
	$(BIN)/patient-qa index pack

.PHONY: lint
# ruff (style, imports, likely bugs) and mypy on knowledge and qa, configured in pyproject.toml; run before the tests.
lint: $(TEST_STAMP)
	$(BIN)/ruff check .
	$(BIN)/mypy

test: lint
	$(BIN)/python -m pytest -m "slow or not slow" -q

# The fast tests are independent of each other, so they run on two processes (pytest-xdist).
test-fast: lint
	$(BIN)/python -m pytest -m "not slow" -q -n 2

eval: $(STAMP)
	$(BIN)/patient-qa eval --out eval/report --baseline eval/baseline.json

# Rebuild qa/triage_model.{npz,json} from eval/gold/triage/dev.jsonl (the sealed split is never read).
triage-model: $(TEST_STAMP)
	$(BIN)/patient-qa triage train

# The writer-disjoint sealed split of the triage corpus: measure, never tune on it.
eval-triage: $(STAMP)
	$(BIN)/patient-qa eval --gold eval/gold/triage/sealed.jsonl --out eval/report-triage-sealed

bench: $(STAMP)
	$(BIN)/patient-qa bench --out eval/bench

clean:
	rm -rf $(VENV) build *.egg-info
