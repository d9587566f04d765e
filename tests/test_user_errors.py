"""The bad-input catalogue: every mistake a user makes in the data, the config or the device gets one line
``error: <where>: <what>; expected <...>`` on stderr, exit code 2, no traceback and no results.json.

The catalogue runs ``dicenlp.run.run`` behind the same edge as ``train.py`` (``exit_on_user_error``) in this
process, on configs composed by Hydra from the real files; a few cases go through ``python train.py`` itself to
show the edge as a user sees it (and Hydra's own errors, exit code 1, and an unexpected error, which keeps its
traceback).
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

import pytest
import torch

from conftest import REPO_ROOT, TINY_RUN

from dicenlp.errors import USER_ERROR_EXIT_CODE, exit_on_user_error

SAMPLES = REPO_ROOT / "data" / "samples"
LATIN1 = "café".encode("latin-1")  # not UTF-8


def copy_sample(name: str, target: Path) -> Path:
    shutil.copytree(SAMPLES / name, target)
    return target


def append_bytes(path: Path, data: bytes) -> int:
    """Append ``data`` as the file's next line; returns that line's number."""
    text = path.read_bytes()
    if not text.endswith(b"\n"):
        text += b"\n"
    path.write_bytes(text + data)
    return text.count(b"\n") + 1


def replace_line(path: Path, line_no: int, new: str) -> None:
    lines = path.read_text(encoding="utf-8").split("\n")
    lines[line_no - 1] = new
    path.write_text("\n".join(lines), encoding="utf-8")


# ------------------------------------------------------------------------------------------ data fixtures
def pos(tmp: Path, mutate: Callable[[Path], object] = lambda d: None) -> list[str]:
    folder = copy_sample("pos", tmp / "pos")
    mutate(folder)
    return ["task=sample_pos", f"task.params.data_dir={folder}"]


def ner(tmp: Path, mutate: Callable[[Path], object] = lambda d: None) -> list[str]:
    folder = tmp / "ner"
    folder.mkdir()
    for split in ("train", "dev", "test"):
        shutil.copy(SAMPLES / "conll03" / f"{split}.txt", folder)
    mutate(folder)
    return ["task=conll03", f"task.params.data_dir={folder}"]


def squad(tmp: Path, mutate: Callable[[Path], object] = lambda d: None) -> list[str]:
    folder = copy_sample("squad/v1.1", tmp / "squad")
    mutate(folder)
    return ["task=sample_squad", f"task.params.data_dir={folder}"]


def mrpc(tmp: Path, mutate: Callable[[Path], object] = lambda d: None) -> list[str]:
    folder = copy_sample("glue/MRPC", tmp / "mrpc")
    mutate(folder)
    return ["task=mrpc", f"task.params.data_dir={folder}"]


def squad_json(folder: Path, name: str, obj) -> None:
    (folder / name).write_text(json.dumps(obj, indent=1), encoding="utf-8")


def edit_squad_answer(folder: Path) -> None:
    data = json.loads((folder / "train-v1.1.json").read_text(encoding="utf-8"))
    data["data"][0]["paragraphs"][0]["qas"][0]["answers"][0]["text"] = "not in the context"
    squad_json(folder, "train-v1.1.json", data)


def finished_run(tmp: Path) -> list[str]:
    """A run folder holding a finished run made with another config."""
    (tmp / "run").mkdir()
    (tmp / "run" / "config.yaml").write_text("seed: 42\ntrainer: {max_steps: 1}\n")
    (tmp / "run" / "results.json").write_text("{}")
    return ["task=sample_pos"]


@dataclass
class Case:
    id: str
    message: str                                   # regex for the text after "error: "
    overrides: list[str] = field(default_factory=list)
    data: Callable[[Path], list[str]] = lambda tmp: ["task=sample_pos"]


CASES = [
    # ---- data files: what, file:line, what was expected
    Case("pos-not-utf8", r".*/pos/train.tsv:\d+: not UTF-8 text \(byte 0xe9 at column 4\); expected UTF-8; "
                         r"convert the file, e.g. iconv -f latin1 -t utf-8",
         data=lambda t: pos(t, lambda d: append_bytes(d / "train.tsv", LATIN1 + b"\tNN\n"))),
    Case("ner-not-utf8", r".*/ner/dev.txt:286: not UTF-8 text \(byte 0xe9 at column 4\)",
         data=lambda t: ner(t, lambda d: append_bytes(d / "dev.txt", LATIN1 + b" NN O O\n"))),
    Case("squad-not-utf8", r".*/squad/dev-v1.1.json:2: not UTF-8 text",
         data=lambda t: squad(t, lambda d: (d / "dev-v1.1.json").write_bytes(b'{\n"v": "' + LATIN1 + b'"}'))),
    Case("mrpc-not-utf8", r".*/mrpc/train.tsv:\d+: not UTF-8 text",
         data=lambda t: mrpc(t, lambda d: append_bytes(d / "train.tsv", b"1\t1\t2\t" + LATIN1 + b"\tb\n"))),
    Case("squad-empty-dev", r".*/squad/dev-v1.1.json: no questions; expected at least one question",
         data=lambda t: squad(t, lambda d: squad_json(d, "dev-v1.1.json", {"version": "1.1", "data": []}))),
    Case("squad-invalid-json", r".*/squad/train-v1.1.json: line 1, column 2: not valid JSON",
         data=lambda t: squad(t, lambda d: (d / "train-v1.1.json").write_text("{oops", encoding="utf-8"))),
    Case("squad-answer-not-in-context", r".*/squad/train-v1.1.json: data\[0\].paragraphs\[0\].qas\[0\] \(id '.*'\)"
                                        r".answers\[0\]: answer text 'not in the context' is not at answer_start",
         data=lambda t: squad(t, edit_squad_answer)),
    Case("ner-unknown-type", r".*/ner/dev.txt:5: entity type 'CITY' has no query; expected one of "
                             r"\['PER', 'ORG', 'LOC', 'MISC'\]",
         data=lambda t: ner(t, lambda d: replace_line(d / "dev.txt", 5, "Jones NNP I-NP B-CITY"))),
    Case("ner-malformed-tag", r".*/ner/train.txt:5: cannot parse tag 'X-PER': expected 'O' or PREFIX-TYPE",
         data=lambda t: ner(t, lambda d: replace_line(d / "train.txt", 5, "Jones NNP I-NP X-PER"))),
    Case("ner-strict-ill-formed", r".*/ner/train.txt:5: tag 'I-PER' \(after 'O', before 'O'\) is not well formed "
                                  r"for scheme BIO",
         overrides=["task.params.strict=true"],
         data=lambda t: ner(t, lambda d: replace_line(d / "train.txt", 5, "Jones NNP I-NP I-PER"))),
    Case("ner-no-dev-file", r".*/ner: no dev file for task .conll03.; expected the file, or task.params.split_off",
         data=lambda t: ner(t, lambda d: (d / "dev.txt").unlink())),
    Case("pos-wrong-column-count", r".*/pos/dev.tsv:3: expected 2 columns \(as on line 1\), found 3",
         data=lambda t: pos(t, lambda d: replace_line(d / "dev.tsv", 3, "a\tb\tc"))),
    Case("pos-empty-train", r".*/pos/train.tsv: no sentences found",
         data=lambda t: pos(t, lambda d: (d / "train.tsv").write_text(""))),
    Case("mrpc-bad-label", r".*/mrpc/dev.tsv:3: expected a label in 0..1 in column 'Quality', found '7'",
         data=lambda t: mrpc(t, lambda d: replace_line(
             d / "dev.tsv", 3, "7\t1\t2\tA sentence .\tAnother sentence ."))),
    Case("missing-data-dir", r"task 'sample_pos': missing data file\(s\) /nonexistent/pos/train.tsv",
         overrides=["task.params.data_dir=/nonexistent/pos"]),
    Case("data-error-before-model", r".*/pos/train.tsv:\d+: not UTF-8",  # the model would fail too, later
         overrides=["model.name_or_path=/nonexistent/model"],
         data=lambda t: pos(t, lambda d: append_bytes(d / "train.tsv", LATIN1 + b"\tNN\n"))),
    # ---- config values: the key, the value, what is accepted
    Case("lr-negative", r"trainer.lr: -1(.0)? is not valid; expected a learning rate >= 0", ["trainer.lr=-1"]),
    Case("lr-not-a-number", r"trainer.lr: 'abc' is not valid; expected a learning rate", ["trainer.lr=abc"]),
    Case("max-steps-zero", r"trainer.max_steps: 0 is not valid; expected -1 \(train for max_epochs\) or a number "
                           r"of optimizer steps >= 1", ["trainer.max_steps=0"]),
    Case("batch-size-zero", r"trainer.batch_size: 0 is not valid; expected an integer >= 1", ["trainer.batch_size=0"]),
    Case("grad-accum-zero", r"trainer.grad_accum: 0 is not valid", ["trainer.grad_accum=0"]),
    Case("warmup-ratio", r"trainer.warmup_ratio: 1.5 is not valid; expected a fraction", ["trainer.warmup_ratio=1.5"]),
    Case("eval-every-zero", r"trainer.eval_every: 0 is not valid", ["trainer.eval_every=0"]),
    Case("unknown-scheduler", r"trainer.scheduler: 'cosine' is not valid; expected one of linear, polynomial, "
                              r"constant", ["trainer.scheduler=cosine"]),
    Case("unknown-precision", r"trainer.mixed_precision: 'fp8' is not valid; expected one of no, fp16, bf16",
         ["trainer.mixed_precision=fp8"]),
    Case("unknown-resume-mode", r"trainer.resume: 'maybe' is not valid; expected one of auto, never, must",
         ["trainer.resume=maybe"]),
    Case("unknown-trainer-key", r"trainer: unknown setting\(s\) \['lrr'\]; expected one of", ["+trainer.lrr=1"]),
    Case("unknown-task-param", r"task.params: unknown key\(s\) \['foo'\]; expected keys of TaggingTask",
         ["+task.params.foo=1"]),
    Case("invalid-task-param", r"task.params: max_length must be at least 3", ["task.params.max_length=2"]),
    Case("unknown-logger", r"logger.name: unknown logger 'tensorboard'; expected none or wandb",
         ["logger.name=tensorboard"]),
    Case("model-not-found", r"model.name_or_path: could not load the tokenizer of '/nonexistent/model'.*; expected "
                            r"a Hugging Face model name", ["model.name_or_path=/nonexistent/model"]),
    # ---- device and run folder
    Case("fp16-on-cpu", r"trainer.mixed_precision: fp16 mixed precision cannot run on this cpu; expected bf16 "
                        r"\(CPUs and recent GPUs\) or no; fp16 needs a GPU", ["trainer.mixed_precision=fp16"]),
    Case("resume-must-without-state", r".*/run: no run to resume here", ["trainer.resume=must"]),
    Case("folder-holds-another-run", r".*/run: the folder holds a finished run \(results.json\) with another "
                                     r"config \(.*\); expected the same config to continue it",
         data=finished_run),
]


@pytest.mark.parametrize("case", CASES, ids=[c.id for c in CASES])
def test_bad_input_gets_one_clear_message_and_exit_code_2(case, tmp_path, compose_config, capsys):
    from dicenlp.run import run

    if case.id == "fp16-on-cpu" and torch.cuda.is_available():
        pytest.skip("fp16 runs on this machine's GPU")
    extra = case.data(tmp_path)
    out = tmp_path / "run"
    had_results = (out / "results.json").exists()
    cfg = compose_config(*TINY_RUN, *extra, *case.overrides, output_dir=out)
    with pytest.raises(SystemExit) as stopped:
        exit_on_user_error(run, cfg)
    captured = capsys.readouterr()
    assert stopped.value.code == USER_ERROR_EXIT_CODE == 2
    assert "Traceback" not in captured.out + captured.err
    errors = [line for line in captured.err.splitlines() if line.startswith("error: ")]
    assert len(errors) == 1, captured.err
    assert re_match(case.message, errors[0].removeprefix("error: ")), errors[0]
    assert (out / "results.json").exists() == had_results  # nothing written, nothing removed


def re_match(pattern: str, text: str) -> bool:
    import re

    return re.fullmatch(pattern + r".*", text) is not None


def test_the_catalogue_is_complete():
    assert len(CASES) >= 25 and len({c.id for c in CASES}) == len(CASES)


def test_an_ill_formed_bio_tag_is_repaired_counted_and_recorded(run_train, tmp_path, caplog):
    """I-PER without B-PER in IOB2 data: read as conlleval does (a new entity starts), the count logged and in
    results.json (the documented repair, not an error; task.params.strict=true makes it one)."""
    extra = ner(tmp_path, lambda d: replace_line(d / "train.txt", 5, "Jones NNP I-NP I-PER"))
    results = run_train(*extra, "trainer.max_steps=1", "task.params.scheme=BIO")
    train_file = extra[1].split("=", 1)[1] + "/train.txt"
    assert results["data_repairs"] == {train_file: {"scheme": "BIO", "ill_formed_tags": 1, "first": f"{train_file}:5"}}
    saved = json.loads((Path(results["output_dir"]) / "results.json").read_text())
    assert saved["data_repairs"] == results["data_repairs"]
    assert "1 tag(s) are not well formed for BIO (first at line 5: tag 'I-PER' (after 'O', before 'O'))" in caplog.text


# ------------------------------------------------------------------------------------------ python train.py
def _train_py(*args: str, cwd=REPO_ROOT) -> subprocess.CompletedProcess:
    env = {**os.environ, "WANDB_MODE": "offline", "HF_HUB_OFFLINE": "1"}
    return subprocess.run([sys.executable, str(REPO_ROOT / "train.py"), *args], cwd=cwd, env=env,
                          capture_output=True, text=True, timeout=300)


def test_train_py_prints_one_line_and_exits_2(tmp_path):
    extra = pos(tmp_path, lambda d: append_bytes(d / "dev.tsv", b"ok\tNN\n" + LATIN1 + b"\tNN\n"))
    proc = _train_py(*TINY_RUN, *extra, "trainer.lr=-1", f"hydra.run.dir={tmp_path / 'a'}")
    assert proc.returncode == 2 and "Traceback" not in proc.stderr + proc.stdout
    assert proc.stderr.strip().splitlines()[-1] == ("error: trainer.lr: -1 is not valid; expected a learning rate >= 0 "
                                                    "(0 freezes the model)")
    proc = _train_py(*TINY_RUN, *extra, f"hydra.run.dir={tmp_path / 'b'}")  # the lr fixed: now the data
    assert proc.returncode == 2 and "Traceback" not in proc.stderr + proc.stdout
    assert proc.stderr.strip().splitlines()[-1] == (
        f"error: {tmp_path}/pos/dev.tsv:968: not UTF-8 text (byte 0xe9 at column 4); expected UTF-8; convert the "
        f"file, e.g. iconv -f latin1 -t utf-8")
    assert not (tmp_path / "b" / "results.json").exists()


def test_a_mistake_in_one_job_of_a_sweep_does_not_stop_the_others(tmp_path):
    proc = _train_py("-m", *TINY_RUN, "trainer.max_steps=1", "trainer.lr=-1,0.001",
                     f"hydra.sweep.dir={tmp_path}", "hydra.sweep.subdir=${hydra.job.num}")
    assert "error: trainer.lr: -1 is not valid; expected a learning rate >= 0" in proc.stderr
    assert not (tmp_path / "0" / "results.json").exists() and (tmp_path / "1" / "results.json").exists()
    assert proc.returncode == 1  # Hydra reports the failed job at the end


@pytest.mark.parametrize("args, message", [
    (["trainer.lrr=1"], "Key 'lrr' is not in struct"),
    (["task=nope"], "Could not find 'task/nope'"),
], ids=["unknown-key", "unknown-task"])
def test_hydra_composition_errors_exit_1_without_traceback(tmp_path, args, message):
    proc = _train_py(*args, f"hydra.run.dir={tmp_path / 'run'}")
    assert proc.returncode == 1 and message in proc.stderr and "Traceback" not in proc.stderr
    assert not (tmp_path / "run" / "config.yaml").exists()


def test_an_unexpected_error_keeps_its_traceback(tmp_path):
    """Not a user mistake that dicenlp recognises (the feature cache path is a file): the traceback stays."""
    blocker = tmp_path / "a-file"
    blocker.write_text("")
    proc = _train_py(*TINY_RUN, f"task.params.cache_dir={blocker}", f"hydra.run.dir={tmp_path / 'run'}")
    assert proc.returncode == 1 and "Traceback" in proc.stderr and "NotADirectoryError" in proc.stderr
    assert not (tmp_path / "run" / "results.json").exists()
