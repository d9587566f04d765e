"""Learning curves in every run (metrics.jsonl + curves.png), W&B or not, and the side-by-side table curves."""

from __future__ import annotations

import json

from dicenlp.curves import MetricsFile, plot_cells, read_metrics, series


def test_every_run_writes_its_curves_without_a_tracker(run_train):
    results = run_train("task=sample_pos", "loss=dsc", "logger=none")
    out = results["output_dir"]
    records = read_metrics(f"{out}/metrics.jsonl")
    steps, losses = series(records, "train/loss")
    assert steps == [1, 2, 3, 4] and all(loss > 0 for loss in losses)  # TINY_RUN: log_every 1, 4 steps
    assert series(records, "train/lr")[0] == steps
    dev_steps, dev_f1 = series(records, "dev/f1")
    assert dev_steps == [2, 4]  # eval_every 2
    assert results["dev"]["f1"] == max(dev_f1)  # results.json reports the best evaluation of the curve
    assert series(records, "test/f1")[1] == [results["test"]["f1"]]
    with open(f"{out}/curves.png", "rb") as png:
        assert png.read(4) == b"\x89PNG"


def test_a_torn_last_line_of_a_killed_run_is_skipped(tmp_path):
    path = tmp_path / "metrics.jsonl"
    log = MetricsFile(path)
    log.log({"train/loss": 0.5}, 1)
    log.finish(True)
    with path.open("a") as handle:
        handle.write('{"step": 2, "train/lo')
    assert read_metrics(path) == [{"step": 1, "train/loss": 0.5}]


def test_table_curves_one_panel_per_dataset_one_line_per_loss(tmp_path):
    runs = [{"dataset": d, "loss": loss, "records": [{"step": s, "dev/f1": s * (seed + 1)} for s in (1, 2, 3)]}
            for d in ("conll03", "msra") for loss in ("ce", "dsc") for seed in range(2)]
    path = plot_cells(runs, tmp_path / "curves.png", "f1", "table5", sharey=True)
    assert path.read_bytes()[:4] == b"\x89PNG"
    assert plot_cells(runs, tmp_path / "none.png", "accuracy") is None
    assert json.dumps(runs)  # plain data in, nothing mutated
