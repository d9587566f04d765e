# dicenlp — `make help` lists the targets.
PYTHON ?= python
PIP ?= $(PYTHON) -m pip
TORCH_VERSION ?= 2.13.0
SEEDS ?= 42
REPRODUCE = $(PYTHON) scripts/reproduce.py --seeds $(SEEDS)

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

demo:  ## train the tiny model on the bundled POS sample with ce, fl, dl, dsc and compare (offline, CPU)
	OMP_NUM_THREADS=1 $(PYTHON) train.py -m loss=ce,fl,dl,dsc hydra.sweep.dir=outputs/demo
	$(PYTHON) scripts/make_tables.py --runs outputs/demo

data:  ## download the public datasets (Hub copies) into data/
	$(PYTHON) scripts/prepare_data.py

tables:  ## print every paper table from outputs/reproduce (docs/results/*.md, *.png)
	@for t in table3 table4 table5 table6 table7 table8 table9 table10; do $(PYTHON) scripts/make_tables.py $$t; done

bench:  ## the benchmark scripts (their figures are recorded in docs/)
	$(PYTHON) scripts/bench_losses.py --threads 1 --markdown --step
	$(PYTHON) scripts/bench_qa.py
	$(PYTHON) scripts/bench_mrc_memory.py
	$(PYTHON) scripts/bench_qqp_augment.py

figures:  ## the paper's Figure 1 (loss derivatives) into docs/figures/
	$(PYTHON) scripts/plot_loss_gradients.py

reproduce-pos:  ## Tables 3 and 4 (POS); SEEDS="1 2 3" for more seeds
	$(REPRODUCE) table3
	$(REPRODUCE) table4

reproduce-ner:  ## Table 5 (NER, BERT-MRC): 4 datasets × ce, fl, dl, dsc
	$(REPRODUCE) table5

reproduce-mrc:  ## Table 6 (SQuAD 1.1/2.0, QuoRef × BERT, XLNet)
	$(REPRODUCE) table6

reproduce-pi:  ## Table 7 (MRPC, QQP × BERT, XLNet)
	$(REPRODUCE) table7

reproduce-qqp-study:  ## Table 8 (QQP training-set variants)
	$(REPRODUCE) table8

reproduce-sst:  ## Table 9 (SST-2, SST-5 accuracy)
	$(REPRODUCE) table9

reproduce-tversky:  ## Table 10 (Tversky α ablation)
	$(REPRODUCE) table10
