"""The whole path of one run, as a user runs it: Hydra entry point, results.json, W&B offline, failures."""

from __future__ import annotations

import json
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
    for key in ("loss_params", "seed", "dev", "test", "best_step", "train_time_s", "examples_per_s", "git_commit",
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
    out.mkdir()
    (out / "results.json").write_text('{"stale": true}')
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


def test_wandb_offline_run_records_config_metrics_and_summary(run_train, monkeypatch):
    """The real wandb library, offline: read back what it wrote."""
    monkeypatch.setenv("WANDB_MODE", "offline")
    results = run_train("task=sample_pos", "loss=fl", "logger=wandb", "logger.mode=offline")
    run_dirs = list((Path(results["output_dir"]) / "wandb").glob("offline-run-*"))
    assert len(run_dirs) == 1
    config, history_keys, summary, run_info = {}, set(), {}, None
    for record in read_wandb_records(next(run_dirs[0].glob("*.wandb"))):
        kind = record.WhichOneof("record_type")
        if kind == "run":
            run_info = record.run
            config.update({item.key: json.loads(item.value_json) for item in record.run.config.update})
        elif kind == "config":
            config.update({item.key: json.loads(item.value_json) for item in record.config.update})
        elif kind == "history":
            history_keys.update(_key(item) for item in record.history.item)
        elif kind == "summary":
            summary.update({_key(item): json.loads(item.value_json) for item in record.summary.update})
    assert run_info.run_group == "sample_pos-tiny-bert-fl"
    assert {"task:sample_pos", "loss:fl", "model:tiny-bert"} <= set(run_info.tags)
    config = {k: v.get("value", v) if isinstance(v, dict) else v for k, v in config.items()}
    assert config["loss.name"] == "fl" and config["trainer.max_steps"] == 4 and "task.params.data_dir" in config
    assert {"train/loss", "train/lr", "dev/f1"} <= history_keys
    assert summary["test/f1"] == pytest.approx(results["test"]["f1"])


@pytest.mark.parametrize("loss", ["ce", "dsc"])
def test_bf16_mixed_precision_trains_on_cpu(run_train, loss):
    """Accelerate's bf16 autocast (CPU here, GPU for users): finite losses, every metric written. In one
    process after an fp32 run (as in a Hydra multirun): Accelerate's global state must not refuse it."""
    run_train("task=sample_pos", "loss=ce", "trainer.max_steps=1")
    results = run_train("task=sample_pos", f"loss={loss}", "trainer.mixed_precision=bf16", "trainer.max_steps=6")
    assert results["mixed_precision"] == "bf16"
    assert 0 <= results["test"]["f1"] <= 100 and results["best_step"] > 0
