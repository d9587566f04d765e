"""Every config a user can pick composes, and every paper-table cell is complete."""

from __future__ import annotations

from pathlib import Path

import pytest
from omegaconf import OmegaConf

from conftest import CONFIG_DIR

TASKS = sorted(p.stem for p in (CONFIG_DIR / "task").glob("*.yaml") if not p.stem.startswith("_"))
LOSSES = sorted(p.stem for p in (CONFIG_DIR / "loss").glob("*.yaml"))
CELLS = sorted(str(p.relative_to(CONFIG_DIR / "experiment").with_suffix(""))
               for p in (CONFIG_DIR / "experiment").glob("*/*.yaml"))  # provisional: table files have no cells


@pytest.mark.parametrize("task", TASKS)
def test_every_task_composes_with_every_loss(task, compose_config):
    for loss in LOSSES:
        cfg = compose_config(f"task={task}", f"loss={loss}")
        resolved = OmegaConf.to_container(cfg, resolve=True)
        assert resolved["task"]["name"] == task
        assert resolved["task"]["kind"] in {"tagging", "mrc_ner", "qa", "classification"}
        assert resolved["model"]["name_or_path"], "the task names its paper encoder (default_model)"


def test_preset_applies_and_the_command_line_wins(compose_config):
    presets = sorted((CONFIG_DIR / "preset").glob("*/*.yaml"))
    if not presets:
        pytest.skip("no presets yet")
    preset = presets[0]
    task, loss = preset.parent.name, preset.stem
    values = OmegaConf.load(preset)
    cfg = compose_config(f"task={task}", f"loss={loss}")
    for group in ("trainer", "loss"):
        for key, value in (values.get(group) or {}).items():
            assert cfg[group][key] == value, f"{preset}: {group}.{key}"
    overridden = compose_config(f"task={task}", f"loss={loss}", "trainer.lr=0.123")
    assert overridden.trainer.lr == 0.123


@pytest.mark.parametrize("cell", CELLS)
def test_every_paper_cell_composes_with_the_papers_numbers(cell, compose_config):
    cfg = compose_config(f"experiment={cell}")
    paper = OmegaConf.to_container(cfg.paper, resolve=True)
    table = cell.split("/")[0]
    assert paper["table"] == table
    assert paper["dataset"] and paper["row"] and paper["metrics"], cell
    assert all(isinstance(v, (int, float)) for v in paper["metrics"].values())
    assert set(paper["metrics"]) <= {"precision", "recall", "f1", "em", "accuracy", "macro_f1"}, cell


@pytest.mark.parametrize("cell", CELLS)
def test_missing_real_data_is_reported_with_instructions(cell, compose_config):
    from dicenlp.run import resolve_data_dir
    from dicenlp.tasks import build_task

    task = OmegaConf.to_container(compose_config(f"experiment={cell}").task, resolve=True)
    instance = build_task(task["kind"], **resolve_data_dir(task.get("params", {})))
    try:
        instance.check_data()
    except FileNotFoundError as err:
        assert len(str(err)) > 40, "the message must say which files to put where"
