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
    pred = {(r["sentence"], t, a, b) for r in rows for a, b, t in r["pred"]}
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
    results = run_train("task=conll03", "loss=fl", "task.params.data_dir=data/samples/mrc_ner")
    run_dir = Path(results["output_dir"])
    rows = json.loads((run_dir / "predictions_dev.json").read_text())
    nested = [r for r in rows if r["tokens"][:3] == ["He", "studied", "at"]][0]
    assert nested["gold"] == [[4, 6, "ORG"], [4, 8, "ORG"], [6, 6, "LOC"]]
    assert _rescore(run_dir, "dev") == pytest.approx(results["dev"]["f1"])


@pytest.mark.slow
def test_tiny_model_learns_the_fixture(run_train):
    """A few hundred steps of DSC on the CoNLL fixture: the whole path must actually learn (not a smoke test)."""
    results = run_train("task=conll03", "loss=dsc", "task.params.data_dir=data/samples/conll03",
                        "trainer.max_steps=300", "trainer.eval_every=100", "trainer.lr=1e-3",
                        "trainer.warmup_ratio=0.05", "trainer.scheduler=linear")
    assert results["dev"]["f1"] > 50.0


def test_slurm_launcher_config_composes():
    """configs/hydra/launcher/slurm.yaml extends the submitit SLURM launcher (one GPU per job)."""
    pytest.importorskip("hydra_plugins.hydra_submitit_launcher")
    from hydra import compose, initialize_config_dir

    from conftest import CONFIG_DIR

    with initialize_config_dir(version_base="1.3", config_dir=str(CONFIG_DIR)):
        cfg = compose("train", overrides=["hydra/launcher=slurm", "experiment=table5/conll03_dsc", "output_dir=x"],
                      return_hydra_config=True)
    launcher = cfg.hydra.launcher
    assert launcher._target_.endswith("submitit_launcher.SlurmLauncher")
    assert launcher.gpus_per_node == 1 and launcher.tasks_per_node == 1 and launcher.timeout_min > 0
