"""A few training steps of every classification task × loss through the real run path (tiny models).

The full task × loss grid runs with ``make test-slow``; the default run keeps the cells that exercise every
head form (1 logit + sigmoid, 2-way and 5-way softmax) and every dataset reader once."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from conftest import REPO_ROOT

GLUE = REPO_ROOT / "data" / "samples" / "glue"
DATA = {"mrpc": GLUE / "MRPC", "qqp": GLUE / "QQP", "sst2": GLUE / "SST-2", "sst5": GLUE / "SST-5"}
LOSSES = ("ce", "wce", "fl", "dl", "tl", "dsc")
DEV_SIZE = {"mrpc": 8, "qqp": 12, "sst2": 6, "sst5": 5}
FAST = {("mrpc", "ce"), ("mrpc", "wce"), ("mrpc", "dsc"), ("sst5", "ce"), ("sst5", "dsc"), ("qqp", "fl"),
        ("sst2", "dl")}
GRID = [pytest.param(task, loss, marks=() if (task, loss) in FAST else pytest.mark.slow)
        for task in sorted(DATA) for loss in LOSSES]


def check_run(results, task):
    primary = results["primary_metric"]
    assert primary == ("f1" if task in ("mrpc", "qqp") else "accuracy")
    assert 0.0 <= results["dev"][primary] <= 100.0
    run_dir = Path(results["output_dir"])
    predictions = json.loads((run_dir / "predictions_dev.json").read_text())
    assert len(predictions) == DEV_SIZE[task]
    assert {"id", "label", "pred", "score"} <= set(predictions[0])
    assert (results["test"] is not None) == (task in ("mrpc", "sst5"))  # labeled test splits of the fixtures
    return run_dir


@pytest.mark.parametrize("task,loss", GRID)
def test_every_task_and_loss_trains(run_train, task, loss, tmp_path):
    results = run_train(f"task={task}", f"loss={loss}", f"task.params.data_dir={DATA[task]}",
                        f"task.params.cache_dir={tmp_path / 'cache'}")
    check_run(results, task)
    if task == "sst5":
        assert "macro_f1" in results["dev"] and "macro_f1" in results["test"]


def test_qqp_variant_run_records_the_training_set(run_train, tmp_path):
    results = run_train("task=qqp", "loss=dsc", f"task.params.data_dir={DATA['qqp']}", "task.params.variant=plus_both",
                        f"task.params.cache_dir={tmp_path / 'cache'}")
    run_dir = check_run(results, "qqp")
    info = json.loads((run_dir / "dev" / "train_set.json").read_text())
    assert info["variant"] == "plus_both" and info["train_label_counts"] == [26, 26]
    assert info["variant_report"]["positive_share"] == 0.5 and info["variant_report"]["added_negative"] == 12


def test_xlnet_pair_classification_trains(run_train, tmp_path):
    results = run_train("task=mrpc", "loss=dsc", "model=tiny-xlnet", f"task.params.data_dir={DATA['mrpc']}",
                        f"task.params.cache_dir={tmp_path / 'cache'}")
    check_run(results, "mrpc")


def write_marker_task(folder: Path, seed: int = 0) -> None:
    """A learnable, imbalanced (25% positive) single-sentence task: label 1 iff the sentence contains "zz"."""
    import numpy as np

    rng = np.random.default_rng(seed)
    words = "the a film movie plot actor scene story music long short bright dark slow fast".split()
    folder.mkdir(parents=True, exist_ok=True)
    for split, n in (("train", 600), ("dev", 200)):
        lines = ["sentence\tlabel"]
        for y in (rng.random(n) < 0.25).astype(int).tolist():
            w = list(rng.choice(words, size=int(rng.integers(4, 9))))
            if y:
                w.insert(int(rng.integers(0, len(w) + 1)), "zz")
            lines.append(f"{' '.join(w)}\t{y}")
        (folder / f"{split}.tsv").write_text("\n".join(lines) + "\n", encoding="utf-8")


@pytest.mark.slow
@pytest.mark.parametrize("loss", ["ce", "dsc"])
def test_softmax_and_sigmoid_heads_learn_an_imbalanced_task(run_train, loss, tmp_path):
    write_marker_task(tmp_path / "marker")
    results = run_train("task=sst2", f"loss={loss}", f"task.params.data_dir={tmp_path / 'marker'}",
                        f"task.params.cache_dir={tmp_path / 'cache'}", "task.params.primary_metric=f1",
                        "trainer.max_steps=300", "trainer.batch_size=16", "trainer.eval_every=100", "trainer.lr=3e-4",
                        "trainer.warmup_ratio=0.05")
    assert results["dev"]["f1"] > 95.0
