"""Long runs survive a kill: a run killed for real (SIGKILL) after an evaluation and started again with the same
command ends with the same metrics, weights and curves as a run that was never interrupted; one run per folder."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from safetensors.torch import load_file

from conftest import REPO_ROOT, TINY_RUN, launch_ranks

from dicenlp.checkpoints import STATE_FILE, latest_state
from dicenlp.curves import MetricsFile, read_metrics
from dicenlp.errors import RunDirError


@pytest.fixture(scope="module")
def small_pos(tmp_path_factory) -> Path:
    """The bundled POS sample with 40 training sentences: 5 batches of 8, so 40 steps cross many epochs."""
    folder = tmp_path_factory.mktemp("pos")
    blocks = (REPO_ROOT / "data/samples/pos/train.tsv").read_text(encoding="utf-8").split("\n\n")
    (folder / "train.tsv").write_text("\n\n".join(blocks[:40]) + "\n", encoding="utf-8")
    for split in ("dev", "test"):
        (folder / f"{split}.tsv").write_text((REPO_ROOT / f"data/samples/pos/{split}.tsv").read_text("utf-8"), "utf-8")
    return folder


def _command(data_dir: Path, run_dir: Path) -> list[str]:
    # dropout > 0: the resumed run must restore the RNG states; grad_accum 2 with 5 batches per epoch: a state
    # saved in the middle of an epoch and of an accumulation cycle's epoch tail
    return [sys.executable, str(REPO_ROOT / "train.py"), "task=sample_pos", "loss=ce", *TINY_RUN,
            "model.dropout=0.1", f"task.params.data_dir={data_dir}", "trainer.max_steps=40", "trainer.eval_every=5",
            "trainer.grad_accum=2", "trainer.warmup_ratio=0.1", "trainer.lr=1e-3", "trainer.save_checkpoint=true",
            f"hydra.run.dir={run_dir}"]


def _env() -> dict[str, str]:
    return {**os.environ, "WANDB_MODE": "offline", "HF_HUB_OFFLINE": "1", "OMP_NUM_THREADS": "1"}


def _weights(run_dir: Path) -> dict:
    return {f"{p.parent.name}/{p.name}/{k}": v for p in sorted((run_dir / "checkpoint").rglob("*.safetensors"))
            for k, v in load_file(p).items()}


def test_a_run_killed_after_an_evaluation_resumes_to_the_same_result(tmp_path, small_pos):
    whole, killed = tmp_path / "whole", tmp_path / "killed"
    done = subprocess.run(_command(small_pos, whole), env=_env(), capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr[-3000:]

    proc = subprocess.Popen(_command(small_pos, killed), env=_env(), stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 300
    while not (killed / "state" / STATE_FILE).exists():  # the state of step 5 (or later) is complete
        assert proc.poll() is None and time.monotonic() < deadline, "the run ended before it saved a state"
        time.sleep(0.005)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    assert not (killed / "results.json").exists(), "killed too late: the run had finished"
    saved = json.loads((latest_state(killed) / STATE_FILE).read_text())  # state/, or state.old/ mid-swap
    assert 5 <= saved["step"] < 40

    again = subprocess.run(_command(small_pos, killed), env=_env(), capture_output=True, text=True, timeout=600)
    assert again.returncode == 0, again.stderr[-3000:]
    assert f"resuming sample_pos at step {saved['step']} of 40" in again.stdout + again.stderr
    one, two = (json.loads((d / "results.json").read_text()) for d in (whole, killed))
    assert two["resumed_from_step"] == saved["step"] and one["resumed_from_step"] is None
    assert two["dev"] == one["dev"] and two["test"] == one["test"] and two["best_step"] == one["best_step"]
    w1, w2 = _weights(whole), _weights(killed)
    assert w1.keys() == w2.keys() and len(w1) > 10
    assert all((w1[k] == w2[k]).all() for k in w1)  # bit for bit
    # the curves continue where the state was saved: no duplicated or missing record
    assert read_metrics(killed / "metrics.jsonl") == read_metrics(whole / "metrics.jsonl")
    for run_dir in (whole, killed):  # a completed run keeps no training state
        assert not (run_dir / "state").exists() and not (run_dir / "best").exists()


@pytest.mark.slow
def test_two_processes_killed_and_resumed_match_an_uninterrupted_two_process_run(tmp_path, small_pos):
    """The same on 2 CPU processes (gloo): each process's RNG states and its share of the skipped batches."""
    command = [*_command(small_pos, tmp_path / "x"), "trainer.batch_size=4", "trainer.max_steps=30"]

    def ranks(run_dir: Path, kill: bool = False) -> None:
        procs = launch_ranks([*command[:-1], f"hydra.run.dir={run_dir}"], tmp_path)
        deadline = time.monotonic() + 300
        while kill and not (run_dir / "state" / STATE_FILE).exists():
            assert all(p.poll() is None for p in procs) and time.monotonic() < deadline
            time.sleep(0.005)
        for proc in procs:
            if kill:
                proc.kill()
            _, err = proc.communicate(timeout=600)
            assert kill or proc.returncode == 0, err[-3000:]

    ranks(tmp_path / "whole")
    ranks(tmp_path / "killed", kill=True)
    assert not (tmp_path / "killed" / "results.json").exists()
    ranks(tmp_path / "killed")
    one, two = (json.loads((tmp_path / d / "results.json").read_text()) for d in ("whole", "killed"))
    assert two["num_processes"] == 2 and two["resumed_from_step"] >= 5
    assert two["dev"] == one["dev"] and two["test"] == one["test"]
    w1, w2 = _weights(tmp_path / "whole"), _weights(tmp_path / "killed")
    assert all((w1[k] == w2[k]).all() for k in w1)
    assert read_metrics(tmp_path / "killed" / "metrics.jsonl") == read_metrics(tmp_path / "whole" / "metrics.jsonl")


def test_latest_state_survives_a_kill_during_a_save(tmp_path):
    """A save writes state.tmp, renames state → state.old and state.tmp → state: at every moment one complete
    state exists, marked by its trainer_state.json."""
    assert latest_state(tmp_path) is None
    (tmp_path / "state.tmp").mkdir()  # killed while writing: incomplete, never used
    assert latest_state(tmp_path) is None
    (tmp_path / "state.old").mkdir()
    (tmp_path / "state.old" / STATE_FILE).write_text("{}")  # killed between the two renames
    assert latest_state(tmp_path) == tmp_path / "state.old"
    (tmp_path / "state").mkdir()
    (tmp_path / "state" / STATE_FILE).write_text("{}")
    assert latest_state(tmp_path) == tmp_path / "state"


def test_metrics_file_of_a_resumed_run_drops_the_records_after_the_state(tmp_path):
    path = tmp_path / "metrics.jsonl"
    first = MetricsFile(path)
    for step in (1, 2, 3, 4):
        first.log({"train/loss": 1.0 / step}, step)
    first.finish(True)
    with path.open("a") as handle:
        handle.write('{"step": 5, "train/lo')  # torn by the kill
    resumed = MetricsFile(path, resume_step=2)
    resumed.log({"train/loss": 0.25}, 3)
    resumed.finish(True)
    assert read_metrics(path) == [{"step": 1, "train/loss": 1.0}, {"step": 2, "train/loss": 0.5},
                                  {"step": 3, "train/loss": 0.25}]


# ------------------------------------------------------------------------------------------ one run per folder
def test_a_finished_run_is_not_run_again_and_a_changed_config_is_refused(run_train, compose_config):
    from dicenlp.run import run

    first = run_train("task=sample_pos", "loss=ce", "trainer.max_steps=2")
    folder = Path(first["output_dir"])
    stamp = (folder / "results.json").stat().st_mtime_ns
    again = run(compose_config(*TINY_RUN, "task=sample_pos", "loss=ce", "trainer.max_steps=2", output_dir=folder))
    assert again == json.loads((folder / "results.json").read_text())
    assert (folder / "results.json").stat().st_mtime_ns == stamp  # nothing was trained or written
    with pytest.raises(RunDirError, match=r"holds a finished run \(results.json\) with another config "
                                          r"\(trainer.max_steps: 2 → 3\); expected the same config"):
        run(compose_config(*TINY_RUN, "task=sample_pos", "loss=ce", "trainer.max_steps=3", output_dir=folder))
    with pytest.raises(RunDirError, match="holds a finished run .*expected an unused folder with trainer.resume=never"):
        run(compose_config(*TINY_RUN, "task=sample_pos", "loss=ce", "trainer.max_steps=2", "trainer.resume=never",
                           output_dir=folder))


def test_a_folder_whose_run_failed_before_any_state_is_cleared_for_the_new_run(tmp_path, compose_config):
    from dicenlp.run import run

    folder = tmp_path / "run"
    folder.mkdir()
    (folder / "config.yaml").write_text("seed: 1\n")  # an earlier run that failed early, with its leftovers
    for stale in ("predictions_dev.json", "metrics.jsonl"):
        (folder / stale).write_text("stale")
    (folder / "checkpoint").mkdir()
    (folder / "notes.txt").write_text("mine")  # not a run file: left alone
    results = run(compose_config(*TINY_RUN, "task=sample_pos", "loss=ce", "trainer.max_steps=2", output_dir=folder))
    assert results["resumed_from_step"] is None
    assert not (folder / "checkpoint").exists() and (folder / "notes.txt").read_text() == "mine"
    assert (folder / "predictions_dev.json").read_text() != "stale"
    assert [r["step"] for r in read_metrics(folder / "metrics.jsonl")][0] == 1


def test_resume_must_needs_a_state(tmp_path, compose_config):
    from dicenlp.run import run

    with pytest.raises(RunDirError, match=r"run: no run to resume here; expected a folder with a saved state"):
        run(compose_config(*TINY_RUN, "trainer.resume=must", output_dir=tmp_path / "run"))
