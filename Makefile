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

.PHONY: help venv test test-fast demo data-imdb-small trial-small bench clean

help:
	@echo "make demo   - main job: small IMDB slice, 3 baseline + 3 pretrained trials, a small sweep, reports in runs/report"
	@echo "make test   - run the test suite (what CI runs)"
	@echo "make test-fast - the tests that train no model and start no external tool (under a minute)"
	@echo "make bench  - benchmarks (full-size, slow)"
	@echo "make bench-gpu - GPU vs CPU ratios on this machine's GPU (exits 2 without one)"
	@echo "make check-infra - static checks of terraform-gke/ and the Dockerfile (HCL, references, checkov)"
	@echo "make image  - build and push the experiment image to the cluster's Artifact Registry"
	@echo "make report - the committed tables/plots from the committed campaign results (RUNS=dir: that dir, into dir/report)"
	@echo "make campaign-imdb / campaign-ner - the protocol-scale campaigns (hours; resumable)"
	@echo "make campaign-frontier - accuracy by model size: pruned tables, with/without LMAO (hours; resumable)"
	@echo "make stock-check - spacy train on spaCy's stock textcat config (the frontier's anchor), 3 seeds"
	@echo "make stock-align - spacy train stopped where a stock-bow trial's epochs ended: the same scores (minutes)"
	@echo "make stock-ensemble-screen - spaCy's stock accuracy textcat config, 5 epochs on a dev slice, 1 seed (about 30 min on 2 cores)"
	@echo "make sweep  - small local IMDB-1k random search (Optuna; minutes on 2 cores), report in runs/report/sweep"
	@echo "make dashboard - Polyaxon's local UI/API on http://127.0.0.1:$(DASHBOARD_PORT) (haupt sandbox)"
	@echo "make polyaxonfiles - regenerate the polyaxonfiles from the experiments' sweep.yml"
	@echo "make sweep-polyaxon - polyaxon run -u the GKE polyaxonfile on a local Polyaxon server + process agent (PLX_RUNS, PLX_CONCURRENCY; PLX_SEARCH=tpe: TPE tuner)"

$(BIN)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[dev]'
	touch $@

venv: $(BIN)/.installed

test: venv dashboard-venv
	$(BIN)/python -m pytest -q

# The inner loop: everything but the tests marked slow (model training, sweeps, Polyaxon, checkov).
test-fast: venv
	$(BIN)/python -m pytest -q -m "not slow"

# Small slice of IMDB-1k (protocol split: the same 1000 training reviews, the last 1000 of the dev
# reviews; pretraining text and 50-d vectors from 10k reviews) for the demo and quick local runs.
$(CORPUS)/imdb-small/.done: $(BIN)/.installed
	$(LMAO) data imdb $(IMDB_SOURCE) $(CORPUS)/imdb-small --n-train 1000 --n-dev 1000 --n-test 200 --max-pretrain-docs 10000
	$(LMAO) vectors train $(CORPUS)/imdb-small/pretrain $(CORPUS)/imdb-small/vectors --dims 50 --epochs 3
	touch $@

data-imdb-small: $(CORPUS)/imdb-small/.done

trial-small: data-imdb-small
	$(LMAO) trial lmao-imdb-1k --out $(RUNS)/demo-trial \
		-P corpus_dir=$(CORPUS)/imdb-small -P width=64 -P depth=2 -P pretrain_epochs=1 -P max_epochs=3

# The main job: 3 baseline + 3 pretrained trials (lmao-imdb-1k/demo.yml), a small random sweep, and
# their reports in RUNS/report/ (everything under RUNS, untracked: git status stays clean). Re-running
# skips finished trials and continues the study.
demo: data-imdb-small
	$(LMAO) campaign lmao-imdb-1k/demo.yml --eval-processes 1
	$(MAKE) --no-print-directory sweep-only
	$(LMAO) report $(RUNS)/demo --out $(RUNS)/report/demo --no-readmes
	$(LMAO) report $(RUNS)/$(SWEEP_STUDY) --storage sqlite:///$(abspath $(RUNS))/optuna.sqlite3 --study $(SWEEP_STUDY) \
		--out $(RUNS)/report/sweep --no-readmes
	@echo; cat $(RUNS)/report/demo/lmao-imdb-1k.md

# The performance ratios (benchmarks/README.md) from one run (data prep, pretraining, a trial with peak PSS), with the machine's load.
bench: venv
	$(BIN)/python benchmarks/bench_all.py $(BENCH_ARGS)

# GPU against CPU on this machine, one run (benchmarks/bench_gpu.py): the protocol trial (cold and warm CuPy
# kernel cache), pretraining words/s, WNUT-17 NER. Without a GPU it says why and exits 2.
.PHONY: bench-gpu
bench-gpu: venv
	$(BIN)/python benchmarks/bench_gpu.py $(BENCH_ARGS)

clean:
	rm -rf $(RUNS) $(CORPUS)

# The protocol's scale. IMDB-1k: 1000 train / 10000 dev reviews, pretraining text = the 50k
# labelled reviews; static vectors (LMAO targets) = 100-d fastText on all 100k reviews (unsup included).
# WNUT-17 in full for NER, pretraining text = the first 20k IMDB reviews. Campaigns are resumable: run
# them again to continue; each finished trial's results.json lands under analysis/*-campaign/.
WNUT ?= $(SHARED)/ner/wnut17
$(CORPUS)/imdb-1k/.done: $(BIN)/.installed
	$(LMAO) data imdb $(IMDB_SOURCE) $(CORPUS)/imdb-1k
	touch $@

$(CORPUS)/vectors-imdb-100k/.done: $(BIN)/.installed
	$(LMAO) data imdb $(IMDB_SOURCE) $(CORPUS)/imdb-1k-unsup --unsup
	$(LMAO) vectors train $(CORPUS)/imdb-1k-unsup/pretrain $(CORPUS)/vectors-imdb-100k --dims 100
	touch $@

$(CORPUS)/wnut17/.done: $(BIN)/.installed
	$(LMAO) data ner $(WNUT)/wnut17train.conll $(WNUT)/emerging.dev.conll $(CORPUS)/wnut17 \
		--test $(WNUT)/emerging.test.annotated --raw $(SHARED)/imdb/imdb.jsonl.gz --max-pretrain-docs 20000
	touch $@

# Universal NER English-EWT (PER/ORG/LOC on web text; 12,543 / 2,001 / 2,077 sentences), the same pretraining
# text as WNUT-17. The `-own` corpora pretrain on the corpus's own training text instead (no --raw).
UNER ?= $(SHARED)/ner/uner-ewt
$(CORPUS)/uner-ewt/.done: $(BIN)/.installed
	$(LMAO) data ner $(UNER)/train.iob $(UNER)/dev.iob $(CORPUS)/uner-ewt --test $(UNER)/test.iob \
		--raw $(SHARED)/imdb/imdb.jsonl.gz --max-pretrain-docs 20000
	touch $@

$(CORPUS)/uner-ewt-own/.done: $(BIN)/.installed
	$(LMAO) data ner $(UNER)/train.iob $(UNER)/dev.iob $(CORPUS)/uner-ewt-own --test $(UNER)/test.iob
	touch $@

$(CORPUS)/wnut17-own/.done: $(BIN)/.installed
	$(LMAO) data ner $(WNUT)/wnut17train.conll $(WNUT)/emerging.dev.conll $(CORPUS)/wnut17-own \
		--test $(WNUT)/emerging.test.annotated
	touch $@

.PHONY: campaign-imdb campaign-ner campaigns recipe-levers
campaign-imdb: $(CORPUS)/imdb-1k/.done $(CORPUS)/vectors-imdb-100k/.done
	$(LMAO) campaign lmao-imdb-1k/campaign.yml $(CAMPAIGN_ARGS)

# Both NER corpora share one pretraining cache: their IMDB pretraining text is the same shards, so one
# run per objective serves both campaigns.
NER_CACHE ?= $(CORPUS)/ner-pretrain-cache
campaign-ner: $(CORPUS)/wnut17/.done $(CORPUS)/wnut17-own/.done $(CORPUS)/uner-ewt/.done $(CORPUS)/uner-ewt-own/.done \
		$(CORPUS)/vectors-imdb-100k/.done
	$(LMAO) campaign ontonotes-ner/campaign-wnut17.yml --cache $(NER_CACHE) $(CAMPAIGN_ARGS)
	$(LMAO) campaign ontonotes-ner/campaign-uner-ewt.yml --cache $(NER_CACHE) $(CAMPAIGN_ARGS)

# The NER recipe study (ontonotes-ner/README.md, "The recipe"): one lever at a time on WNUT-17's baseline,
# then on UNER English-EWT's (its screen is seed 0; winners get seeds 1-2 with `--only NAME`).
.PHONY: ner-levers
ner-levers: $(CORPUS)/wnut17/.done $(CORPUS)/uner-ewt/.done $(CORPUS)/vectors-imdb-100k/.done \
		$(CORPUS)/vectors-imdb-100k-10k-d50/.done
	$(LMAO) campaign ontonotes-ner/levers-wnut17.yml
	$(LMAO) campaign ontonotes-ner/levers-uner-ewt.yml --seed 0
	$(MAKE) recipe-tables

campaigns: campaign-imdb campaign-ner

# The size-accuracy frontier (lmao-imdb-1k/frontier.yml). Smaller static-vectors tables cut from the
# 100-d fastText table of all 100k reviews by `lmao vectors prune` (spaCy's prune: the first N rows kept,
# every dropped word mapped to its nearest kept row; dims by PCA). The folder name says what it holds:
# vectors-imdb-100k-5k = 5000 rows x 100 dims, -10k-d50 = 10000 rows x 50 dims, -d50 = every row, 50 dims.
FRONTIER_TABLES ?= 5k 10k 20k 5k-d50 10k-d50 20k-d50 d50
$(CORPUS)/vectors-imdb-100k-%/.done: $(CORPUS)/vectors-imdb-100k/.done
	$(LMAO) vectors prune $(CORPUS)/vectors-imdb-100k $(@D) $(patsubst %k,--rows %000,$(filter %k,$(subst -, ,$*))) \
		$(patsubst d%,--dims %,$(filter d%,$(subst -, ,$*)))
	touch $@

.PHONY: frontier-vectors campaign-frontier frontier-report
frontier-vectors: $(foreach t,$(FRONTIER_TABLES),$(CORPUS)/vectors-imdb-100k-$(t)/.done)

# First the pairs at 10 MB or less that answer the question, all 3 seeds; then every setting, seed-major.
FRONTIER_FIRST ?= v10k-d50 v10k-d50-lmao3 v10k-d50-trigram1 novec-w64-r4000 novec-w64-r4000-trigram1 v10k-d50-w64-r4000 v10k-d50-w64-r4000-lmao3 v10k-d50-w64-r4000-lmao8 v10k-d50-w64-r4000-lmao5 v10k-d50-lmao1 v10k-d50-lmao2 v10k-d50-unsup-lmao2 novec novec-lmao3 v5k v5k-lmao3
campaign-frontier: $(CORPUS)/imdb-1k/.done $(CORPUS)/vectors-imdb-100k/.done frontier-vectors
	$(LMAO) campaign lmao-imdb-1k/frontier.yml $(addprefix --only ,$(FRONTIER_FIRST)) $(CAMPAIGN_ARGS)
	$(LMAO) campaign lmao-imdb-1k/frontier.yml $(CAMPAIGN_ARGS)

# The frontier's stock-config anchor checked against spaCy itself: `spacy train` on the config `spacy init
# config -p textcat -o efficiency` writes, 3 seeds, scored like the trials (stock-bow in frontier.yml).
.PHONY: stock-check
stock-check: $(CORPUS)/imdb-1k/.done
	$(BIN)/python -m analysis.stock_check $(CORPUS)/imdb-1k analysis/imdb-1k-stock/spacy-train-efficiency

# Why the two stock-BOW anchors differ: the frontier's stock-bow setting (seed 0, 2 epochs), then spacy train
# on the stock config stopped where each of those epochs ended and scored there (the same scores).
.PHONY: stock-align
stock-align: $(CORPUS)/imdb-1k/.done
	$(BIN)/python -m analysis.stock_check $(CORPUS)/imdb-1k analysis/imdb-1k-stock/spacy-train-at-trial-epochs \
		--align-with lmao-imdb-1k/frontier.yml:stock-bow --seed 0 --epochs 2

# The frontier's table, Pareto plot and README headline from the committed raw results (also run by
# `make report`): the 34 MB campaign and the frontier campaign.
FRONTIER_RUNS ?= analysis/imdb-1k-campaign analysis/imdb-1k-frontier
STOCK_CHECKS ?= analysis/imdb-1k-stock/spacy-train-efficiency
frontier-report: venv
	$(LMAO) frontier $(wildcard $(FRONTIER_RUNS)) --out analysis/results --readme README.md --block frontier \
		--table-readme lmao-imdb-1k/README.md --table-block frontier $(if $(wildcard $(FRONTIER_SPEEDS)),--speeds $(FRONTIER_SPEEDS)) \
		$(addprefix --stock ,$(wildcard $(STOCK_CHECKS)))

# The frontier's speed axis: every model of the designs built at its trained shapes and timed side by side
# in one process (a trial's own speed depends on the load it ran under). Commit the CSV it writes.
FRONTIER_SPEEDS ?= analysis/results/frontier-speed.csv
.PHONY: frontier-speed
frontier-speed: $(CORPUS)/imdb-1k/.done $(CORPUS)/vectors-imdb-100k/.done frontier-vectors
	$(BIN)/python -m analysis.speeds lmao-imdb-1k/campaign.yml lmao-imdb-1k/frontier.yml --corpus $(CORPUS)/imdb-1k \
		--out $(FRONTIER_SPEEDS)

# The recipe study behind lmao-imdb-1k's defaults (its README says what each lever bought), and the
# protocol-scale baseline before it (3 seeds, the "before" curve).
# The same 1000 training reviews; dev = the last 2000 of the protocol's 10000 (the split takes dev from the end).
$(CORPUS)/imdb-1k-dev2k/.done: $(BIN)/.installed
	$(LMAO) data imdb $(IMDB_SOURCE) $(CORPUS)/imdb-1k-dev2k --n-dev 2000 --n-test 100 --max-pretrain-docs 100
	touch $@

recipe-levers: $(CORPUS)/imdb-1k-dev2k/.done $(CORPUS)/vectors-imdb-100k/.done $(CORPUS)/imdb-1k/.done
	$(LMAO) campaign lmao-imdb-1k/levers.yml
	$(LMAO) campaign lmao-imdb-1k/before-recipe.yml
	$(MAKE) recipe-tables

# spaCy's stock accuracy textcat config (frontier.yml's stock-ensemble) screened where 2 CPU cores allow:
# 5 epochs on the same dev slice, 1 seed, beside the stock bag of words (lmao-imdb-1k/README.md).
.PHONY: stock-ensemble-screen
stock-ensemble-screen: $(CORPUS)/imdb-1k-dev2k/.done
	$(LMAO) campaign lmao-imdb-1k/stock-ensemble-screen.yml
	$(MAKE) recipe-tables

# The recipe studies' tables (lmao-imdb-1k/README.md, ontonotes-ner/README.md), from the committed raw results (also run by
# `make report`): each lever's curve, and the baseline before the recipe beside the campaign's baseline.
.PHONY: recipe-tables
recipe-tables: venv
	$(LMAO) campaign lmao-imdb-1k/levers.yml --summary --markdown --readme lmao-imdb-1k/README.md --block levers
	$(LMAO) campaign lmao-imdb-1k/before-recipe.yml --also lmao-imdb-1k/campaign.yml --only old-defaults \
		--only baseline --summary --markdown --readme lmao-imdb-1k/README.md --block before-after
	$(LMAO) campaign lmao-imdb-1k/stock-ensemble-screen.yml --summary --markdown --readme lmao-imdb-1k/README.md \
		--block stock-ensemble-screen
	$(LMAO) campaign ontonotes-ner/levers-wnut17.yml --summary --markdown --readme ontonotes-ner/README.md --block levers
	$(LMAO) campaign ontonotes-ner/levers-uner-ewt.yml --summary --markdown --readme ontonotes-ner/README.md \
		--block levers-uner-ewt
	$(LMAO) campaign ontonotes-ner/before-recipe-wnut17.yml --also ontonotes-ner/campaign-wnut17.yml \
		--summary --markdown --readme ontonotes-ner/README.md --block before-after

# The committed tables and plots (analysis/results/, the experiment READMEs) come only from the
# committed raw results of the protocol campaigns; `make report RUNS=...` reports other runs into
# RUNS/report instead, leaving the committed ones alone.
CAMPAIGN_RUNS ?= analysis/imdb-1k-campaign analysis/wnut17-campaign analysis/uner-ewt-campaign
.PHONY: report
report: venv
ifeq ($(origin RUNS),command line)
	$(LMAO) report $(RUNS) $(if $(wildcard $(RUNS)/optuna.sqlite3),--storage sqlite:///$(abspath $(RUNS))/optuna.sqlite3) \
		--out $(RUNS)/report --no-readmes $(REPORT_ARGS)
else
	$(LMAO) report $(wildcard $(CAMPAIGN_RUNS)) $(REPORT_ARGS)
	$(MAKE) recipe-tables
	$(MAKE) frontier-report
endif

# Cluster path (terraform-gke/, runbook in terraform-gke/README.md): static infra checks (also part of `make test`)
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

# Sweeps. `make sweep`: a small random search over lmao-imdb-1k/sweep.yml on the small slice,
# architecture narrowed so it finishes in 5-15 minutes on 2 cores (20 trials: 200 s on an idle machine,
# 12 trials: 407 s on a busy one); re-running continues the study.
# Trials are tracked in the dashboard when POLYAXON_HOST points at it (`make dashboard`).
SWEEP_STUDY ?= imdb-small-random
SWEEP_TRIALS ?= 6
SWEEP_WORKERS ?= 2
SWEEP_ARGS ?= -P width=64 -P depth=2 -P max_epochs=4 -P patience=0 -P pretrain_max_words=1000000
DASH_VENV ?= .venv-dashboard
DASHBOARD_PORT ?= 8000
DASHBOARD_DIR ?= .polyaxon-sandbox
.PHONY: sweep sweep-only polyaxonfiles dashboard dashboard-venv
sweep: data-imdb-small sweep-only
	$(LMAO) report $(RUNS)/$(SWEEP_STUDY) --storage sqlite:///$(abspath $(RUNS))/optuna.sqlite3 --study $(SWEEP_STUDY) \
		--out $(RUNS)/report/sweep --no-readmes

sweep-only: data-imdb-small
	$(LMAO) sweep lmao-imdb-1k --search random --study $(SWEEP_STUDY) --n-trials $(SWEEP_TRIALS) \
		--workers $(SWEEP_WORKERS) --runs $(RUNS) -P corpus_dir=$(CORPUS)/imdb-small $(SWEEP_ARGS) \
		-- --eval-processes 1

polyaxonfiles: venv
	for e in lmao-imdb-1k ontonotes-ner; do for s in random bayes tpe; do $(LMAO) polyaxonfile $$e --search $$s; done; done
	$(LMAO) polyaxonfile lmao-imdb-1k --search random --out polyaxonfile.yml

# Polyaxon's own server in a separate venv, started by tools/dashboard.sh with its web UI served offline.
# The main venv has haupt==2.18.0 too, but without the `sandbox` extra, whose pins are what the server adds:
# pandas<3, fsspec<=2026.8.0, pyarrow<22.1, uvicorn[standard]<0.39, uvloop==0.22.1 (haupt 2.18.0's METADATA).
# They resolve together with '.[dev]' (pip install --dry-run: pandas 2.3.3, fsspec 2026.7.0), but only by
# downgrading the main venv's pandas 3.x and fsspec 2026.9, which analysis/ and the GCS code run on and the
# committed reports were generated with; a separate venv keeps the server's pins away from them. SQLite + local artifacts in DASHBOARD_DIR, outside RUNS: `make report`
# reads RUNS, and the sandbox keeps a copy of every tracked trial's results.json.
$(DASH_VENV)/.installed:
	$(PYTHON) -m venv $(DASH_VENV)
	$(DASH_VENV)/bin/pip install --quiet --upgrade pip
	$(DASH_VENV)/bin/pip install --quiet 'haupt[sandbox]==2.18.0'
	touch $@

dashboard-venv: $(DASH_VENV)/.installed

dashboard: dashboard-venv venv
	@echo "Polyaxon dashboard (Ctrl-C stops it): http://127.0.0.1:$(DASHBOARD_PORT)"
	@echo "Runs with their scores: $$($(BIN)/python -c 'from experiments.polyaxon import runs_page_url; print(runs_page_url("http://127.0.0.1:$(DASHBOARD_PORT)", "lmao-imdb-1k"))')"
	@echo "Track something, in another shell:  export POLYAXON_HOST=http://127.0.0.1:$(DASHBOARD_PORT)"
	@echo "  make trial-small                                   # one tracked trial (about a minute)"
	@echo "  make sweep SWEEP_STUDY=dash-\$$(date +%s) SWEEP_TRIALS=6   # a fresh small study, every trial tracked"
	tools/dashboard.sh $(DASHBOARD_DIR) $(DASHBOARD_PORT)

# `polyaxon run -u` of the polyaxonfile users launch on GKE, on Polyaxon's own server and scheduler on this
# machine (tools/polyaxon_sweep.sh: the `make dashboard` server plus our process agent,
# experiments/polyaxon/agent.py), on the small slice; then the report from Polyaxon's artifacts store.
# The server and agent keep running (dashboard on DASHBOARD_PORT); `make sweep-polyaxon-stop` ends both.
PLX_SEARCH ?= random
PLX_FILE ?= lmao-imdb-1k/polyaxonfile.$(PLX_SEARCH).yml
# random: the matrix's children are followed; tpe: the tuner run and the trials it launches.
PLX_WAIT = $(if $(filter tpe,$(PLX_SEARCH)),experiments.polyaxon.tuner,experiments.polyaxon.agent)
PLX_PROJECT ?= lmao-local
PLX_RUNS ?= 3
PLX_CONCURRENCY ?= 2
PLX_ARGS ?= -P max_epochs=4 -P patience=0 -P pretrain_max_words=1000000
# tpe: the tuner's own inputs (its first PLX_STARTUP trials are random, TPE models the rest).
PLX_STARTUP ?= 2
PLX_SEARCH_ARGS = $(if $(filter tpe,$(PLX_SEARCH)),-P startup_trials=$(PLX_STARTUP))
.PHONY: sweep-polyaxon sweep-polyaxon-stop
sweep-polyaxon: data-imdb-small dashboard-venv venv
	tools/polyaxon_sweep.sh up $(DASHBOARD_DIR) $(DASHBOARD_PORT)
	@set -euo pipefail; export POLYAXON_HOST=http://127.0.0.1:$(DASHBOARD_PORT); \
	out="$$($(BIN)/python -m experiments.polyaxon.agent launch $(PLX_FILE) -p $(PLX_PROJECT) \
		--out-dir $(DASHBOARD_DIR)/sweeps --runs $(PLX_RUNS) --concurrency $(PLX_CONCURRENCY) \
		-P corpus_dir=$(abspath $(CORPUS))/imdb-small -P cache=$(abspath $(RUNS))/polyaxon-cache $(PLX_ARGS) \
		$(PLX_SEARCH_ARGS))"; \
	echo "$$out"; matrix="$$(echo "$$out" | sed -n 's/^MATRIX //p')"; \
	echo "runs: $$($(BIN)/python -c 'from experiments.polyaxon import runs_page_url; print(runs_page_url("'"$$POLYAXON_HOST"'", "$(PLX_PROJECT)"))')"; \
	$(BIN)/python -m $(PLX_WAIT) wait "$$matrix" -p $(PLX_PROJECT); \
	$(LMAO) report --polyaxon-project default/$(PLX_PROJECT) --out $(RUNS)/report/polyaxon --no-readmes; \
	cat $(RUNS)/report/polyaxon/lmao-imdb-1k.md

sweep-polyaxon-stop:
	tools/polyaxon_sweep.sh down $(DASHBOARD_DIR)
