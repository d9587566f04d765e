"""Paper tables from results.json files, and the grid runner's refusals (no GPU, no data)."""

from __future__ import annotations

import json
import sys

import pytest

from conftest import REPO_ROOT
from dicenlp.tables import collect_cells, load_results, paper_table_markdown, runs_table_markdown

sys.path.insert(0, str(REPO_ROOT / "scripts"))
import make_tables  # noqa: E402
import reproduce  # noqa: E402

PAPER = {"table": "table5", "dataset": "CoNLL03", "row": "BERT-MRC+DSC",
         "metrics": {"precision": 93.41, "recall": 93.25, "f1": 93.33}}


def _result(tmp_path, name, f1, seed, paper=PAPER, test=True):
    metrics = {"precision": f1 + 1, "recall": f1 - 1, "f1": f1}
    result = {"task": "conll03", "loss": "dsc", "model": "bert-large-cased", "seed": seed, "train_time_s": 1.0,
              "dev": {"f1": 99.0}, "test": metrics if test else None, "paper": paper}
    path = tmp_path / name / "results.json"
    path.parent.mkdir(parents=True)
    path.write_text(json.dumps(result))
    return result


def test_seeds_of_a_cell_are_averaged_beside_the_papers_numbers(tmp_path):
    _result(tmp_path, "a", 93.0, 1)
    _result(tmp_path, "b", 94.0, 2)
    _result(tmp_path, "c", 50.0, 1, paper={**PAPER, "table": "table6"})  # another table: ignored
    cells = collect_cells(load_results(tmp_path), "table5")
    assert len(cells) == 1 and len(cells[0].runs) == 2
    mean, std, n = cells[0].ours("f1")
    assert (mean, n) == (93.5, 2) and std == pytest.approx(0.70710678)
    table = paper_table_markdown(cells)
    assert "| CoNLL03 | BERT-MRC+DSC | 93.41 | 93.25 | 93.33 | 94.50 ± 0.71 | 92.50 ± 0.71 | 93.50 ± 0.71 | +0.17 | 2 |" in table


def test_dev_is_reported_when_a_run_has_no_test_split(tmp_path):
    _result(tmp_path, "a", 93.0, 1, paper={**PAPER, "metrics": {"f1": 90.0}}, test=False)
    cells = collect_cells(load_results(tmp_path))
    assert cells[0].ours("f1") == (99.0, 0.0, 1)


def test_make_tables_writes_markdown_and_png(tmp_path, capsys):
    _result(tmp_path / "runs", "a", 93.0, 1)
    assert make_tables.main(["table5", "--runs", str(tmp_path / "runs"), "--out", str(tmp_path / "out")]) == 0
    assert "BERT-MRC+DSC" in (tmp_path / "out" / "table5.md").read_text()
    assert (tmp_path / "out" / "table5.png").read_bytes()[:4] == b"\x89PNG"
    assert make_tables.main(["--runs", str(tmp_path / "runs")]) == 0
    assert "| conll03 | dsc | bert-large-cased | 1 | test |" in capsys.readouterr().out


def test_runs_table_lists_every_run(tmp_path):
    results = [_result(tmp_path, "a", 93.0, 1), _result(tmp_path, "b", 91.0, 2)]
    assert runs_table_markdown(results).count("| conll03 | dsc |") == 2


def test_reproduce_refuses_without_gpu_or_data_and_says_what_is_missing(capsys, monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    code = reproduce.main(["table5"])
    err = capsys.readouterr().err
    assert code == 2 and "nothing was run" in err
    assert "no GPU" in err or "torch.cuda" in err or "data/conll03" in err
    assert "data/msra" in err and "data/ontonotes4" in err


def test_reproduce_dry_run_lists_one_command_per_cell_and_seed(capsys):
    assert reproduce.main(["table9", "--dry-run", "--seeds", "1", "2"]) == 0
    lines = capsys.readouterr().out.strip().splitlines()
    cells = reproduce.table_cells("table9")
    assert len(lines) == 2 * len(cells) and all("experiment=table9 task=sst" in line for line in lines)
