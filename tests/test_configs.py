"""Every config a user can pick composes; the rewrite of issue 17 changed no setting it did not mean to.

The golden fixture (tests/fixtures/golden_configs.json, written from the old layout by make_golden_configs.py at
commit e87b051) holds the resolved task / loss / model / trainer of every old paper cell
(configs/experiment/<table>/<cell>.yaml) and of every task × loss that had a preset (configs/preset/<task>/<loss>).
Each must compose to the same values now; ``fixed`` below lists, with its reason, every difference accepted.
"""

from __future__ import annotations

import json
from functools import lru_cache
from itertools import product
from pathlib import Path

import pytest
from omegaconf import OmegaConf

from conftest import CONFIG_DIR, REPO_ROOT

GOLDEN = json.loads((Path(__file__).parent / "fixtures" / "golden_configs.json").read_text(encoding="utf-8"))
TASKS = sorted(p.stem for p in (CONFIG_DIR / "task").glob("*.yaml") if not p.stem.startswith("_"))
LOSSES = sorted(p.stem for p in (CONFIG_DIR / "loss").glob("*.yaml"))
MODELS = sorted(p.stem for p in (CONFIG_DIR / "model").glob("*.yaml"))
TABLES = sorted((p.stem for p in (CONFIG_DIR / "experiment").glob("*.yaml")), key=lambda t: int(t[5:]))
DICE_FAMILY = ["dl", "tl", "dsc", "dsc_official", "dsc_paper"]
QA_TASKS = {"squad", "squad2", "quoref"}


@lru_cache(maxsize=None)
def _compose(*overrides: str) -> dict:
    from hydra import compose, initialize_config_dir

    with initialize_config_dir(version_base="1.3", config_dir=str(CONFIG_DIR)):
        return OmegaConf.to_container(compose("train", overrides=["output_dir=x", *overrides]), resolve=True)


@pytest.fixture
def compose():
    """``compose(*overrides) -> dict``: the resolved config (cached: several tests compose the same one)."""
    return _compose


def table(name: str) -> dict:
    return OmegaConf.to_container(OmegaConf.load(CONFIG_DIR / "experiment" / f"{name}.yaml"))["table"]


def cells(name: str, scale: str | None = None) -> list[dict]:
    """The cells of a table file: ``{grid key: value}`` for the product of its grid (``scale``: its scales entry)."""
    spec = table(name)
    grid = {**spec["grid"], **spec.get("scales", {}).get(scale, {})}
    return [dict(zip(grid, values)) for values in product(*grid.values())]


def cell_overrides(name: str, values: dict) -> tuple[str, ...]:
    return (f"experiment={name}", *(f"{k}={v}" for k, v in values.items()))


def paper_numbers(spec: dict, values: dict) -> dict | None:
    node = spec["paper"]
    for key in spec["grid"]:
        node = node[str(values[key])]
    return None if node is None else dict(zip(spec["metrics"], node))


# ------------------------------------------------------------------------------------------------ golden
def golden_config(entry: dict) -> dict:
    return {k: GOLDEN[f"{k}_blocks"][str(v)] if f"{k}_blocks" in GOLDEN else v for k, v in entry.items()}


def fixed(old: dict, new: dict, label: str) -> dict:
    """``new`` with every accepted difference from the old layout undone (each one a fix, with its reason)."""
    new = json.loads(json.dumps(new))
    # 1. New keys. task: `bert` (model=bert's encoder, formerly `default_model`), `sample` (scale=smoke's data),
    #    `official_loss` (loss parameters of the task's official scripts, read by the loss files); model: `tiny`
    #    (scale=smoke's stand-in), `tokenizer` (tokenizer options); loss: `kind`, the formula (CONTRACT §4).
    for key in ("bert", "sample", "official_loss"):
        new["task"].pop(key, None)
    if "default_model" in old["task"]:
        new["task"]["default_model"] = old["task"]["default_model"]
    for key in ("tiny", "tokenizer"):
        new["model"].pop(key, None)
    new["loss"].pop("kind")
    # 2. A loss config's name is its file's name (CONTRACT §4): loss=dsc_official / dsc_paper used to be recorded
    #    as "dsc", so results, run folders and tables could not tell the three apart.
    if new["loss"]["name"] in ("dsc_official", "dsc_paper"):
        new["loss"]["name"] = "dsc"
    # 3. The default encoder (model=bert, formerly model=default) loads the Hub's canonical name,
    #    google-bert/<name>, like the explicit model configs: `task=conll03 loss=dsc` and the Table 5 cell loaded
    #    "bert-large-cased" vs "google-bert/bert-large-cased" (two different HF cache entries, offline only one
    #    of them may exist) although the README calls them the same run.
    if old["model"]["name_or_path"] == old["model"]["name"] and "/" not in old["model"]["name_or_path"]:
        new["model"]["name_or_path"] = new["model"]["name_or_path"].removeprefix("google-bert/")
    # 4. Table 10: beta = 1 - alpha is stated once, as `loss.beta: null` (TverskyLoss(beta=None), CONTRACT §1)
    #    instead of a number per cell.
    if label.startswith("table10/") and new["loss"]["beta"] is None:
        new["loss"]["beta"] = round(1 - new["loss"]["alpha"], 10)
    # 5. One data plan for every task kind (dicenlp.data.subsets): `max_examples`, `split_off`, `split_seed`
    #    replace the classification and QA tasks' `max_train_examples` / `max_eval_examples` (first-N only, and
    #    absent from the tagging and NER tasks).
    params, old_params = new["task"]["params"], old["task"]["params"]
    for key in ("max_examples", "split_off", "split_seed"):
        if key not in old_params:
            params.pop(key, None)
    # 7. NER: `decoding` (flat for the four flat datasets: non-overlapping spans of largest total probability).
    if "decoding" not in old_params:
        params.pop("decoding", None)
    for key in ("max_train_examples", "max_eval_examples"):
        if key in old_params:
            params[key] = old_params[key]
    # 6. New trainer setting: `resume` (one run per folder, continue after a kill; dicenlp.run_folder).
    new["trainer"].pop("resume", None)
    # 8. Speed settings (docs/performance.md): group_by_length (off: the paper's random batches), compile, tf32
    #    (GPUs only), ddp_find_unused_parameters; num_workers null (automatic: 0 on a CPU as before, 2 on a GPU).
    for key in ("group_by_length", "compile", "tf32", "pin_memory", "ddp_find_unused_parameters"):
        new["trainer"].pop(key, None)
    if new["trainer"].get("num_workers", 0) is None:
        new["trainer"]["num_workers"] = 0
    return new


@pytest.mark.parametrize("cell", sorted(GOLDEN["cells"]))
def test_every_old_paper_cell_resolves_as_before(cell, compose):
    name = cell.split("/")[0]
    entry = GOLDEN["cells"][cell]
    old = golden_config(entry["config"])
    spec = table(name)
    values = {key: entry["values"][key] for key in spec["grid"]}
    new = compose(*cell_overrides(name, values))
    new = fixed(old, new, cell)
    for key in ("task", "loss", "model", "trainer", "seed"):
        assert new[key] == old[key], f"{cell}: {key}"
    assert paper_numbers(spec, values) == old["paper"]["metrics"], f"{cell}: the paper's numbers"
    assert spec["split"] == old["paper"]["split"] or name in ("table7", "table10"), cell  # see those files


@pytest.mark.parametrize("pair", sorted(GOLDEN["presets"]))
def test_every_old_preset_resolves_as_before(pair, compose):
    task, loss = pair.split("/")
    old = golden_config(GOLDEN["presets"][pair])
    # 5. squad, squad2 and quoref now train XLNet by default (issue 17); their BERT is `model=bert`.
    new = compose(f"task={task}", f"loss={loss}", *(["model=bert"] if task in QA_TASKS else []))
    new = fixed(old, new, pair)
    for key in ("task", "loss", "model", "trainer", "seed"):
        assert new[key] == old[key], f"{pair}: {key}"


def test_golden_covers_every_old_file():
    assert len(GOLDEN["cells"]) == 120 and len(GOLDEN["presets"]) == 107
    assert sum(len(cells(name)) for name in TABLES) == 120, "every old cell is a cell of a table file"


# ------------------------------------------------------------------------------------------------ composition
@pytest.mark.parametrize("task", TASKS)
def test_every_task_composes_with_every_loss(task, compose):
    for loss in LOSSES:
        cfg = compose(f"task={task}", f"loss={loss}")
        assert cfg["task"]["name"] == task and cfg["loss"]["name"] == loss
        assert cfg["task"]["kind"] in {"tagging", "mrc_ner", "qa", "classification"}
        assert cfg["loss"]["kind"] in {"ce", "wce", "fl", "dl", "tl", "dsc"}
        assert cfg["model"]["name_or_path"] and cfg["scale"]["name"] == "paper"


@pytest.mark.parametrize("model", MODELS)
def test_every_model_composes_and_has_a_tiny_stand_in(model, compose):
    from dicenlp.models.backbone import TINY_BUILDERS

    cfg = compose("task=conll03", f"model={model}")
    assert cfg["model"]["name_or_path"] and cfg["model"]["tiny"] in TINY_BUILDERS
    assert compose("task=conll03", f"model={model}", "scale=smoke")["model"]["name_or_path"] == cfg["model"]["tiny"]


@pytest.mark.parametrize("name", TABLES)
def test_table_files_follow_the_contract(name, compose):
    spec = table(name)
    assert spec["name"] == name and spec["title"] and spec["split"] in ("test", "dev")
    assert set(spec["metrics"]) <= {"precision", "recall", "f1", "em", "accuracy"}
    for values in cells(name):
        numbers = paper_numbers(spec, values)
        assert numbers is not None and all(isinstance(v, float) for v in numbers.values()), values
    for scale in spec.get("scales", {}):
        assert set(spec["scales"][scale]) <= set(spec["grid"]) and cells(name, scale)
    # `experiment=<table>` alone is the first cell
    first = compose(f"experiment={name}")
    for key, value in cells(name)[0].items():
        node = first
        for part in key.split(".") if "." in key else [key, "name"]:
            node = node[part]
        assert str(node) == str(value), (name, key)
    assert first["table"]["name"] == name


def test_file_and_line_budget():
    files = [p for p in CONFIG_DIR.rglob("*") if p.is_file()]
    lines = sum(len(p.read_text(encoding="utf-8").splitlines()) for p in files)
    assert len(files) <= 80, f"{len(files)} files under configs/"
    assert lines <= 2000, f"{lines} lines under configs/"


# ------------------------------------------------------------------------------------------------ recipes
@pytest.mark.parametrize("loss", DICE_FAMILY)
def test_every_dice_loss_keeps_the_official_dice_settings(loss, compose):
    cfg = compose("task=msra", f"loss={loss}")
    assert (cfg["trainer"]["lr"], cfg["trainer"]["batch_size"], cfg["trainer"]["scheduler"]) == (2e-5, 10, "polynomial")
    assert cfg["loss"]["ohem_ratio"] == 0.3 and cfg["task"]["params"]["w_span"] == 0.2
    conll = compose("task=conll03", f"loss={loss}")
    assert (conll["trainer"]["lr"], conll["trainer"]["batch_size"], conll["trainer"]["grad_accum"]) == (3e-5, 36, 8)


def test_a_users_own_loss_file_keeps_the_task_settings(tmp_path):
    """A loss file of one's own that extends dsc (in a folder on Hydra's search path) trains with the dice script."""
    from hydra import compose, initialize_config_dir

    (tmp_path / "loss").mkdir()
    (tmp_path / "loss" / "my_dice.yaml").write_text("defaults: [dsc, _self_]\nname: my_dice\nalpha: 0.1\n")
    with initialize_config_dir(version_base="1.3", config_dir=str(CONFIG_DIR)):
        cfg = compose("train", overrides=["output_dir=x", f"hydra.searchpath=[file://{tmp_path}]", "task=conll03",
                                          "loss=my_dice"])
    assert (cfg.loss.name, cfg.loss.kind, cfg.loss.alpha) == ("my_dice", "dsc", 0.1)
    assert (cfg.trainer.lr, cfg.trainer.batch_size, cfg.trainer.grad_accum) == (3e-5, 36, 8)


def test_ce_family_and_focal_get_their_scripts(compose):
    wce = compose("task=conll03", "loss=wce")
    assert (wce["trainer"]["lr"], wce["trainer"]["batch_size"], wce["trainer"]["grad_accum"]) == (2e-5, 18, 4)
    assert compose("task=conll03", "loss=fl")["loss"]["gamma"] == 3.0
    assert compose("task=ontonotes4", "loss=fl")["loss"]["gamma"] == 4.0
    assert compose("task=wsj", "loss=fl")["loss"]["gamma"] == 2.0
    assert compose("task=mrpc", "loss=wce")["trainer"]["batch_size"] == 24
    assert compose("task=squad2", "loss=fl")["trainer"]["grad_accum"] == 18
    forced = compose("task=conll03", "loss=ce", "loss/recipe=dice")
    assert forced["trainer"]["batch_size"] == 36 and forced["loss"]["name"] == "ce"


def test_qa_trains_xlnet_by_default_and_bert_is_one_override_away(compose):
    for task in QA_TASKS:
        assert compose(f"task={task}", "loss=dsc")["model"]["name_or_path"] == "xlnet/xlnet-large-cased"
        assert compose(f"task={task}", "loss=dsc", "model=bert")["model"]["name_or_path"] == "google-bert/bert-large-uncased"
    assert compose("experiment=table10", "task=quoref")["model"]["name"] == "bert-large-uncased"


def test_precedence_task_then_table_then_scale_then_command_line(compose):
    mrpc = compose("experiment=table7", "task=mrpc", "model=bert-large-cased", "loss=dsc")
    assert mrpc["trainer"]["batch_size"] == 12 and mrpc["task"]["params"]["require_test"] is True
    assert compose("experiment=table7", "task=qqp")["task"]["params"]["require_test"] is False
    mini = compose("experiment=table7", "task=mrpc", "model=bert-large-cased", "loss=dsc", "scale=mini")
    assert (mini["trainer"]["batch_size"], mini["trainer"]["lr"], mini["model"]["dropout"]) == (16, 5e-5, None)
    assert mini["model"]["name"] == "bert-large-cased"  # the cell's encoder name stays: tables find the cell
    assert mini["model"]["name_or_path"] == "sentence-transformers/all-MiniLM-L6-v2"
    cli = compose("task=mrpc", "loss=dsc", "scale=mini", "trainer.batch_size=4", "model.name_or_path=/my/minilm")
    assert (cli["trainer"]["batch_size"], cli["model"]["name_or_path"]) == (4, "/my/minilm")


def test_mini_caps_per_dataset_in_one_place(compose):
    """scale=mini: task.params.max_examples = scale.caps.<task>, else scale.caps.default; the command line
    changes a dataset's caps (scale.caps.<task>.<split>=N) or replaces them (task.params.max_examples={...})."""
    caps = lambda *o: compose("experiment=table5", "loss=dsc", "scale=mini", *o)["task"]["params"]["max_examples"]
    assert caps("task=conll03") == {"train": 400, "dev": 150, "test": 400}
    assert caps("task=msra") == {"train": 1000, "dev": 500, "test": 500}
    assert caps("task=conll03", "scale.caps.conll03.train=300")["train"] == 300
    assert caps("task=conll03", "task.params.max_examples={train: 7}") == {"train": 7}


def test_mini_encoder_comes_from_one_variable(monkeypatch, tmp_path):
    from hydra import compose, initialize_config_dir

    monkeypatch.setenv("DICENLP_MINI_MODEL", str(tmp_path))
    with initialize_config_dir(version_base="1.3", config_dir=str(CONFIG_DIR)):
        for overrides in (["scale=mini"], ["model=minilm"]):
            cfg = compose("train", overrides=["output_dir=x", "task=mrpc", *overrides])
            assert cfg.model.name_or_path == str(tmp_path)


def test_run_folders_name_the_scale():
    from hydra import compose, initialize_config_dir

    with initialize_config_dir(version_base="1.3", config_dir=str(CONFIG_DIR)):
        for scale, tag in (("paper", ""), ("mini", "mini_"), ("smoke", "smoke_")):
            cfg = compose("train", overrides=["task=mrpc", "loss=dsc", f"scale={scale}", "hydra.job.num=3"],
                          return_hydra_config=True)
            assert cfg.hydra.run.dir.endswith(f"_{tag}mrpc_dsc_seed42"), cfg.hydra.run.dir
            assert cfg.hydra.sweep.subdir == f"3_{tag}mrpc_dsc_seed42"


# ------------------------------------------------------------------------------------------------ smoke scale
@pytest.mark.parametrize("task", TASKS)
def test_smoke_scale_points_every_task_at_a_bundled_sample(task, compose):
    from dicenlp.run import resolve_data_dir
    from dicenlp.tasks import build_task

    cfg = compose(f"task={task}", "scale=smoke")
    assert cfg["model"]["name_or_path"].startswith("tiny-")
    params = cfg["task"]["params"]
    assert params["data_dir"].startswith("data/samples/") and (REPO_ROOT / params["data_dir"]).is_dir()
    build_task(cfg["task"]["kind"], **resolve_data_dir(params)).check_data()


@pytest.mark.parametrize("name", TABLES)
def test_smoke_scale_of_every_table_uses_tiny_models_and_samples(name, compose):
    from dicenlp.run import resolve_data_dir
    from dicenlp.tasks import build_task

    last = list(table(name)["grid"])[-1]  # every dataset × model of the table (one loss: the loss plays no part)
    for values in cells(name):
        if values[last] != table(name)["grid"][last][0]:
            continue
        cfg = compose(*cell_overrides(name, values), "scale=smoke")
        tiny = "tiny-xlnet" if "xlnet" in cfg["model"]["name"] else "tiny-bert"
        assert cfg["model"]["name_or_path"] == tiny and cfg["trainer"]["max_steps"] <= 10
        assert cfg["task"]["params"]["data_dir"].startswith("data/samples/")
        build_task(cfg["task"]["kind"], **resolve_data_dir(cfg["task"]["params"])).check_data()  # e.g. a labeled test


def test_the_official_dice_settings_as_typed():
    """`python train.py task=conll03 loss=dsc_official --cfg job --resolve` shows bert_dice.sh's settings."""
    import os
    import subprocess
    import sys

    proc = subprocess.run([sys.executable, str(REPO_ROOT / "train.py"), "task=conll03", "loss=dsc_official", "--cfg",
                           "job", "--resolve"], cwd=REPO_ROOT, capture_output=True, text=True, timeout=300,
                          env={**os.environ, "HF_HUB_OFFLINE": "1"})
    assert proc.returncode == 0, proc.stderr
    cfg = OmegaConf.create(proc.stdout)
    assert (cfg.trainer.batch_size, cfg.trainer.grad_accum, cfg.trainer.lr) == (36, 8, 3e-5)
    assert (cfg.loss.name, cfg.loss.kind, cfg.model.name_or_path) == ("dsc_official", "dsc", "google-bert/bert-large-cased")


def test_another_datasets_mini_caps_leave_a_finished_run_valid(compose):
    """The skip-what-is-done rule compares what a run computes: its own caps (task.params.max_examples), not the
    caps that scale.caps lists for the other datasets."""
    from dicenlp.run_folder import config_changes

    run = compose("experiment=table5", "task=conll03", "loss=dsc", "scale=mini")
    assert config_changes(run, compose("experiment=table5", "task=conll03", "loss=dsc", "scale=mini",
                                       "scale.caps.mrpc.train=10")) == []
    assert config_changes(run, compose("experiment=table5", "task=conll03", "loss=dsc", "scale=mini",
                                       "scale.caps.conll03.train=10")) == ["task.params.max_examples.train: 400 → 10"]
