"""End to end through the real config + run path (tiny model, bundled fixtures): read → convert → train a few
steps → decode → span metric, for every loss; plus Chinese (MSRA 9:1 split) and BERT-MRC JSON input."""

import json
from pathlib import Path

import pytest

from dicenlp.metrics.spans import span_scores

LOSSES = ["ce", "wce", "fl", "dl", "tl", "dsc"]


def _rescore(run_dir: Path, split: str) -> float:
    """F1 recomputed from the written predictions file (the file and the metric must agree)."""
    rows = json.loads((run_dir / f"predictions_{split}.json").read_text(encoding="utf-8"))
    pred = {(r["sentence"], t, a, b) for r in rows for a, b, t in (p["span"] for p in r["pred"])}
    gold = {(r["sentence"], t, a, b) for r in rows for a, b, t in r["gold"]}
    return span_scores(pred, gold).f1


@pytest.mark.parametrize("loss", LOSSES)
def test_conll03_fixture_every_loss(run_train, loss):
    results = run_train("task=conll03", f"loss={loss}", "task.params.data_dir=data/samples/conll03",
                        "trainer.eval_every=4")  # one dev evaluation keeps each run short
    run_dir = Path(results["output_dir"])
    assert results["task"] == "conll03" and results["loss"] == loss
    for split in ("dev", "test"):
        metrics = results[split]
        assert {"precision", "recall", "f1", "f1_PER", "f1_LOC", "f1_ORG", "f1_MISC"} <= set(metrics)
        assert all(0.0 <= metrics[k] <= 100.0 for k in ("precision", "recall", "f1"))
        assert _rescore(run_dir, split) == pytest.approx(metrics["f1"])
        report = json.loads((run_dir / split / "span_f1.json").read_text())
        assert report["micro"]["f1"] == pytest.approx(metrics["f1"])
    test_rows = json.loads((run_dir / "predictions_test.json").read_text())
    n_gold = sum(len(r["gold"]) for r in test_rows)
    assert json.loads((run_dir / "test" / "span_f1.json").read_text())["micro"]["support"] == n_gold
    assert json.loads((run_dir / "results.json").read_text())["test"]["f1"] == results["test"]["f1"]


def test_msra_fixture_chinese_with_dev_split(run_train):
    results = run_train("task=msra", "loss=dsc", "task.params.data_dir=data/samples/msra")
    run_dir = Path(results["output_dir"])
    dev = json.loads((run_dir / "predictions_dev.json").read_text(encoding="utf-8"))
    assert len(dev) == 5  # 10% of the 50 training sentences
    assert all(len(c) == 1 for r in dev for c in r["tokens"])
    assert {t for r in dev for _, _, t in r["gold"]} <= {"PER", "LOC", "ORG"}  # label_map applied
    assert "f1_PER" in results["test"] or "f1_LOC" in results["test"]


def test_bert_mrc_json_input_with_nested_entities(run_train):
    results = run_train("task=conll03", "loss=fl", "task.params.data_dir=data/samples/mrc_ner",
                        "task.params.decoding=nested")
    run_dir = Path(results["output_dir"])
    rows = json.loads((run_dir / "predictions_dev.json").read_text())
    nested = [r for r in rows if r["tokens"][:3] == ["He", "studied", "at"]][0]
    assert nested["gold"] == [[4, 6, "ORG"], [4, 8, "ORG"], [6, 6, "LOC"]]
    assert _rescore(run_dir, "dev") == pytest.approx(results["dev"]["f1"])


@pytest.mark.slow
@pytest.mark.parametrize("loss", ["ce", "dsc"])
def test_tiny_model_memorises_through_the_whole_path(run_train, tmp_path, loss):
    """Not a smoke test: the whole path must learn. A random 2-layer char-level model cannot generalise from 66
    sentences (dev F1 stays near 10), but it must memorise 8 sentences used as train, dev and test."""
    from conftest import REPO_ROOT
    from dicenlp.data.mrc_ner import read_tagged_file, write_tagged_file

    sents = [s for s in read_tagged_file(REPO_ROOT / "data" / "samples" / "conll03" / "train.txt")[:9]
             if len(s.tokens) < 20]  # not the long sentence (its truncated entities would be misses)
    data = tmp_path / "data"
    data.mkdir()
    for split in ("train", "dev", "test"):
        write_tagged_file(data / f"{split}.txt", sents)
    results = run_train("task=conll03", f"loss={loss}", f"task.params.data_dir={data}", "trainer.max_steps=200",
                        "trainer.eval_every=100", "trainer.lr=1e-3", "trainer.scheduler=constant",
                        "model.dropout=0.0", "task.params.head_dropout=0.0")
    assert results["dev"]["f1"] > 85.0 and results["test"]["f1"] > 85.0


def test_slurm_launcher_config_composes():
    """configs/hydra/launcher/slurm.yaml extends the submitit SLURM launcher (one GPU per job)."""
    pytest.importorskip("hydra_plugins.hydra_submitit_launcher")
    from hydra import compose, initialize_config_dir

    from conftest import CONFIG_DIR

    with initialize_config_dir(version_base="1.3", config_dir=str(CONFIG_DIR)):
        cfg = compose("train", overrides=["hydra/launcher=slurm", "experiment=table5", "loss=dsc", "output_dir=x"],
                      return_hydra_config=True)
    launcher = cfg.hydra.launcher
    assert launcher._target_.endswith("submitit_launcher.SlurmLauncher")
    assert launcher.gpus_per_node == 1 and launcher.tasks_per_node == 1 and launcher.timeout_min > 0


@pytest.mark.slow
def test_two_processes_match_one_process(tmp_path):
    """``accelerate launch`` with 2 CPU processes (gloo, DDP): training steps run (every head parameter gets a
    gradient) and, with lr = 0, the gathered evaluation equals the 1-process one exactly (variable-width
    predicted-span tensors padded across ranks, no duplicated or missing feature)."""
    import os
    import subprocess
    import sys

    from conftest import REPO_ROOT, TINY_RUN

    overrides = ["task=conll03", "loss=dsc", "task.params.data_dir=data/samples/conll03", *TINY_RUN,
                 "trainer.lr=0.0", "trainer.scheduler=constant", "trainer.max_steps=2", "trainer.eval_batch_size=7"]
    env = {**os.environ, "WANDB_MODE": "offline", "HF_HUB_OFFLINE": "1", "OMP_NUM_THREADS": "1",
           "MASTER_PORT": str(29600 + os.getpid() % 1000)}

    def launch(prefix, run_dir):
        proc = subprocess.run([*prefix, str(REPO_ROOT / "train.py"), *overrides, f"hydra.run.dir={run_dir}"],
                              cwd=REPO_ROOT, env=env, capture_output=True, text=True, timeout=900)
        assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
        return json.loads((run_dir / "results.json").read_text())

    single = launch([sys.executable], tmp_path / "single")
    multi = launch([sys.executable, "-m", "accelerate.commands.launch", "--multi_gpu", "--num_processes", "2",
                    "--num_machines", "1", "--mixed_precision", "no", "--dynamo_backend", "no"], tmp_path / "multi")
    assert multi["num_processes"] == 2
    assert multi["dev"] == single["dev"] and multi["test"] == single["test"]
    for split in ("dev", "test"):
        assert (json.loads((tmp_path / "multi" / f"predictions_{split}.json").read_text())
                == json.loads((tmp_path / "single" / f"predictions_{split}.json").read_text()))
