"""The generic training loop, on a toy task (the trainer only knows the Task protocol)."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from accelerate import Accelerator
from torch import nn

from dicenlp.tasks.base import EVAL_PAD_VALUE, EvalResult, Task
from dicenlp.trainer import TrainerConfig, concat_padded, eval_interval, evaluate, fit


class ToyTask(Task):
    """Label = [x0 > 0]; eval also returns a ragged per-feature sequence to exercise dim-1 padding."""

    name = "toy"
    primary_metric = "accuracy"

    def __init__(self, n_train=64, n_eval=37, seed=0):
        super().__init__()
        g = torch.Generator().manual_seed(seed)
        self.data = {}
        for split, n in (("train", n_train), ("dev", n_eval), ("test", n_eval)):
            x = torch.randn(n, 8, generator=g)
            self.data[split] = (x, (x[:, 0] > 0).long())

    def setup(self, tokenizer=None):
        self.datasets = {s: [{"feature_index": i, "x": x[i], "y": y[i]} for i in range(len(y))]
                         for s, (x, y) in self.data.items()}

    def collate(self, features):
        return {"feature_index": torch.tensor([f["feature_index"] for f in features]),
                "x": torch.stack([f["x"] for f in features]), "y": torch.stack([f["y"] for f in features])}

    def build_model(self, encoder, loss_name):
        return ToyModel()

    def compute_loss(self, outputs, batch, loss_fn):
        return loss_fn(outputs["logits"], batch["y"])

    def eval_outputs(self, outputs, batch):
        idx = batch["feature_index"]
        width = int(idx.max()) % 3 + 1  # a different sequence length per batch
        seq = idx[:, None].repeat(1, width)
        return {"feature_index": idx, "pred": outputs["logits"].argmax(-1), "seq": seq}

    def evaluate(self, split, gathered):
        gold = self.data[split][1].numpy()
        assert (gathered["seq"][:, 0] == np.arange(len(gold))).all()
        assert set(np.unique(gathered["seq"])) <= set(range(len(gold))) | {EVAL_PAD_VALUE}
        return EvalResult({"accuracy": 100.0 * float((gathered["pred"] == gold).mean())}, gathered["pred"].tolist())


class ToyModel(nn.Module):
    def __init__(self):
        super().__init__()
        self.linear = nn.Linear(8, 2)
        self.norm = nn.LayerNorm(8)

    def forward(self, batch):
        return {"logits": self.linear(self.norm(batch["x"]))}


@pytest.fixture
def toy_fit(tmp_path):
    """``toy_fit(**trainer_overrides) -> (task, model, accelerator, result, logged)`` in a fresh run folder."""
    runs = iter(range(100))
    return lambda **overrides: _fit(tmp_path / f"run{next(runs)}", **overrides)


def _fit(output_dir, **overrides):
    torch.manual_seed(0)
    task = ToyTask()
    task.setup()
    model = task.build_model(None, "ce")
    cfg = TrainerConfig(**{"lr": 0.05, "batch_size": 8, "eval_batch_size": 10, "max_epochs": 2, "warmup_ratio": 0.25,
                           "log_every": 1, "eval_every": 3, **overrides})
    logged = []
    accelerator = Accelerator(gradient_accumulation_steps=cfg.grad_accum, cpu=True)
    result = fit(task, model, nn.CrossEntropyLoss(), accelerator, cfg, output_dir=output_dir,
                 log_metrics=lambda m, s: logged.append((s, m)))
    return task, model, accelerator, result, logged


@pytest.mark.parametrize("scheduler, end_ratio", [("linear", 0.0), ("polynomial", 0.25), ("constant", 1.0)])
def test_lr_reaches_its_end_value_at_the_last_optimizer_step(scheduler, end_ratio, toy_fit):
    _, _, _, result, logged = toy_fit(scheduler=scheduler)
    lrs = [(s, m["train/lr"]) for s, m in logged if "train/lr" in m]
    assert [s for s, _ in lrs] == list(range(1, result.total_steps + 1))
    assert lrs[-1][1] == pytest.approx(0.05 * end_ratio, abs=1e-12)
    warmup = math.ceil(0.25 * result.total_steps)
    assert lrs[warmup - 1][1] == pytest.approx(0.05)  # warmup ends at the peak LR


@pytest.mark.parametrize("grad_accum", [1, 3])
def test_steps_count_optimizer_steps_under_accumulation(grad_accum, toy_fit):
    _, _, _, result, logged = toy_fit(grad_accum=grad_accum)
    batches_per_epoch = math.ceil(64 / 8)
    assert result.total_steps == 2 * math.ceil(batches_per_epoch / grad_accum)
    assert max(s for s, m in logged if "train/loss" in m) == result.total_steps


def test_best_dev_checkpoint_is_restored_for_test(toy_fit):
    task, model, accelerator, result, logged = toy_fit(max_epochs=4, eval_every=2)
    dev_curve = {s: m["dev/accuracy"] for s, m in logged if "dev/accuracy" in m}
    best_step = max(dev_curve, key=lambda s: (dev_curve[s], -s))
    assert result.best_step == best_step
    assert result.dev["accuracy"] == dev_curve[best_step]
    loader = accelerator.prepare(torch.utils.data.DataLoader(task.datasets["dev"], batch_size=7, collate_fn=task.collate))
    again = evaluate(task, "dev", model, loader, accelerator)  # the model now holds the best weights
    assert again.metrics == result.dev
    assert result.test is not None and result.train_time_s > 0 and result.throughput["train_examples_per_s"] > 0


def test_model_learns_the_toy_task(toy_fit):
    _, _, _, result, _ = toy_fit(max_epochs=6)
    assert result.test["accuracy"] > 85


def test_concat_padded_pads_dim1_with_the_eval_pad_value():
    out = concat_padded([np.ones((2, 1)), np.zeros((1, 3))])
    assert out.tolist() == [[1, EVAL_PAD_VALUE, EVAL_PAD_VALUE], [1, EVAL_PAD_VALUE, EVAL_PAD_VALUE], [0, 0, 0]]
    assert concat_padded([np.arange(2), np.arange(3)]).tolist() == [0, 1, 0, 1, 2]


def test_frozen_model_runs_under_every_schedule(toy_fit):
    for scheduler in ("linear", "polynomial", "constant"):
        _, _, _, result, logged = toy_fit(scheduler=scheduler, lr=0.0, max_epochs=1)
        assert all(m["train/lr"] == 0.0 for _, m in logged if "train/lr" in m)


def test_eval_interval_fraction_of_epoch_or_steps():
    assert eval_interval(TrainerConfig(eval_every=0.25), 100) == 25
    assert eval_interval(TrainerConfig(eval_every=1.0), 100) == 100
    assert eval_interval(TrainerConfig(eval_every=7), 100) == 7
    with pytest.raises(ValueError):
        eval_interval(TrainerConfig(eval_every=0), 100)


def test_unknown_trainer_setting_is_an_error():
    with pytest.raises(ValueError, match="lrr"):
        TrainerConfig.from_dict({"lrr": 1.0})


def test_non_finite_loss_stops_training(tmp_path):
    class NanLoss(nn.Module):
        def forward(self, logits, target):
            return logits.sum() * float("nan")

    task = ToyTask()
    task.setup()
    with pytest.raises(FloatingPointError, match="non-finite"):
        fit(task, task.build_model(None, "ce"), NanLoss(), Accelerator(cpu=True), TrainerConfig(batch_size=8),
            output_dir=tmp_path)
