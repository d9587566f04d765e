"""Extractive question answering (machine reading comprehension): SQuAD v1.1, SQuAD v2.0, QuoRef (PAPER.md §3.3).

    task = QuestionAnsweringTask(name="squad", data_dir="data/squad", train_file="train-v1.1.json",
                                 dev_file="dev-v1.1.json")
    task.setup(tokenizer)                      # read JSON (or the Hub), windows + answer positions, cached
    model = task.build_model(encoder, loss_fn) # encoder + start/end head for loss_fn.span_head (models.qa)
    loss = task.compute_loss(model(batch), batch, loss_fn)

Loss (the paper's MRC setting: "the start and end indexes of answer are predicted"), total = (L_start + L_end)/2:

* ``ce``: a softmax over the positions of each window, for start and for end, with every position that cannot
  be an answer boundary (question, special tokens, padding) masked with a large negative logit. The null
  position (``cls``) stays allowed: it is the target of a window that does not contain the answer (and of
  unanswerable questions in SQuAD 2.0), as in BERT, XLNet, Hugging Face and the official code.
* ``fl``, ``wce``, ``dl``, ``tl``, ``dsc``: start (end) as one binary decision per token over the context tokens
  plus the null position; question, special and padding tokens are masked out via the loss ``mask``. The dice
  family's set-level reduction (``loss.reduction=batch``) then is one dice over all those tokens of the batch,
  as the official code intends (its mask was broken, OFFICIAL_CODE.md §2b).

Evaluation: ``dicenlp.tasks.qa_postprocess`` (n-best search, null answers) and ``dicenlp.metrics.squad``
(the official v1.1 / v2.0 rules). SQuAD 2.0's null threshold is chosen on the evaluated split as the official
script's ``best_f1_thresh`` (``null_score_diff_threshold: null``), or fixed. Files: ``predictions.json``,
``nbest_predictions.json`` and (v2.0) ``null_odds.json`` in the official formats.

Features are prepared with ``datasets.Dataset.map(batched=True)`` into an Arrow cache keyed by the data file's
content, the tokenizer and every feature setting, so a second run reads them instead of tokenising again.
"""

from __future__ import annotations

import hashlib
import json
import logging
from pathlib import Path
from typing import Any, Mapping

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from dicenlp.data.cache import FEATURE_CACHE, tokenizer_fingerprint
from dicenlp.data.squad import HUB_NAMES, load_hub_split, read_squad_json
from dicenlp.tasks.base import EvalResult, Task
from dicenlp.tasks.qa_features import (FEATURE_VERSION, check_window_settings, prepare_features,
                                       resolve_context_first)
from dicenlp.tasks.qa_postprocess import postprocess_qa

log = logging.getLogger(__name__)

#: Logit given to positions that cannot be an answer boundary in the ``ce`` softmax over positions.
MASKED_LOGIT = -1.0e30

#: Our split names → the Hub's.
HUB_SPLITS = {"train": "train", "dev": "validation"}



class QuestionAnsweringTask(Task):
    """SQuAD-style extractive QA (kind ``"qa"``). Plain constructor arguments (configs/task/_qa_base.yaml).

    Args:
        name: table name (``squad``, ``squad2``, ``quoref``).
        data_dir, train_file, dev_file, test_file: SQuAD-layout JSON files (``test_file`` optional; SQuAD and
            QuoRef report dev, PAPER.md §3.3; ``dev_file`` may be None when ``split_off`` creates dev).
        version_2_with_negative: unanswerable questions exist (SQuAD 2.0): null answers, v2.0 metric.
        hub_name: Hub copy used when the local files are absent (``squad``, ``squad_v2``; needs network/cache).
        max_length, doc_stride, max_query_length: windows (tokens; ``doc_stride`` = tokens shared by
            consecutive windows).
        n_best_size, max_answer_length: post-processing (max_answer_length in tokens).
        null_score_diff_threshold: SQuAD 2.0 answers "" when null score - best span score > threshold;
            ``None`` chooses it on the evaluated split (the official ``best_f1_thresh``).
        context_first: ``None`` = from the tokenizer (context first iff it pads on the left, i.e. XLNet).
        max_examples, split_off, split_seed: caps and split-offs of the questions (``dicenlp.data.subsets``),
            whole paragraphs at a time (no context is shared between two splits).
        cache_dir: feature cache (default ``$DICENLP_CACHE/features/qa`` or ``~/.cache/dicenlp/features/qa``).
        check_answers: verify that every answer text sits at its ``answer_start``.
        metric: ``"squad"`` (the official v1.1 or v2.0 script's rules) or ``"quoref"`` (QuoRef's official
            DROP-style multi-span EM/F1, ``dicenlp.metrics.quoref``; the SQuAD v1.1 scores are added as
            ``squad_em``/``squad_f1``).
    """

    primary_metric = "f1"

    def __init__(self, name: str = "squad", data_dir: str = "data/squad", train_file: str = "train-v1.1.json",
                 dev_file: str = "dev-v1.1.json", test_file: str | None = None,
                 version_2_with_negative: bool = False, hub_name: str | None = None, max_length: int = 384,
                 doc_stride: int = 128, max_query_length: int = 64, n_best_size: int = 20,
                 max_answer_length: int = 30, null_score_diff_threshold: float | None = None,
                 context_first: bool | None = None, cache_dir: str | None = None, check_answers: bool = True,
                 metric: str = "squad", preprocessing_batch_size: int = 1000,
                 max_examples: Mapping[str, int] | None = None, split_off: Mapping[str, Any] | None = None,
                 split_seed: int = 42) -> None:
        super().__init__(max_examples, split_off, split_seed)
        self.name = name
        self.data_dir = Path(data_dir)
        self.files = {split: f for split, f in (("train", train_file), ("dev", dev_file), ("test", test_file)) if f}
        self.version_2 = bool(version_2_with_negative)
        self.hub_name = hub_name
        self.max_length, self.doc_stride, self.max_query_length = int(max_length), int(doc_stride), int(max_query_length)
        self.n_best_size, self.max_answer_length = int(n_best_size), int(max_answer_length)
        self.null_threshold = None if null_score_diff_threshold is None else float(null_score_diff_threshold)
        self.context_first_param = context_first
        self.cache_dir = Path(cache_dir) if cache_dir else FEATURE_CACHE / "qa"
        self.check_answers = check_answers
        if metric not in ("squad", "quoref"):
            raise ValueError(f"metric must be 'squad' (official SQuAD v1.1/v2.0 rules) or 'quoref', got {metric!r}")
        if metric == "quoref" and self.version_2:
            raise ValueError("metric='quoref' scores answerable questions only (no SQuAD 2.0 null answers)")
        self.metric = metric
        self.preprocessing_batch_size = int(preprocessing_batch_size)
        self.examples: dict[str, list[dict[str, Any]]] = {}
        self._identity: dict[str, str] = {}  # split → source identity (cache key)
        self.features: dict[str, Any] = {}  # split → datasets.Dataset of features (all columns)
        self.output_form: str | None = None
        self._eval_arrays: dict[str, dict[str, np.ndarray]] = {}

    # ----------------------------------------------------------------- data
    def _path(self, split: str) -> Path:
        return self.data_dir / self.files[split]

    def _local(self) -> bool:
        return all(self._path(s).is_file() for s in self.files)

    def check_data(self) -> None:
        if self._local():
            return
        missing = [str(self._path(s)) for s in self.files if not self._path(s).is_file()]
        if self.hub_name and all(s in HUB_SPLITS for s in self.files if not self._path(s).is_file()):
            log.info("%s: local files missing (%s); using the Hub copy %r", self.name, missing, self.hub_name)
            return
        raise FileNotFoundError(
            f"{self.name}: missing {', '.join(missing)}. Put the SQuAD-layout JSON files there (see docs/mrc.md "
            f"for the download links), or set task.params.data_dir=<folder> / task.params.hub_name "
            f"(Hub copies cover train and dev only).")

    def read_split(self, split: str) -> tuple[list[dict[str, Any]], str]:
        """``(examples, source identity for the cache key)`` of one split, from the local file or the Hub."""
        if self._path(split).is_file():
            path = self._path(split)
            examples = read_squad_json(path, check_answers=self.check_answers)
            identity = f"file:{hashlib.sha1(path.read_bytes()).hexdigest()}"
        elif self.hub_name and split in HUB_SPLITS:
            examples = load_hub_split(self.hub_name, HUB_SPLITS[split])
            identity = f"hub:{HUB_NAMES.get(self.hub_name, self.hub_name)}:{HUB_SPLITS[split]}"
        else:
            self.check_data()
            raise AssertionError("unreachable")
        if self.version_2 is False and any(ex["is_impossible"] for ex in examples) and split == "train":
            bad = next(ex["id"] for ex in examples if ex["is_impossible"])
            raise ValueError(f"{self.name}: question {bad!r} of the {split} data has no answer, but the task is "
                             "not SQuAD 2.0 (set task.params.version_2_with_negative=true)")
        return examples, identity

    def feature_cache_key(self, tokenizer, identity: str, examples: list[dict[str, Any]]) -> str:
        """Hash of everything the features depend on (data and the questions kept of it, tokenizer, settings,
        feature code version)."""
        kept = hashlib.sha1("\n".join(ex["id"] for ex in examples).encode()).hexdigest()
        spec = {"v": FEATURE_VERSION, "data": identity, "questions": kept, "max_length": self.max_length,
                "doc_stride": self.doc_stride, "max_query_length": self.max_query_length,
                "context_first": self.context_first, "tokenizer": type(tokenizer).__name__,
                "padding_side": tokenizer.padding_side,
                "backend": tokenizer_fingerprint(tokenizer)}
        return hashlib.sha1(json.dumps(spec, sort_keys=True).encode()).hexdigest()[:16]

    def read_data(self) -> None:
        """The questions of every split (file errors name the file and entry; an empty split is an error)."""
        if self.examples:
            return
        self.check_data()
        read = {split: self.read_split(split) for split in self.files}
        self._identity = {split: identity for split, (_, identity) in read.items()}
        # questions of one paragraph stay together when a split is split off or capped
        self.examples = self.plan_splits({split: examples for split, (examples, _) in read.items()},
                                         group_keys=lambda examples: [ex["context"] for ex in examples])

    def setup(self, tokenizer) -> None:
        import datasets

        if not getattr(tokenizer, "is_fast", False):
            raise ValueError("the QA task needs a fast tokenizer (character offsets)")
        check_window_settings(tokenizer, self.max_length, self.doc_stride, self.max_query_length)
        self.context_first = resolve_context_first(tokenizer, self.context_first_param)
        self.padding_side = tokenizer.padding_side
        self.pad_token_id = tokenizer.pad_token_id
        self.pad_token_type_id = getattr(tokenizer, "pad_token_type_id", 0)
        self.read_data()
        self.cache_dir.mkdir(parents=True, exist_ok=True)
        for split, examples in self.examples.items():
            identity = self._identity.get(split) or f"{self._identity[self.split_from[split]]}:split-off"
            key = self.feature_cache_key(tokenizer, identity, examples)
            raw = datasets.Dataset.from_dict({
                "question": [ex["question"] for ex in examples], "context": [ex["context"] for ex in examples],
                "answers": [ex["answers"] for ex in examples], "example_index": list(range(len(examples)))})
            features = raw.map(
                prepare_features, batched=True, batch_size=self.preprocessing_batch_size,
                remove_columns=raw.column_names, load_from_cache_file=True,
                cache_file_name=str(self.cache_dir / f"{self.name}-{split}-{key}.arrow"), new_fingerprint=key,
                fn_kwargs=dict(tokenizer=tokenizer, max_length=self.max_length, doc_stride=self.doc_stride,
                               max_query_length=self.max_query_length, context_first=self.context_first),
                desc=f"{self.name} {split}: windows")
            features = features.add_column("feature_index", np.arange(len(features), dtype=np.int64))
            self.features[split] = features
            keep = [c for c in ("input_ids", "token_type_ids", "offset_start", "cls_index", "start_positions",
                                "end_positions", "feature_index") if c in features.column_names]
            self.datasets[split] = features.select_columns(keep)
            log.info("%s %s: %d questions → %d features (cache %s)", self.name, split, len(examples),
                     len(features), features.cache_files[0]["filename"] if features.cache_files else "none")

    def collate(self, features: list[Mapping[str, Any]]) -> dict[str, torch.Tensor]:
        """Pad to the longest feature on the tokenizer's padding side; positions shift with left padding."""
        lengths = np.array([len(f["input_ids"]) for f in features])
        batch_size, width = len(features), int(lengths.max())
        shift = width - lengths if self.padding_side == "left" else np.zeros_like(lengths)

        def pad(rows, value, dtype) -> torch.Tensor:
            out = np.full((batch_size, width), value, dtype=dtype)
            for i, row in enumerate(rows):
                out[i, shift[i]:shift[i] + len(row)] = row
            return torch.from_numpy(out)

        ones = [np.ones(n, dtype=np.int64) for n in lengths]
        batch = {"input_ids": pad([f["input_ids"] for f in features], self.pad_token_id, np.int64),
                 "attention_mask": pad(ones, 0, np.int64)}
        if "token_type_ids" in features[0] and features[0]["token_type_ids"] is not None:
            batch["token_type_ids"] = pad([f["token_type_ids"] for f in features], self.pad_token_type_id, np.int64)
        rows = torch.arange(batch_size)
        cls_index = torch.as_tensor([f["cls_index"] for f in features]) + torch.from_numpy(shift)
        loss_mask = pad([np.asarray(f["offset_start"]) >= 0 for f in features], False, bool)
        loss_mask[rows, cls_index] = True  # the null position: target of "no answer in this window"
        batch.update(
            loss_mask=loss_mask, cls_index=cls_index, pad_left=torch.from_numpy(shift),
            start_positions=torch.as_tensor([f["start_positions"] for f in features]) + torch.from_numpy(shift),
            end_positions=torch.as_tensor([f["end_positions"] for f in features]) + torch.from_numpy(shift),
            feature_index=torch.as_tensor([f["feature_index"] for f in features], dtype=torch.long))
        return batch

    def label_counts(self) -> torch.Tensor:
        """[negative, positive] token decisions over the training windows (start and end together), for WCE:
        each window has context_length + 1 (null) candidates per boundary, one of them positive."""
        n = np.asarray(self.features["train"]["context_length"], dtype=np.int64)
        return torch.tensor([2 * int(n.sum()), 2 * len(n)], dtype=torch.long)

    # ----------------------------------------------------------------- model and loss
    def build_model(self, encoder: nn.Module, loss_fn: nn.Module) -> nn.Module:
        from dicenlp.models.qa import SpanQAModel

        self.output_form = loss_fn.span_head
        return SpanQAModel(encoder, self.output_form)

    def compute_loss(self, outputs: Mapping[str, torch.Tensor], batch: Mapping[str, torch.Tensor],
                     loss_fn: nn.Module) -> torch.Tensor:
        """(L_start + L_end) / 2 with the loss form of ``build_model`` (module docstring)."""
        if self.output_form is None:
            raise RuntimeError("call build_model(encoder, loss_fn) before compute_loss")
        mask = batch["loss_mask"]
        losses = []
        for which in ("start", "end"):
            logits, target = outputs[f"{which}_logits"], batch[f"{which}_positions"]
            if self.output_form == "positions":  # softmax over positions: logits [B, L], target [B]
                losses.append(loss_fn(logits.float().masked_fill(~mask, MASKED_LOGIT), target))
            else:  # one binary decision per token: target [B, L] in {0, 1}, mask [B, L]
                one_hot = F.one_hot(target, logits.shape[1])
                one_hot = one_hot.to(logits.dtype) if self.output_form == "sigmoid" else one_hot.long()
                losses.append(loss_fn(logits, one_hot, mask=mask))
        return (losses[0] + losses[1]) / 2

    # ----------------------------------------------------------------- evaluation
    def token_scores(self, logits: torch.Tensor) -> torch.Tensor:
        """Per-token additive span scores (qa_postprocess): ce → logits; binary forms → log p(token)."""
        if self.output_form == "positions":
            return logits.float()
        if self.output_form == "softmax":
            return logits.float().log_softmax(-1)[..., 1]
        return F.logsigmoid(logits.float())

    def eval_outputs(self, outputs: Mapping[str, torch.Tensor], batch: Mapping[str, torch.Tensor]
                     ) -> dict[str, torch.Tensor]:
        """Start/end scores [B, L] moved back to each feature's own token positions (undoing left padding)."""
        out = {"feature_index": batch["feature_index"]}
        width = batch["input_ids"].shape[1]
        index = (torch.arange(width, device=batch["pad_left"].device)[None, :] + batch["pad_left"][:, None])
        index = index.clamp(max=width - 1)
        for which in ("start", "end"):
            scores = self.token_scores(outputs[f"{which}_logits"])
            out[f"{which}_scores"] = scores.gather(1, index)
        return out

    def _arrays(self, split: str) -> dict[str, np.ndarray]:
        """Padded offsets [N, L] (-1 outside the context), cls_index [N], example_index [N] of a split."""
        if split not in self._eval_arrays:
            features = self.features[split]
            starts, ends = features["offset_start"], features["offset_end"]
            width = max(len(s) for s in starts)
            offset_start = np.full((len(starts), width), -1, dtype=np.int32)
            offset_end = np.full((len(starts), width), -1, dtype=np.int32)
            for i, (s, e) in enumerate(zip(starts, ends)):
                offset_start[i, :len(s)] = s
                offset_end[i, :len(e)] = e
            self._eval_arrays[split] = {
                "offset_start": offset_start, "offset_end": offset_end,
                "cls_index": np.asarray(features["cls_index"], dtype=np.int64),
                "example_index": np.asarray(features["example_index"], dtype=np.int64)}
        return self._eval_arrays[split]

    def evaluate(self, split: str, gathered: Mapping[str, np.ndarray]) -> EvalResult:
        arrays = self._arrays(split)
        return evaluate_qa(self.examples[split], arrays, gathered["start_scores"], gathered["end_scores"],
                           version_2=self.version_2, n_best_size=self.n_best_size,
                           max_answer_length=self.max_answer_length, null_threshold=self.null_threshold,
                           metric=self.metric)


def evaluate_qa(examples: list[dict], arrays: Mapping[str, np.ndarray], start_scores: np.ndarray,
                end_scores: np.ndarray, *, version_2: bool, n_best_size: int = 20, max_answer_length: int = 30,
                null_threshold: float | None = None, metric: str = "squad") -> EvalResult:
    """Post-process and score one split (metrics ``em``/``f1`` in %, plus v2.0's breakdown and thresholds)."""
    from dicenlp.metrics.squad import (choose_null_threshold, squad_v1_evaluate, squad_v2_evaluate,
                                       squad_v2_raw_scores)

    preds = postprocess_qa(examples, arrays["example_index"], arrays["offset_start"], arrays["offset_end"],
                           start_scores, end_scores, arrays["cls_index"], n_best_size=n_best_size,
                           max_answer_length=max_answer_length, with_null=version_2)
    files: dict[str, Any] = {"nbest_predictions.json": preds.nbest}
    if not version_2:
        answers = preds.answers()
        official = squad_v1_evaluate(examples, answers)
        metrics = {"em": official["exact_match"], "f1": official["f1"], "total": official["total"]}
        if metric == "quoref":  # QuoRef's own metric is the reported one; SQuAD rules kept for reference
            from dicenlp.metrics.quoref import quoref_evaluate

            quoref = quoref_evaluate(examples, answers)
            metrics = {"em": quoref["exact_match"], "f1": quoref["f1"], "total": quoref["total"],
                       "squad_em": official["exact_match"], "squad_f1": official["f1"]}
    else:
        search = squad_v2_evaluate(examples, preds.best_span, na_probs=preds.null_odds)
        if null_threshold is None:  # chosen on this split for F1, as the official best_f1_thresh
            _, f1_raw, has_ans = squad_v2_raw_scores(examples, preds.best_span)
            threshold = choose_null_threshold(preds.best_span, f1_raw, preds.null_odds, has_ans)[1]
        else:
            threshold = null_threshold
        answers = preds.answers(threshold)
        official = squad_v2_evaluate(examples, answers)
        metrics = {"em": official["exact"], "f1": official["f1"], "total": official["total"],
                   "null_threshold": float(threshold),
                   "best_em": search["best_exact"], "best_em_thresh": search["best_exact_thresh"],
                   "best_f1": search["best_f1"], "best_f1_thresh": search["best_f1_thresh"]}
        for prefix, name in (("HasAns_", "has_ans"), ("NoAns_", "no_ans")):
            if f"{prefix}total" in official:
                metrics.update({f"{name}_em": official[f"{prefix}exact"], f"{name}_f1": official[f"{prefix}f1"],
                                f"{name}_total": official[f"{prefix}total"]})
        files["null_odds.json"] = preds.null_odds
    files["predictions.json"] = answers
    return EvalResult(metrics=metrics, predictions=question_scores(examples, answers, version_2, metric),
                      extra_files=files)


def question_scores(examples: list[dict], answers: Mapping[str, str], version_2: bool, metric: str
                    ) -> list[dict[str, Any]]:
    """Per question: id, the answer given and its EM / F1 (0–1) under the reported metric's rules; their means
    × 100 are the split's ``em`` / ``f1`` (``predictions_<split>.json``; the paired bootstrap of the tables)."""
    from dicenlp.metrics.quoref import quoref_em_f1
    from dicenlp.metrics.squad import exact_match, f1_v1, gold_texts, squad_v2_raw_scores

    if version_2:
        exact, f1, _ = squad_v2_raw_scores(examples, answers)
        scores = {qid: (exact[qid], f1[qid]) for qid in exact}
    elif metric == "quoref":
        scores = {ex["id"]: quoref_em_f1(answers.get(ex["id"], ""), gold_texts(ex)) for ex in examples}
    else:  # evaluate-v1.1.py: the best over the gold answers
        scores = {ex["id"]: (max(exact_match(answers.get(ex["id"], ""), g) for g in gold_texts(ex)),
                             max(f1_v1(answers.get(ex["id"], ""), g) for g in gold_texts(ex))) for ex in examples}
    return [{"id": ex["id"], "prediction": answers.get(ex["id"], ""), "em": float(scores[ex["id"]][0]),
             "f1": float(scores[ex["id"]][1])} for ex in examples]
