# dicenlp — `make help` lists the targets.
PYTHON ?= python
PIP ?= $(PYTHON) -m pip
TORCH_VERSION ?= 2.13.0
# make reproduce-<t> [SCALE=paper|mini|smoke] [SEEDS="1 2 3"] [DATASETS=conll03] [OVERRIDES="trainer.lr=2e-5 ..."]
#                   [LAUNCHER="accelerate launch --num_processes 4"] [SLURM=1 | HYDRA_LAUNCHER=submitit_local]
#                   [MINI_MODEL=/local/model/dir] [DRY_RUN=1]
#                   [RUNS_DIR=outputs/reproduce] [TABLES_DIR=docs/results]
SCALE ?= paper
SEEDS ?= 42
DATASETS ?=
OVERRIDES ?=
LAUNCHER ?=
SLURM ?=
HYDRA_LAUNCHER ?=
DRY_RUN ?=
MINI_MODEL ?=
RUNS_DIR ?= outputs/reproduce
TABLES_DIR ?= docs/results
REPRODUCE = $(if $(MINI_MODEL),DICENLP_MINI_MODEL="$(MINI_MODEL)" )$(PYTHON) scripts/reproduce.py
REPRODUCE_OPTIONS = --scale $(SCALE) --seeds $(SEEDS) $(if $(DATASETS),--datasets $(DATASETS)) \
                    --runs-root $(RUNS_DIR) --tables-root $(TABLES_DIR) \
                    $(if $(LAUNCHER),--launcher "$(LAUNCHER)") $(if $(SLURM),--slurm) \
                    $(if $(HYDRA_LAUNCHER),--hydra-launcher $(HYDRA_LAUNCHER)) $(if $(DRY_RUN),--dry-run) -- $(OVERRIDES)

.PHONY: help install test test-slow demo data tables bench figures \
        reproduce-pos reproduce-ner reproduce-mrc reproduce-pi reproduce-qqp-study reproduce-sst reproduce-tversky

help:  ## list the targets
	@grep -E '^[a-zA-Z_-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  make %-20s %s\n", $$1, $$2}'

install:  ## install dicenlp (+ the CPU torch 2.13.0 wheel if no torch is installed; GPU users install their torch first)
	@$(PYTHON) -c "import torch" 2>/dev/null || $(PIP) install "torch==$(TORCH_VERSION)"
	$(PIP) install -e ".[dev]"

test:  ## the test suite (fast tests; CI runs exactly this)
	$(PYTHON) -m pytest

test-slow:  ## the slow tests (multi-process training, real small models)
	$(PYTHON) -m pytest -m slow

demo:  ## train the tiny random model on the bundled POS sample with ce, fl, dl, dsc (offline, CPU; checks the pipeline only)
	OMP_NUM_THREADS=1 $(PYTHON) train.py -m loss=ce,fl,dl,dsc hydra.sweep.dir=outputs/demo
	$(PYTHON) scripts/make_tables.py --runs outputs/demo

data:  ## download the public datasets (Hub copies) into data/
	$(PYTHON) scripts/prepare_data.py

tables:  ## regenerate every table that has runs at SCALE (docs/results/<scale>/<table>.md, .png)
	$(PYTHON) scripts/make_tables.py --all --scale $(SCALE) --runs-root $(RUNS_DIR) --tables-root $(TABLES_DIR)

bench:  ## the benchmark scripts (their figures are recorded in docs/)
	$(PYTHON) scripts/bench_losses.py --threads 1 --markdown --step
	$(PYTHON) scripts/bench_qa.py
	$(PYTHON) scripts/bench_mrc_memory.py
	$(PYTHON) scripts/bench_qqp_augment.py

figures:  ## the paper's Figure 1 (loss derivatives) into docs/figures/
	$(PYTHON) scripts/plot_loss_gradients.py

reproduce-pos:  ## Tables 3 and 4 (POS): SCALE=paper|mini|smoke SEEDS="1 2 3" DATASETS=... OVERRIDES=...
	$(REPRODUCE) table3 table4 $(REPRODUCE_OPTIONS)

reproduce-ner:  ## Table 5 (NER, BERT-MRC): 4 datasets × ce, fl, dl, dsc
	$(REPRODUCE) table5 $(REPRODUCE_OPTIONS)

reproduce-mrc:  ## Table 6 (SQuAD 1.1/2.0, QuoRef × BERT, XLNet)
	$(REPRODUCE) table6 $(REPRODUCE_OPTIONS)

reproduce-pi:  ## Table 7 (MRPC, QQP × BERT, XLNet)
	$(REPRODUCE) table7 $(REPRODUCE_OPTIONS)

reproduce-qqp-study:  ## Table 8 (QQP training-set variants)
	$(REPRODUCE) table8 $(REPRODUCE_OPTIONS)

reproduce-sst:  ## Table 9 (SST-2, SST-5 accuracy)
	$(REPRODUCE) table9 $(REPRODUCE_OPTIONS)

reproduce-tversky:  ## Table 10 (Tversky α ablation)
	$(REPRODUCE) table10 $(REPRODUCE_OPTIONS)
