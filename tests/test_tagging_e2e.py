"""End to end: the real Hydra config → dicenlp.run.run → results.json, for POS tagging on the bundled samples
(tiny random BERT, a few steps: these check the plumbing, not the accuracy)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

METRICS = {"precision", "recall", "f1", "accuracy"}


def _check_run(results: dict, task: str, loss: str, n_dev: int) -> dict:
    assert results["task"] == task and results["loss"] == loss
    for split in ("dev", "test"):
        assert METRICS <= set(results[split]), results[split]
        assert all(0.0 <= results[split][k] <= 100.0 for k in METRICS)
    run_dir = Path(results["output_dir"])
    on_disk = json.loads((run_dir / "results.json").read_text())
    assert on_disk["dev"] == pytest.approx(results["dev"])
    predictions = json.loads((run_dir / "predictions_dev.json").read_text())
    assert len(predictions) == n_dev
    assert all(len(p["pred"]) == len(p["gold"]) == len(p["tokens"]) for p in predictions)
    return predictions


@pytest.mark.parametrize("loss", ["ce", "wce", "fl", "dl", "tl", "dsc"])
def test_every_loss_trains_on_sample_pos(run_train, loss):
    results = run_train(f"loss={loss}")
    predictions = _check_run(results, "sample_pos", loss, n_dev=100)
    # word level, no truncation in the sample: every word gets a prediction, so P = R = accuracy
    assert all(None not in p["pred"] for p in predictions)
    assert results["dev"]["precision"] == pytest.approx(results["dev"]["recall"])
    assert results["dev"]["accuracy"] == pytest.approx(results["dev"]["f1"])


def test_chinese_char_level_task_on_samples(run_train):
    """ctb5's real config pointed at the bundled CTB-style sample: joint segmentation + POS over characters."""
    results = run_train("task=ctb5", "loss=dsc", "task.params.data_dir=data/samples/ctb")
    predictions = _check_run(results, "ctb5", "dsc", n_dev=30)
    assert all("pred_words" in p for p in predictions)
    assert all(len(t) == 1 for p in predictions for t in p["tokens"])  # units are characters


def test_ud14_conllu_on_samples(run_train):
    results = run_train("task=ud14", "loss=ce", "task.params.data_dir=data/samples/ud_zh")
    _check_run(results, "ud14", "ce", n_dev=30)
