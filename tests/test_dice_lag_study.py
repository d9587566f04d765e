"""scripts/dice_lag_study.py: the split rules, and run + report end to end on the tiny model."""

from __future__ import annotations

import json
import sys

import numpy as np
import pytest

from conftest import REPO_ROOT, shared_data
from dicenlp.data.glue import MRPC, read_tsv

sys.path.insert(0, str(REPO_ROOT / "scripts"))
import dice_lag_study as study  # noqa: E402

SAMPLES = REPO_ROOT / "data" / "samples"


def test_mrpc_split_is_stratified_disjoint_and_reproducible(tmp_path):
    glue = shared_data("mrpc")
    assert study.split_mrpc(glue, tmp_path / "a") == {"train": 3260, "dev": 408, "test": 408}
    study.split_mrpc(glue, tmp_path / "b")
    names = ("train.tsv", "dev.tsv", "msr_paraphrase_test.txt")
    assert all((tmp_path / "a" / n).read_bytes() == (tmp_path / "b" / n).read_bytes() for n in names)
    train, dev = (read_tsv(tmp_path / "a" / n, MRPC) for n in names[:2])
    original = read_tsv(glue / "train.tsv", MRPC)
    assert sorted(train.ids + dev.ids) == sorted(original.ids) and not set(train.ids) & set(dev.ids)
    assert abs(dev.label.mean() - original.label.mean()) < 0.5 / 408 + 1e-9  # stratified
    assert read_tsv(tmp_path / "a" / names[2], MRPC).ids == read_tsv(glue / "dev.tsv", MRPC).ids


def test_squad_split_is_by_article(tmp_path):
    source = shared_data("squad1", "train-xquad-en-first24.json")
    assert study.split_squad(source, tmp_path) == {"train": 425, "dev": 102, "test": 105}
    titles = {s: [a["title"] for a in json.loads((tmp_path / f"{s}.json").read_text())["data"]]
              for s in ("train", "dev", "test")}
    order = [a["title"] for a in json.loads(source.read_text())["data"]]
    assert titles["dev"] == order[4::6] and titles["test"] == order[5::6]
    contexts = {s: {p["context"] for a in json.loads((tmp_path / f"{s}.json").read_text())["data"]
                    for p in a["paragraphs"]} for s in titles}
    assert not (contexts["train"] & contexts["dev"] or contexts["train"] & contexts["test"])


def test_squad_split_refuses_too_few_articles(tmp_path):
    with pytest.raises(SystemExit, match="leave the dev split empty"):
        study.split_squad(SAMPLES / "squad" / "v1.1" / "train-v1.1.json", tmp_path)


def test_every_variant_sets_its_recipe_on_the_command_line(tmp_path):
    for dataset, variants in study.VARIANTS.items():
        for variant in variants:
            cmd = study.command(dataset, variant, 1, tmp_path, "m", tmp_path)
            keys = [o.split("=", 1)[0] for o in cmd[2:]]
            assert len(keys) == len(set(keys)), (dataset, variant)  # no setting given twice
            for key in ("trainer.lr", "trainer.batch_size", "trainer.max_epochs", "trainer.warmup_ratio",
                        "trainer.weight_decay", "model.dropout", "loss"):
                assert key in keys, (dataset, variant, key)


def test_run_and_report_end_to_end_on_the_tiny_model(tmp_path, capsys):
    data = tmp_path / "data"
    study.split_mrpc(SAMPLES / "glue" / "MRPC", data / "mrpc", dev_size=4)
    runs = tmp_path / "runs"
    tiny = ["model=tiny", "trainer.max_steps=2", "trainer.batch_size=4", "trainer.eval_every=1"]
    argv = ["run", "mrpc", "--data", str(data), "--runs", str(runs), "--model", "tiny-bert",
            "--variants", "dsc_2class", "--seeds", "1", "--", *tiny]
    assert study.main(argv) == 0
    folder = runs / "mrpc" / "dsc_2class" / "seed1"
    results = json.loads((folder / "results.json").read_text())
    assert results["config"]["loss"]["binary_head"] == "softmax" and results["loss"] == "dsc"
    timing = json.loads((folder / "timing.json").read_text())
    assert timing["wall_s"] > 0 and timing["cpu_s"] > 0
    assert study.main(argv) == 0 and "[done] mrpc/dsc_2class/seed1" in capsys.readouterr().out  # resumes
    figure = tmp_path / "curves.png"
    assert study.main(["report", "mrpc", "--runs", str(runs), "--figure", str(figure)]) == 0
    out = capsys.readouterr().out
    assert "| dsc_2class | 1 |" in out and "All-positive baseline on the test split" in out
    assert out.splitlines()[0].endswith("| wall s | CPU s |")
    assert figure.read_bytes()[:4] == b"\x89PNG"
    preds = json.loads((folder / "predictions_test.json").read_text())
    share = 100 * np.mean([p["pred"] for p in preds])
    assert f"| {share:.1f} |" in out


def test_analysis_tables_show_the_flat_set_level_dice_and_its_sign_change():
    binary = study.analyse_binary_set(probs=(0.7, 0.99, 0.999)).splitlines()[2:]
    cells = [[c.split(", ") for c in row.strip("|").split(" | ")[1:]] for row in binary]
    value = {name: [float(cells[i][k][0]) for i in range(3)] for name, k in (("ce", 0), ("dsc", 1))}
    assert max(value["dsc"]) - min(value["dsc"]) < 0.01 < 1 < value["ce"][2] - value["ce"][0]  # flat vs CE
    assert float(cells[2][1][2]) < 0 < float(cells[0][1][2])  # a negative's push reverses above q ≈ 0.99
    assert float(cells[1][3][0]) - float(cells[0][3][0]) > 0.15  # with both classes, all-positive costs
    assert "OHEM 1" in study.analyse_positions(probs=(0.5,))
