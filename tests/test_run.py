"""The whole path of one run, as a user runs it: Hydra entry point, results.json, W&B offline, failures."""

from __future__ import annotations

import json
import re
import os
import subprocess
import sys
from pathlib import Path

import pytest

from conftest import REPO_ROOT, TINY_RUN


def _train_py(*args: str, cwd=REPO_ROOT, timeout=300) -> subprocess.CompletedProcess:
    env = {**os.environ, "WANDB_MODE": "offline", "HF_HUB_OFFLINE": "1"}
    return subprocess.run([sys.executable, str(REPO_ROOT / "train.py"), *args], cwd=cwd, env=env,
                          capture_output=True, text=True, timeout=timeout)


def test_cfg_job_prints_the_composed_config():
    proc = _train_py("task=sample_pos", "loss=dsc", "--cfg", "job", "--resolve")
    assert proc.returncode == 0, proc.stderr
    assert "kind: tagging" in proc.stdout and "name: dsc" in proc.stdout and "lr:" in proc.stdout


def test_help_lists_the_config_groups():
    proc = _train_py("--help")
    assert proc.returncode == 0, proc.stderr
    for group in ("task:", "loss:", "model:", "scale:", "experiment:", "trainer:", "logger:"):
        assert group in proc.stdout
    assert "experiment=table5 task=msra" in proc.stdout and "scale=smoke" in proc.stdout


def test_a_typo_in_a_key_fails_before_any_work(tmp_path):
    proc = _train_py("trainer.lrr=1e-5", f"hydra.run.dir={tmp_path / 'run'}")
    assert proc.returncode != 0
    assert "lrr" in proc.stderr
    assert not (tmp_path / "run" / "config.yaml").exists()


def test_run_writes_config_predictions_and_results(run_train):
    results = run_train("task=sample_pos", "loss=dsc")
    out = results["output_dir"]
    saved = json.loads(open(f"{out}/results.json").read())
    assert saved["task"] == "sample_pos" and saved["loss"] == "dsc" and saved["model"] == "tiny-bert"
    for key in ("loss_params", "seed", "dev", "test", "best_step", "train_time_s", "throughput", "git_commit",
                "config", "primary_metric"):
        assert key in saved, key
    assert saved["loss_params"]["alpha"] == results["config"]["loss"]["alpha"]
    assert 0 <= saved["test"]["f1"] <= 100 and saved["best_step"] in (2, 4)
    assert os.path.exists(f"{out}/config.yaml")
    for split in ("dev", "test"):
        assert os.path.exists(f"{out}/predictions_{split}.json")


def test_checkpoint_is_saved_with_safetensors_and_reloads(run_train):
    from transformers import AutoModel

    results = run_train("task=sample_pos", "loss=ce", "trainer.save_checkpoint=true")
    checkpoint = os.path.join(results["output_dir"], "checkpoint")
    assert os.path.exists(os.path.join(checkpoint, "encoder", "model.safetensors"))
    assert os.path.exists(os.path.join(checkpoint, "head.safetensors"))
    assert AutoModel.from_pretrained(os.path.join(checkpoint, "encoder")).config.hidden_size == 32


def test_failed_run_leaves_no_results_json(tmp_path, compose_config):
    from dicenlp.run import run

    out = tmp_path / "run"
    cfg = compose_config(*TINY_RUN, "task=sample_pos", "task.params.data_dir=/nonexistent/pos", output_dir=out)
    with pytest.raises(FileNotFoundError, match="/nonexistent/pos"):
        run(cfg)
    assert not (out / "results.json").exists()


def read_wandb_records(path):
    """Records of a ``.wandb`` run file: wandb's LevelDB-style log (7-byte file header ":W&B", 32 KiB blocks,
    7-byte record headers: crc32, length, type FULL=1/FIRST=2/MIDDLE=3/LAST=4) of ``Record`` protobufs.
    (wandb >= 0.19 writes it from its Go core and no longer ships a Python reader.)"""
    import struct

    from wandb.proto import wandb_internal_pb2

    data = open(path, "rb").read()
    ident, magic, version = struct.unpack("<4sHB", data[:7])
    assert (ident, magic, version) == (b":W&B", 0xBEE1, 0)
    block, pos, chunk = 32768, 7, b""
    while pos + 7 <= len(data):
        if block - pos % block < 7:  # a record header never straddles a block: the rest is padding
            pos += block - pos % block
            continue
        _, length, kind = struct.unpack("<IHB", data[pos:pos + 7])
        if kind == 0:
            break
        chunk += data[pos + 7:pos + 7 + length]
        pos += 7 + length
        if kind in (1, 4):
            record = wandb_internal_pb2.Record()
            record.ParseFromString(chunk)
            yield record
            chunk = b""


def _key(item) -> str:
    return item.key or ".".join(item.nested_key)


def read_wandb_run(run_dir: Path) -> dict:
    """What an offline W&B run wrote: run info, config, history keys, final summary, metric definitions,
    artifacts (name → type and files)."""
    out = {"config": {}, "history_keys": set(), "summary": {}, "metrics": [], "artifacts": {}, "run": None}
    for record in read_wandb_records(next(run_dir.glob("*.wandb"))):
        kind = record.WhichOneof("record_type")
        if kind == "run":
            out["run"] = record.run
            out["config"].update({item.key: json.loads(item.value_json) for item in record.run.config.update})
        elif kind == "config":
            out["config"].update({item.key: json.loads(item.value_json) for item in record.config.update})
        elif kind == "history":
            out["history_keys"].update(_key(item) for item in record.history.item)
        elif kind == "summary":  # replayed in order: the last value of a key is the run's summary
            out["summary"].update({_key(item): json.loads(item.value_json) for item in record.summary.update})
        elif kind == "metric":
            out["metrics"].append(record.metric)
        elif kind == "artifact":
            out["artifacts"][record.artifact.name] = (record.artifact.type,
                                                      sorted(m.path for m in record.artifact.manifest.contents))
    out["config"] = {k: v.get("value", v) if isinstance(v, dict) else v for k, v in out["config"].items()}
    return out


def test_wandb_offline_run_equals_results_json(run_train, monkeypatch, tmp_path):
    """The real wandb library, offline, on a NER run (per-type metrics) of a paper cell: read back what it wrote."""
    monkeypatch.setenv("WANDB_MODE", "offline")
    monkeypatch.delenv("WANDB_DIR", raising=False)
    results = run_train("experiment=table5", "task=conll03", "task.params.data_dir=data/samples/conll03", "loss=dsc",
                        "logger=wandb", "logger.mode=offline", "trainer.max_steps=6")
    run_dirs = list((Path(results["output_dir"]) / "wandb").glob("offline-run-*"))
    assert len(run_dirs) == 1
    wb = read_wandb_run(run_dirs[0])
    assert wb["run"].run_group == "conll03-tiny-bert-dsc"
    assert {"task:conll03", "loss:dsc", "model:tiny-bert", "scale:paper"} <= set(wb["run"].tags)
    config = wb["config"]
    assert config["loss.name"] == "dsc" and config["trainer.max_steps"] == 6 and "task.params.data_dir" in config
    assert config["git_commit"] == results["git_commit"] and config["loss_variant"] == "dsc"
    assert {"train/loss", "train/lr", "dev/f1", "test/f1", "trainer/step"} <= wb["history_keys"]
    # the step axis and the best dev metric are defined
    steps = {m.glob_name or m.name: m.step_metric for m in wb["metrics"]}
    assert steps["train/*"] == steps["dev/*"] == steps["test/*"] == "trainer/step"
    assert any(m.name == "dev/f1" and m.summary.max for m in wb["metrics"])
    # the summary is results.json's numbers: the best checkpoint's dev metrics (not the last evaluation's)
    summary = wb["summary"]
    for split in ("dev", "test"):
        for metric, value in results[split].items():
            assert summary[f"{split}/{metric}"] == pytest.approx(value, abs=1e-12), (split, metric)
    assert summary["best_step"] == results["best_step"]
    assert results["paper"]["f1"] == 93.33  # Table 5, BERT-MRC+DSC on CoNLL 2003
    assert summary["paper/f1"] == 93.33 and summary["delta/f1"] == pytest.approx(results["test"]["f1"] - 93.33)
    assert summary["delta/precision"] == pytest.approx(results["test"]["precision"] - 93.41)
    # per-type F1 as a table, and results.json + config.yaml as an artifact
    table = json.loads(next(run_dirs[0].glob("files/media/table/per_class*.table.json")).read_text())
    assert table["columns"] == ["split", "class", "precision", "recall", "f1"]
    rows = {(r[0], r[1]): r[4] for r in table["data"]}
    assert rows[("test", "PER")] == pytest.approx(results["test"]["f1_PER"]) and len(rows) == 8
    run_id = wb["run"].run_id
    assert wb["artifacts"][f"results-{run_id}"] == ("results", ["config.yaml", "results.json"])


def test_wandb_dir_is_honoured(run_train, monkeypatch, tmp_path):
    monkeypatch.setenv("WANDB_MODE", "offline")
    monkeypatch.setenv("WANDB_DIR", str(tmp_path / "wb"))
    results = run_train("task=sample_pos", "loss=ce", "logger=wandb", "trainer.max_steps=2")
    assert not (Path(results["output_dir"]) / "wandb").exists()
    assert len(list((tmp_path / "wb" / "wandb").glob("offline-run-*"))) == 1


def test_an_interrupted_run_resumes_its_wandb_run(compose_config, monkeypatch, tmp_path):
    """Interrupted after its first saved state (an exception where a kill would strike), the run continues from
    that state and from the same W&B run (same id); metrics.jsonl has each step once."""
    import dicenlp.checkpoints
    import dicenlp.trainer
    from dicenlp.curves import read_metrics
    from dicenlp.run import run

    monkeypatch.setenv("WANDB_MODE", "offline")
    monkeypatch.delenv("WANDB_DIR", raising=False)
    save = dicenlp.checkpoints.save_training_state

    def save_then_stop(accelerator, run_dir, state):
        save(accelerator, run_dir, state)
        raise KeyboardInterrupt("killed")

    out = tmp_path / "run"
    cfg = compose_config(*TINY_RUN, "task=sample_pos", "loss=ce", "logger=wandb", "trainer.max_steps=6",
                         output_dir=out)
    monkeypatch.setattr(dicenlp.trainer, "save_training_state", save_then_stop)
    with pytest.raises(KeyboardInterrupt):
        run(cfg)
    monkeypatch.setattr(dicenlp.trainer, "save_training_state", save)
    results = run(cfg)
    assert results["resumed_from_step"] == 2
    # offline-run-<date>_<time>-<id>, with a "-1" suffix when both starts fell in one second: one W&B run id
    folders = list((out / "wandb").glob("offline-run-*"))
    ids = {re.match(r"offline-run-\d{8}_\d{6}-([a-z0-9]+)", d.name).group(1) for d in folders}
    assert len(folders) == 2 and len(ids) == 1
    steps = [r["step"] for r in read_metrics(out / "metrics.jsonl") if "train/loss" in r]
    assert steps == [1, 2, 3, 4, 5, 6]


@pytest.mark.parametrize("loss", ["ce", "dsc"])
def test_bf16_mixed_precision_trains_on_cpu(run_train, loss):
    """Accelerate's bf16 autocast (CPU here, GPU for users): finite losses, every metric written. In one
    process after an fp32 run (as in a Hydra multirun): Accelerate's global state must not refuse it."""
    run_train("task=sample_pos", "loss=ce", "trainer.max_steps=1")
    results = run_train("task=sample_pos", f"loss={loss}", "trainer.mixed_precision=bf16", "trainer.max_steps=6")
    assert results["mixed_precision"] == "bf16"
    assert 0 <= results["test"]["f1"] <= 100 and results["best_step"] > 0
