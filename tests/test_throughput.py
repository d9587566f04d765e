"""Throughput options change speed, not results: evaluation order, length-grouped training batches, torch.compile,
encoders without unused parameters (DDP without find_unused_parameters), and results.json's throughput block.

The speed itself is measured by scripts/bench_train.py (docs/performance.md), not here."""

from __future__ import annotations

import json
import math
import shutil

import numpy as np
import pytest
import torch
from accelerate import Accelerator
from omegaconf import OmegaConf

from dicenlp.losses import build_loss
from dicenlp.run import build_task_from_config, load_backbone_from_config
from dicenlp.trainer import (EpochSampler, LengthGroupedSampler, TrainerConfig, epoch_batches, eval_loader, evaluate,
                             fit, length_order, loader_options, train_loader)

#: (task, loss, encoder): every task kind, both head forms of the binary decisions, left-padding XLNet, and an
#: encoder with a pooler under a head that uses it (mrpc × tiny-bert) and under heads that do not
CASES = [("sample_pos", "ce", "tiny-bert"), ("conll03", "ce", "tiny-bert"), ("conll03", "dsc", "tiny-bert"),
         ("sample_squad", "ce", "tiny-bert"), ("sample_squad2", "dsc", "tiny-xlnet"), ("mrpc", "ce", "tiny-bert"),
         ("mrpc", "dsc", "tiny-xlnet"), ("sample_pos", "ce", "tiny-roberta")]


def build(compose_config, task_name: str, loss: str, encoder: str):
    """``(task, model, loss_fn)`` of a smoke-scale cell, set up on its bundled sample."""
    cfg = OmegaConf.to_container(compose_config(f"task={task_name}", f"loss={loss}", "scale=smoke",
                                                f"model.name_or_path={encoder}"), resolve=True)
    task = build_task_from_config(cfg["task"])
    tokenizer, backbone = load_backbone_from_config(cfg["model"])
    task.setup(tokenizer)
    loss_fn = build_loss(cfg["loss"], label_counts=task.label_counts)
    torch.manual_seed(0)
    return task, task.build_model(backbone, loss_fn), loss_fn


def same_predictions(a, b, rel: float = 1e-5) -> bool:
    """Equal JSON trees, floats (scores, probabilities) to ``rel``: a feature padded to another length gets the
    same logits up to float rounding, which may move a 6-digit score by one in its last digit."""
    if isinstance(a, float) and isinstance(b, float):
        return math.isclose(a, b, rel_tol=rel, abs_tol=1e-9)
    if isinstance(a, dict) and isinstance(b, dict):
        return a.keys() == b.keys() and all(same_predictions(a[k], b[k], rel) for k in a)
    if isinstance(a, list) and isinstance(b, list):
        return len(a) == len(b) and all(same_predictions(x, y, rel) for x, y in zip(a, b))
    return a == b


@pytest.mark.parametrize("task_name, loss, encoder", CASES)
def test_evaluation_sorted_by_length_gives_the_same_predictions_and_metrics(compose_config, task_name, loss, encoder):
    task, model, _ = build(compose_config, task_name, loss, encoder)
    if task_name == "conll03":  # a random head predicts no entity at all: bias it towards many spans
        for head in (model.start_head, model.end_head, model.span_head):
            bias = list(head.parameters())[-1]  # [1] (sigmoid form) or [2] (softmax form): positive margin
            torch.nn.init.zeros_(bias)
            bias.data[-1] = 2.0
    accelerator = Accelerator(cpu=True)
    cfg = TrainerConfig(eval_batch_size=3)  # many batches, each padded to its own longest feature
    lengths = task.lengths("dev")
    order = length_order(lengths)
    assert (np.diff(lengths[order]) <= 0).all() and sorted(order.tolist()) == list(range(len(lengths)))
    results = [evaluate(task, "dev", model, accelerator.prepare(eval_loader(task, "dev", cfg, accelerator.device,
                                                                            sort=sort)), accelerator)
               for sort in (True, False)]
    assert results[0].metrics == results[1].metrics
    assert results[0].predictions is not None
    assert same_predictions(results[0].predictions, results[1].predictions)
    if task_name == "conll03":
        assert results[0].metrics["f1"] > 0  # spans were predicted, so the comparison compared some
    files = [{k: v for k, v in r.extra_files.items() if k != "span_f1.json"} for r in results]  # it holds a time
    assert same_predictions(*files)


@pytest.mark.parametrize("task_name, loss, encoder", CASES)
def test_every_parameter_gets_a_gradient_in_one_step(compose_config, task_name, loss, encoder):
    """So DDP needs no find_unused_parameters: BERT's pooler is gone where the head does not use it, XLNet's
    mask_emb is frozen, the span head is in the graph even without candidates."""
    task, model, loss_fn = build(compose_config, task_name, loss, encoder)
    model.train()
    batch = task.collate([task.datasets["train"][i] for i in range(8)])
    task.compute_loss(model(batch), batch, loss_fn).backward()
    missing = [name for name, p in model.named_parameters() if p.requires_grad and p.grad is None]
    assert not missing
    uses_pooler = getattr(model, "pooling", None) == "pooler"
    assert (getattr(model.encoder, "pooler", None) is not None) == uses_pooler


def fraction_real(lengths: np.ndarray, order: list[int], batch_size: int) -> float:
    batches = [lengths[order[i:i + batch_size]] for i in range(0, len(order), batch_size)]
    return sum(b.sum() for b in batches) / sum(len(b) * b.max() for b in batches)


def order_of(lengths: np.ndarray, seed: int, epoch: int, grouped: bool = True) -> list[int]:
    sampler = LengthGroupedSampler(lengths, batch_size=8, seed=seed) if grouped else EpochSampler(len(lengths), seed)
    sampler.set_epoch(epoch)
    return list(sampler)


def test_group_by_length_batches_hold_an_epoch_of_shuffled_examples_with_little_padding(compose_config):
    task, _, _ = build(compose_config, "sample_pos", "ce", "tiny-bert")
    lengths = task.lengths("train")
    mega = LengthGroupedSampler(lengths, batch_size=8, seed=3).mega_size
    assert mega == 8 * 31  # 1000 sentences: 50 batches per mega-batch, at most a quarter of the data
    for epoch in (0, 1):
        grouped, plain = order_of(lengths, 3, epoch), order_of(lengths, 3, epoch, grouped=False)
        assert sorted(grouped) == list(range(len(lengths)))  # every example once per epoch
        for start in range(0, len(lengths), mega):  # each mega-batch: the examples of the plain shuffled order
            assert len(set(grouped[start:start + mega]) ^ set(plain[start:start + mega])) <= 2  # (but the longest)
        assert fraction_real(lengths, grouped, 8) >= 0.8 > fraction_real(lengths, plain, 8) + 0.1
        assert lengths[grouped[0]] == lengths.max()  # the longest batch first: out of memory at the first step
        assert grouped == order_of(lengths, 3, epoch)  # the order depends only on (seed, epoch): resume
    assert order_of(lengths, 3, 0) != order_of(lengths, 3, 1)


def test_resuming_mid_epoch_replays_the_grouped_batch_order(compose_config):
    task, _, _ = build(compose_config, "sample_pos", "ce", "tiny-bert")
    accelerator = Accelerator(cpu=True)
    cfg = TrainerConfig(batch_size=8, group_by_length=True)
    loader = accelerator.prepare(train_loader(task, cfg, seed=5, device=accelerator.device))
    whole = [b["feature_index"].tolist() for b in epoch_batches(loader, accelerator, epoch=2, skip=0)]
    resumed = [b["feature_index"].tolist() for b in epoch_batches(loader, accelerator, epoch=2, skip=7)]
    assert resumed == whole[7:] and len(whole) == math.ceil(len(task.datasets["train"]) / 8)


def tiny_fit(compose_config, output_dir, resume_from=None, **trainer):
    task, model, loss_fn = build(compose_config, "sample_pos", "ce", "tiny-bert")
    cfg = TrainerConfig(**{"lr": 1e-3, "batch_size": 8, "eval_batch_size": 32, "max_steps": 8, "eval_every": 3,
                           "warmup_ratio": 0.0, "log_every": 2, **trainer})
    result = fit(task, model, loss_fn, Accelerator(cpu=True), cfg, output_dir=output_dir, seed=1,
                 resume_from=resume_from)
    return result, {k: v.detach().clone() for k, v in model.state_dict().items()}


def test_a_grouped_run_resumed_mid_epoch_ends_as_the_uninterrupted_one(compose_config, tmp_path):
    """In one process: the state of step 6 (mid-epoch) continued to step 8 gives the uninterrupted run's weights."""
    whole, weights = tiny_fit(compose_config, tmp_path / "whole", group_by_length=True)
    assert json.loads((tmp_path / "whole/state/trainer_state.json").read_text())["step"] == 6
    shutil.copytree(tmp_path / "whole", tmp_path / "again")
    again, weights_again = tiny_fit(compose_config, tmp_path / "again", resume_from=tmp_path / "again/state",
                                    group_by_length=True)
    assert again.dev == whole.dev and again.test == whole.test
    assert all(torch.equal(weights[k], weights_again[k]) for k in weights)
    assert again.throughput["real_token_fraction"]["train"] == whole.throughput["real_token_fraction"]["train"]


def test_trainer_compile_gives_the_eager_results_within_float_tolerance(compose_config, tmp_path):
    """``trainer.compile`` through fit: traced by dynamo and AOTAutograd (the aot_eager backend: the eager kernels,
    no code generation, seconds on a CPU). Inductor: test_inductor_gives_the_eager_loss_and_gradients (slow)."""
    eager, w_eager = tiny_fit(compose_config, tmp_path / "eager", max_steps=3, eval_every=3)
    compiled, w_compiled = tiny_fit(compose_config, tmp_path / "compiled", max_steps=3, eval_every=3,
                                    compile="aot_eager")
    assert all(torch.allclose(w_eager[k], w_compiled[k], rtol=1e-4, atol=1e-6) for k in w_eager)
    assert compiled.dev == pytest.approx(eager.dev, rel=1e-3)


@pytest.mark.slow
@pytest.mark.parametrize("task_name, loss", [("sample_pos", "ce"), ("conll03", "dsc")])
def test_inductor_gives_the_eager_loss_and_gradients(compose_config, task_name, loss):
    """One training step with inductor's generated kernels, without random numbers (inductor draws its own): no
    dropout, no sampled span candidates. Weights after AdamW steps would be no test: AdamW turns float noise in a
    near-zero gradient into a step of the learning rate's size."""
    task, model, loss_fn = build(compose_config, task_name, loss, "tiny-bert")
    for module in model.modules():
        if isinstance(module, torch.nn.Dropout):
            module.p = 0.0
    model.encoder.config.attention_probs_dropout_prob = 0.0
    model.span_sample_ratio = 0.0  # BERT-MRC: gold and predicted candidates only
    batch = task.collate([task.datasets["train"][i] for i in range(8)])
    results = []
    for compiled in (False, True):
        if compiled:
            model.compile()
        model.zero_grad()
        loss_value = task.compute_loss(model(batch), batch, loss_fn)
        loss_value.backward()
        results.append((loss_value.detach(), {n: p.grad.clone() for n, p in model.named_parameters()}))
    (loss_eager, grads_eager), (loss_compiled, grads_compiled) = results
    assert torch.allclose(loss_eager, loss_compiled, rtol=1e-5)
    assert all(torch.allclose(grads_eager[n], grads_compiled[n], rtol=1e-3, atol=1e-6) for n in grads_eager)


def test_results_record_the_throughput(run_train):
    results = run_train("task=sample_pos", "trainer.group_by_length=true")
    speed = results["throughput"]
    assert set(speed) == {"train_examples_per_s", "train_tokens_per_s", "train_s", "eval_s", "real_token_fraction"}
    assert speed["train_examples_per_s"] > 0 and speed["train_tokens_per_s"] > speed["train_examples_per_s"]
    assert 0 < speed["train_s"] < results["train_time_s"] and speed["eval_s"] > 0
    assert 0.5 < speed["real_token_fraction"]["train"] <= 1 and 0.85 <= speed["real_token_fraction"]["eval"] <= 1
    assert "examples_per_s" not in results


def test_cpu_runs_load_batches_in_the_main_process():
    """Workers and pinned memory are for GPUs (on a CPU the workers would take the step's cores)."""
    options = loader_options(TrainerConfig(), torch.device("cpu"))
    assert options == {"num_workers": 0, "pin_memory": False, "persistent_workers": False}
    assert loader_options(TrainerConfig(num_workers=2, pin_memory=True), torch.device("cpu"))["num_workers"] == 2


def test_the_training_benchmark_runs(tmp_path):
    """scripts/bench_train.py (docs/performance.md) at a size that fits the test suite: tiny-bert, one round."""
    import subprocess
    import sys

    from conftest import REPO_ROOT

    out = subprocess.run([sys.executable, "scripts/bench_train.py", "--model", "tiny-bert", "--tasks", "pos", "ner",
                          "--steps", "1", "--rounds", "1", "--eval-rounds", "1", "--eval-examples", "8",
                          "--breakdown-steps", "1", "--batch-size", "4"],
                         cwd=REPO_ROOT, capture_output=True, text=True, timeout=600)
    assert out.returncode == 0, out.stderr[-3000:]
    for heading in ("| BERT-MRC step part |", "real tokens / token slots", "| pos | ours-grouped |",
                    "| ner | ours (longest first) |", "× foreach", "**heads + span candidates + loss**"):
        assert heading in out.stdout, heading
