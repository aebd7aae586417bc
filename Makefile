# Every target creates and uses the local virtualenv itself: a fresh clone needs nothing by hand.
SHELL := /bin/bash
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
LMAO := $(BIN)/lmao
SHARED ?= ../shared/data
# Where the IMDB corpus comes from: the shared JSONL when it is there, else the official tarball URL.
IMDB_SOURCE ?= $(if $(wildcard $(SHARED)/imdb/imdb.jsonl.gz),$(SHARED)/imdb/imdb.jsonl.gz,https://ai.stanford.edu/~amaas/data/sentiment/aclImdb_v1.tar.gz)
RUNS ?= runs
CORPUS ?= corpus

.PHONY: help venv test demo data-imdb-small trial-small bench clean

help:
	@echo "make demo   - main job: prepare a small IMDB slice and run a small local job end to end"
	@echo "make test   - run the test suite"
	@echo "make bench  - benchmarks (full-size, slow)"
	@echo "make check-infra - static checks of terraform-gke/ and the Dockerfile (HCL, references, checkov)"
	@echo "make image  - build and push the experiment image to the cluster's Artifact Registry"
	@echo "make report - tables and plots from the trial results in RUNS (default runs/)"

$(BIN)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[dev]'
	touch $@

venv: $(BIN)/.installed

test: venv
	$(BIN)/python -m pytest -q

# Small slice of IMDB-1k (protocol split, fewer docs) for the demo and quick local runs.
$(CORPUS)/imdb-small/.done: $(BIN)/.installed
	$(LMAO) data imdb $(IMDB_SOURCE) $(CORPUS)/imdb-small --n-train 300 --n-dev 300 --n-test 500 --max-pretrain-docs 2000
	$(LMAO) vectors train $(CORPUS)/imdb-small/pretrain $(CORPUS)/imdb-small/vectors --dims 50 --epochs 3
	touch $@

data-imdb-small: $(CORPUS)/imdb-small/.done

trial-small: data-imdb-small
	$(LMAO) trial lmao-imdb-1k --out $(RUNS)/demo-trial \
		-P corpus_dir=$(CORPUS)/imdb-small -P width=64 -P depth=2 -P embed_rows=2000 \
		-P pretrain_epochs=1 -P max_epochs=3

demo: trial-small

bench: venv
	$(BIN)/python benchmarks/bench_imdb_trial.py

clean:
	rm -rf $(RUNS) $(CORPUS)

# Comparison tables and plots from the raw trial results: analysis/results/ and the experiment READMEs.
# The sweep's Optuna storage (when there) adds each trial's search method and trial number.
.PHONY: report
report: venv
	$(LMAO) report $(RUNS) $(if $(wildcard $(RUNS)/optuna.sqlite3),--storage sqlite:///$(abspath $(RUNS))/optuna.sqlite3) $(REPORT_ARGS)

# Cluster path (terraform-gke/, see README "Run on GKE"): static infra checks (also part of `make test`)
# and the experiment image, pushed to the Artifact Registry repo the Terraform creates.
TF_DIR ?= terraform-gke
REGISTRY ?=
IMAGE_TAG ?= $(shell git describe --always --dirty 2>/dev/null || echo dev)
.PHONY: check-infra image
check-infra: venv
	$(BIN)/python tools/check_infra.py

image:
	@set -euo pipefail; \
	registry="$(REGISTRY)"; \
	if [ -z "$$registry" ]; then registry="$$(terraform -chdir=$(TF_DIR) output -raw registry_url)"; fi; \
	image="$$registry/lmao"; \
	echo "image: $$image:$(IMAGE_TAG)"; \
	gcloud auth configure-docker "$${registry%%/*}" --quiet; \
	docker build --platform linux/amd64 --pull -t "$$image:$(IMAGE_TAG)" -t "$$image:latest" .; \
	docker push "$$image:$(IMAGE_TAG)"; \
	docker push "$$image:latest"
