"""NER as machine reading comprehension (BERT-MRC, Li et al. 2019) with any loss: ``kind: mrc_ner``.

PAPER.md §3.2 / Table 5 (CoNLL03, OntoNotes 5.0, MSRA, OntoNotes 4.0) and the Tversky column of Table 10.

Pipeline::

    files (CoNLL columns BIO/IOB1/BIOES/BMES | MSRA word/tag | BERT-MRC JSON) or the Hub
      ─► NerSentence(tokens, entities)                        dicenlp.data.mrc_ner (original gold)
      ─► one feature per (sentence, entity type):  prefix + query + middle + context + suffix
         ([CLS] query [SEP] context [SEP] for BERT), contexts cut at a word boundary to max_length
      ─► BertMrcNer: start / end logits per token, span-match logits for candidate pairs
      ─► loss = w_start·L(start) + w_end·L(end) + w_span·L(span candidates)     (the configured loss L)
      ─► decode: start ∧ end over threshold, pair inside max_span_len, span-match over threshold
      ─► (sentence, type, word start, word end, score = log p_start·p_end·p_match)
      ─► flat data: per sentence, the non-overlapping spans of largest Σ p (decoding: flat; nested keeps all)
      ─► span micro P/R/F1 vs the ORIGINAL gold + per type.

Decisions (see docs/ner.md for the comparison with the official code):

* **Where decisions live.** Only context tokens can be starts/ends/spans; query, special and padding tokens
  are ``-100`` in the start/end labels and never candidates, so they are outside *every* loss (the official
  dice branch passed no mask at all). Words (English) or characters (Chinese) are the units: a start
  decision sits on the **first** sub-token of each unit, an end decision on its **last** sub-token (BERT-MRC's
  start/end word masks); the other sub-tokens are masked. A unit maps back from either token.
* **Binary decisions** use the loss's ``binary_head``: one logit + sigmoid for dl/tl/dsc, a 2-way softmax
  for ce/wce/fl (ce on it = binary cross-entropy, as BERT-MRC). Start and end are per-token decisions and
  the loss is applied to all unmasked tokens of the batch at once (dice: one set-level ratio, Eq. 8 style).
* **Span-match loss** uses the same loss over the candidate pairs (gold ∪ predicted ∪ sampled; the model
  docstring). Gold pairs are every gold entity (inside the kept context), including repeated mentions.
* **Truncation.** Contexts longer than ``max_length`` lose their last whole words; entities there get no
  label and can never be predicted, so they count as misses (the metric uses every original mention).
* **Nesting** is possible by design (each type has its own query; pairs of one type may overlap), so
  ``decoding: nested`` keeps every matched span. On flat datasets an overlapping span is a sure false
  positive: ``decoding: flat`` (the default of the four paper datasets) keeps, per sentence and across all
  types, the set of non-overlapping spans with the largest total probability ``Σ p_start·p_end·p_match``
  (``dicenlp.tasks.flat_spans``; docs/ner.md compares it with the official flat decoder).

Example (plain Python, no Hydra)::

    task = MrcNerTask(data_dir="data/samples/conll03", queries={"PER": "person names", ...})
    task.setup(tokenizer); model = task.build_model(encoder, build_loss("dsc"))
"""

from __future__ import annotations

import logging
import time
from collections import defaultdict
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Mapping

import numpy as np
import torch
from torch import nn

from dicenlp.data.mrc_ner import (NerSentence, check_entity_types, detect_format, find_split_file, hub_available,
                                   load_ner_splits)
from dicenlp.metrics.spans import span_scores
from dicenlp.models.mrc import BertMrcNer, decode_spans, gold_index, logit_threshold, positive_margin, span_keys
from dicenlp.tasks.base import EvalResult, Task
from dicenlp.tasks.flat_spans import flat_select, overlap_mask

log = logging.getLogger(__name__)

IGNORE = -100


@dataclass
class _Template:
    """Special-token layout of a (query, context) pair for one tokenizer, learnt by encoding a probe pair."""

    prefix: list[int]
    middle: list[int]
    suffix: list[int]
    types: tuple[int, int, int, int, int]  # token_type_id of prefix, query, middle, context, suffix

    @classmethod
    def from_tokenizer(cls, tokenizer) -> "_Template":
        enc = tokenizer(["q"], ["c"], is_split_into_words=True, add_special_tokens=True)
        seq = enc.sequence_ids(0)
        ids = enc["input_ids"]
        tt = enc.get("token_type_ids") or [0] * len(ids)
        q = [k for k, s in enumerate(seq) if s == 0]
        c = [k for k, s in enumerate(seq) if s == 1]
        if not q or not c:
            raise ValueError(f"{type(tokenizer).__name__} does not encode sentence pairs; BERT-MRC needs a "
                             f"pair tokenizer")
        prefix, middle, suffix = ids[:q[0]], ids[q[-1] + 1:c[0]], ids[c[-1] + 1:]
        # XLNet-style layouts put <cls> at the end; the layout is copied as is, whatever it is.
        types = (tt[0] if prefix else 0, tt[q[0]], tt[q[-1] + 1] if middle else tt[q[0]], tt[c[0]],
                 tt[c[-1] + 1] if suffix else tt[c[0]])
        return cls(prefix, middle, suffix, types)

    @property
    def n_special(self) -> int:
        return len(self.prefix) + len(self.middle) + len(self.suffix)


class MrcNerFeatures(torch.utils.data.Dataset):
    """Features of one split: one item per (sentence, type), composed on access from per-sentence and
    per-query token ids (so 18 types do not store 18 copies of every sentence).

    Item ``k`` is sentence ``k // T``, type ``k % T`` (T = number of types).
    """

    def __init__(self, sentences: list[NerSentence], types: list[str], query_ids: list[list[int]],
                 ctx_ids: list[np.ndarray], word_ids: list[np.ndarray], template: _Template, max_length: int) -> None:
        self.sentences, self.types = sentences, types
        self.type_index = {t: i for i, t in enumerate(types)}
        self.query_ids, self.ctx_ids, self.word_ids, self.template = query_ids, ctx_ids, word_ids, template
        self.n_types = len(types)
        # Per sentence: first/last token of each word (context-relative).
        self.first_tok, self.last_tok = [], []
        for w in word_ids:
            # the sub-tokens of a word are contiguous and words come in order: boundaries are where the id changes
            change = np.flatnonzero(np.diff(w)) + 1 if len(w) else np.zeros(0, np.int64)
            self.first_tok.append(np.concatenate([[0], change]).astype(np.int64) if len(w) else change)
            self.last_tok.append(np.concatenate([change - 1, [len(w) - 1]]).astype(np.int64) if len(w) else change)
        # Context budget per type and the number of context tokens/words kept per (sentence, type).
        budgets = [max_length - template.n_special - len(q) for q in query_ids]
        for t, b in zip(types, budgets):
            if b < 1:
                raise ValueError(f"the query of type {t!r} leaves no room for the context within max_length="
                                 f"{max_length}; shorten the query or raise max_length")
        self.budgets = np.array(budgets, np.int64)
        # offset of each sentence's sub-tokens in the concatenation of all sentences (vectorised decoding)
        self._base = np.zeros(len(sentences) + 1, np.int64)
        np.cumsum([len(w) for w in word_ids], out=self._base[1:])

    def __len__(self) -> int:
        return len(self.sentences) * self.n_types

    def kept_words(self, s: int, t: int) -> int:
        """Number of leading whole words of sentence ``s`` that fit next to the query of type ``t``."""
        return int(np.searchsorted(self.last_tok[s], self.budgets[t], side="left"))

    def context_offset(self, t: int) -> int:
        return len(self.template.prefix) + len(self.query_ids[t]) + len(self.template.middle)

    def __getitem__(self, k: int) -> dict[str, Any]:
        s, t = divmod(int(k), self.n_types)
        tpl, q = self.template, self.query_ids[t]
        n_words = self.kept_words(s, t)
        n_ctx = int(self.last_tok[s][n_words - 1] + 1) if n_words else 0
        ctx = self.ctx_ids[s][:n_ctx].tolist()
        ids = tpl.prefix + q + tpl.middle + ctx + tpl.suffix
        tt = ([tpl.types[0]] * len(tpl.prefix) + [tpl.types[1]] * len(q) + [tpl.types[2]] * len(tpl.middle)
              + [tpl.types[3]] * n_ctx + [tpl.types[4]] * len(tpl.suffix))
        off = self.context_offset(t)
        start_labels = np.full(len(ids), IGNORE, np.int64)
        end_labels = np.full(len(ids), IGNORE, np.int64)
        start_labels[off + self.first_tok[s][:n_words]] = 0
        end_labels[off + self.last_tok[s][:n_words]] = 0
        typ = self.types[t]
        gold = [(a, b) for a, b, et in self.sentences[s].entities if et == typ and b < n_words]
        spans = np.array([(off + self.first_tok[s][a], off + self.last_tok[s][b]) for a, b in gold],
                         np.int64).reshape(-1, 2)
        start_labels[spans[:, 0]] = 1
        end_labels[spans[:, 1]] = 1
        return {"feature_index": int(k), "input_ids": ids, "token_type_ids": tt, "start_labels": start_labels,
                "end_labels": end_labels, "gold_spans": spans}

    def lengths(self) -> np.ndarray:
        """``[len(self)]`` int64: the tokens of every feature (special tokens + query + the context words that fit),
        the length ``__getitem__`` composes, without composing it."""
        query = np.array([len(q) for q in self.query_ids], np.int64) + self.template.n_special  # [T]
        context = np.zeros((len(self.sentences), self.n_types), np.int64)
        for s, last in enumerate(self.last_tok):  # kept words: those whose last token fits the type's budget
            n_words = np.searchsorted(last, self.budgets, side="left")
            context[s] = np.where(n_words > 0, last[np.maximum(n_words - 1, 0)] + 1, 0) if len(last) else 0
        return (context + query[None, :]).reshape(-1)  # item k = (sentence k // T, type k % T)

    def label_counts(self) -> np.ndarray:
        """``[negatives, positives]`` over the start and end decisions of every feature (for WCE)."""
        pos = neg = 0
        for s, sent in enumerate(self.sentences):
            for t, typ in enumerate(self.types):
                n_words = self.kept_words(s, t)
                kept = [(a, b) for a, b, et in sent.entities if et == typ and b < n_words]
                n_pos = len({a for a, _ in kept}) + len({b for _, b in kept})  # nested spans may share a boundary
                pos += n_pos
                neg += 2 * n_words - n_pos
        return np.array([neg, pos], np.int64)


class MrcNerTask(Task):
    """BERT-MRC NER with any loss. Plain keyword arguments (``configs/task/<name>.yaml: params``).

    Args:
        name: dataset name as in the paper's tables (``conll03``, ``ontonotes5``, ``msra``, ``ontonotes4``).
        queries: ``{entity type: natural-language query}``; every gold type needs one (order = feature order).
        data_dir, data_format, files, scheme, strict, label_map, hub_name: where and how to read the data
            (``dicenlp.data.mrc_ner.load_ner_splits``).
        language: ``en`` (word units) or ``zh`` (character units).
        max_examples, split_off, split_seed: caps and split-offs of the sentences (``dicenlp.data.subsets``).
        dev_ratio: shorthand for ``split_off: {dev: {from: train, size: dev_ratio}}`` (MSRA: 0.1, which has
            no dev file; used only when the files have no dev part).
        max_length: sub-tokens per (query, context) feature including special tokens.
        max_span_len: longest predictable entity, in sub-tokens.
        w_start, w_end, w_span: loss weights.
        threshold, span_threshold: probability thresholds of start/end and span-match decisions.
        span_sample_ratio: probability of each in-band pair becoming a random training candidate.
        max_span_candidates: training candidates per batch (gold always kept).
        max_pred_spans: predictions kept per (sentence, type) (the highest span scores).
        decoding: ``flat`` (non-overlapping spans per sentence, for flat datasets) or ``nested`` (every
            matched span, for nested datasets).
        head_dropout, activation: of the three heads.
        data_help: text appended to the missing-data error (where to get the data).
    """

    primary_metric = "f1"

    def __init__(self, queries: Mapping[str, str], data_dir: str | None = None, name: str = "ner",
                 language: str = "en", data_format: str = "auto", files: Mapping[str, str] | None = None,
                 scheme: str = "auto", strict: bool = False, label_map: Mapping[str, str] | None = None,
                 hub_name: str | list[str] | None = None, dev_ratio: float | None = None, split_seed: int = 42,
                 max_length: int = 256, max_span_len: int = 32, w_start: float = 1.0, w_end: float = 1.0,
                 w_span: float = 0.3, threshold: float = 0.5, span_threshold: float = 0.5,
                 span_sample_ratio: float = 0.0, max_span_candidates: int = 16384, max_pred_spans: int = 64,
                 head_dropout: float = 0.1, activation: str = "relu", decoding: str = "flat", data_help: str = "",
                 max_examples: Mapping[str, int] | None = None, split_off: Mapping[str, Any] | None = None) -> None:
        if dev_ratio and "dev" not in (split_off or {}):
            split_off = {**(split_off or {}), "dev": {"from": "train", "size": dev_ratio}}
        super().__init__(max_examples, split_off, split_seed)
        if not queries:
            raise ValueError("queries must map every entity type to a query")
        self.name = name
        self.queries = dict(queries)
        self.types = list(self.queries)
        self.data_dir = Path(data_dir) if data_dir else None
        self.language, self.data_format, self.files = language, data_format, dict(files) if files else None
        self.scheme, self.strict = scheme, strict
        self.label_map = dict(label_map) if label_map else None
        self.hub_name = list(hub_name) if hub_name and not isinstance(hub_name, str) else hub_name
        self.max_length, self.max_span_len = int(max_length), int(max_span_len)
        self.w_start, self.w_end, self.w_span = float(w_start), float(w_end), float(w_span)
        self.threshold, self.span_threshold = float(threshold), float(span_threshold)
        self.span_sample_ratio, self.max_span_candidates = float(span_sample_ratio), int(max_span_candidates)
        self.max_pred_spans = int(max_pred_spans)
        if decoding not in ("flat", "nested"):
            raise ValueError(f"task.params.decoding must be 'flat' (flat NER data) or 'nested' (nested NER data), "
                             f"got {decoding!r}")
        self.decoding = decoding
        self.head_dropout, self.activation, self.data_help = float(head_dropout), activation, data_help
        self.sentences: dict[str, list[NerSentence]] = {}
        self.pad_id = 0

    # ----------------------------------------------------------------- data
    def check_data(self) -> None:
        if self.data_dir is not None and self.data_dir.is_dir():
            if self.files:
                if all((self.data_dir / f).is_file() for f in self.files.values()):
                    return
            elif self.data_format == "slash":
                if find_split_file(self.data_dir, "train", ("{split}.txt", "msra_{split}.txt")):
                    return
            elif detect_format(self.data_dir) != "missing":
                return
        hub = ""
        if self.hub_name:
            reason = hub_available(self.hub_name)
            if reason is None:
                return  # setup() loads it from the Hub
            hub = f" The Hub copy could not be reached either ({reason})."
        help_text = f"\n{self.data_help.strip()}" if self.data_help else ""
        raise FileNotFoundError(
            f"task {self.name!r}: no NER data in {self.data_dir}: expected BERT-MRC JSON files "
            f"mrc-ner.train/mrc-ner.dev/mrc-ner.test or column files train.txt/dev.txt/test.txt "
            f"(set task.params.data_dir=...; see docs/ner.md).{hub}{help_text}")

    def read_data(self) -> None:
        """Sentences and gold entities of every split (after the split-offs and caps); every entity type must
        have a query (file:line)."""
        if self.sentences:
            return
        self.sentences = self.plan_splits(load_ner_splits(
            self.data_dir or ".", data_format=self.data_format, language=self.language, scheme=self.scheme,
            label_map=self.label_map, hub_name=self.hub_name, strict=self.strict, files=self.files, require_dev=False,
            repairs=self.data_repairs))
        for sents in self.sentences.values():
            check_entity_types(sents, self.types)

    def setup(self, tokenizer) -> None:
        self.read_data()
        self.pad_id = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else 0
        template = _Template.from_tokenizer(tokenizer)
        query_ids = [tokenizer(q.split(), is_split_into_words=True, add_special_tokens=False)["input_ids"]
                     for q in self.queries.values()]
        self.datasets = {}
        for split, sents in self.sentences.items():
            ctx_ids, word_ids = self._tokenize(tokenizer, sents)
            self.datasets[split] = MrcNerFeatures(sents, self.types, query_ids, ctx_ids, word_ids, template,
                                                  self.max_length)
            self._report(split, self.datasets[split])

    def _tokenize(self, tokenizer, sentences: list[NerSentence]) -> tuple[list[np.ndarray], list[np.ndarray]]:
        """Context sub-token ids and their unit index per sentence (one batched fast-tokenizer call).

        A unit that tokenizes to nothing (e.g. a zero-width character) is replaced by the unknown token, so
        every unit has at least one sub-token and can be labelled and predicted.
        """
        words = [s.tokens for s in sentences]
        enc = tokenizer(words, is_split_into_words=True, add_special_tokens=False) if words else None
        ctx_ids, word_ids = [], []
        for k, ws in enumerate(words):
            wid = np.array([-1 if w is None else w for w in enc.word_ids(k)], np.int64)
            ids = enc["input_ids"][k]
            present = set(wid.tolist())
            if len(present) != len(ws):
                fixed = [w if i in present else tokenizer.unk_token for i, w in enumerate(ws)]
                one = tokenizer(fixed, is_split_into_words=True, add_special_tokens=False)
                wid = np.array(one.word_ids(), np.int64)
                ids = one["input_ids"]
            ctx_ids.append(np.asarray(ids, np.int64))
            word_ids.append(wid)
        return ctx_ids, word_ids

    def _report(self, split: str, feats: MrcNerFeatures) -> None:
        n_ent = sum(len(s.entities) for s in feats.sentences)
        truncated = too_long = 0
        for s, sent in enumerate(feats.sentences):
            for a, b, t in sent.entities:
                ti = feats.type_index[t]
                if b >= feats.kept_words(s, ti):
                    truncated += 1
                elif feats.last_tok[s][b] - feats.first_tok[s][a] + 1 > self.max_span_len:
                    too_long += 1
        log.info("%s %s: %d sentences, %d features, %d entities", self.name, split, len(feats.sentences), len(feats),
                 n_ent)
        if truncated or too_long:
            log.warning("%s %s: %d entities cut off by max_length=%d and %d longer than max_span_len=%d sub-tokens; "
                        "they cannot be predicted and count as misses", self.name, split, truncated, self.max_length,
                        too_long, self.max_span_len)
        if self.decoding == "flat":
            ents = [(k, a, b) for k, sent in enumerate(feats.sentences) for a, b, _ in sent.entities]
            nested = int(overlap_mask(*np.array(ents, np.int64).reshape(-1, 3).T).sum())
            if nested:
                log.warning("%s %s: %d of %d gold entities overlap another one (nested data), which flat decoding "
                            "cannot predict; use task.params.decoding=nested for nested NER", self.name, split,
                            nested, n_ent)

    def collate(self, features: list[Mapping[str, Any]]) -> dict[str, torch.Tensor]:
        B = len(features)
        L = max(len(f["input_ids"]) for f in features)
        M = max(1, max(len(f["gold_spans"]) for f in features))
        input_ids = torch.full((B, L), self.pad_id, dtype=torch.long)
        token_type_ids = torch.zeros((B, L), dtype=torch.long)
        attention_mask = torch.zeros((B, L), dtype=torch.long)
        start_labels = torch.full((B, L), IGNORE, dtype=torch.long)
        end_labels = torch.full((B, L), IGNORE, dtype=torch.long)
        gold_spans = torch.full((B, M, 2), -1, dtype=torch.long)
        for b, f in enumerate(features):
            n = len(f["input_ids"])
            input_ids[b, :n] = torch.as_tensor(f["input_ids"])
            token_type_ids[b, :n] = torch.as_tensor(f["token_type_ids"])
            attention_mask[b, :n] = 1
            start_labels[b, :n] = torch.from_numpy(f["start_labels"])
            end_labels[b, :n] = torch.from_numpy(f["end_labels"])
            g = f["gold_spans"]
            if len(g):
                gold_spans[b, :len(g)] = torch.from_numpy(g)
        return {"feature_index": torch.tensor([f["feature_index"] for f in features], dtype=torch.long),
                "input_ids": input_ids, "token_type_ids": token_type_ids, "attention_mask": attention_mask,
                "start_labels": start_labels, "end_labels": end_labels,
                "start_mask": start_labels != IGNORE, "end_mask": end_labels != IGNORE, "gold_spans": gold_spans}

    def label_counts(self) -> torch.Tensor:
        return torch.as_tensor(self.datasets["train"].label_counts())

    def feature_lengths(self, split: str) -> np.ndarray:
        return self.datasets[split].lengths()

    # ----------------------------------------------------------------- model and loss
    def build_model(self, encoder: nn.Module, loss_fn: nn.Module) -> nn.Module:
        return BertMrcNer(encoder, form=loss_fn.binary_head, max_span_len=self.max_span_len,
                          dropout=self.head_dropout, activation=self.activation, threshold=self.threshold,
                          span_threshold=self.span_threshold, span_sample_ratio=self.span_sample_ratio,
                          max_span_candidates=self.max_span_candidates)

    def compute_loss(self, outputs: Mapping[str, torch.Tensor], batch: Mapping[str, torch.Tensor],
                     loss_fn: nn.Module) -> torch.Tensor:
        """``w_start·L(start) + w_end·L(end) + w_span·L(span candidates)``; ``-100`` labels (query, special,
        padding, non-boundary sub-tokens) are ignored by every loss."""
        start = loss_fn(outputs["start_logits"], batch["start_labels"])
        end = loss_fn(outputs["end_logits"], batch["end_labels"])
        total = self.w_start * start + self.w_end * end
        index = outputs["span_index"]
        if self.w_span and index.shape[0]:
            L = batch["input_ids"].shape[1]
            target = torch.isin(span_keys(index, L), span_keys(gold_index(batch["gold_spans"]), L)).long()
            return total + self.w_span * loss_fn(outputs["span_logits"], target)
        # no candidate (or w_span = 0): a zero term keeps the span head in the graph, so that every parameter
        # gets a (zero) gradient, which DistributedDataParallel requires
        return total + 0.0 * outputs["span_logits"].sum()

    # ----------------------------------------------------------------- evaluation
    def eval_outputs(self, outputs: Mapping[str, torch.Tensor], batch: Mapping[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        """``pred_spans`` ``[B, P, 2]`` token spans that pass the three decisions (``decode_spans``) and
        ``pred_margins`` ``[B, P, 3]``: the start, end and span-match margins (logits) of each."""
        form = "sigmoid" if outputs["start_logits"].dim() == 2 else "softmax"
        spans, match = decode_spans(outputs["span_index"], outputs["span_logits"], form,
                                    logit_threshold(self.span_threshold), batch["input_ids"].shape[0],
                                    self.max_pred_spans)
        start = positive_margin(outputs["start_logits"], form).gather(1, spans[..., 0].clamp(min=0))
        end = positive_margin(outputs["end_logits"], form).gather(1, spans[..., 1].clamp(min=0))
        margins = torch.stack([start, end, match], dim=-1).float()
        return {"feature_index": batch["feature_index"], "pred_spans": spans, "pred_margins": margins}

    def candidate_spans(self, split: str, pred_spans: np.ndarray, pred_margins: np.ndarray) -> dict[str, np.ndarray]:
        """Gathered token spans ``[F, P, 2]`` and margins ``[F, P, 3]`` → word-level candidates, one row each:
        ``sentence``, ``type`` (index into ``self.types``), ``start``, ``end`` (inclusive) ``[N]`` and
        ``margins`` ``[N, 3]`` (start, end, span-match). Vectorised over the whole split."""
        feats: MrcNerFeatures = self.datasets[split]
        f, p = np.nonzero(pred_spans[..., 0] >= 0)
        s, t = np.divmod(f, feats.n_types)
        offsets = np.array([feats.context_offset(k) for k in range(feats.n_types)], np.int64)[t]
        flat_words = np.concatenate(feats.word_ids) if feats.word_ids else np.zeros(0, np.int64)
        base = feats._base[s]
        return {"sentence": s, "type": t, "start": flat_words[base + pred_spans[f, p, 0] - offsets],
                "end": flat_words[base + pred_spans[f, p, 1] - offsets],
                "margins": np.asarray(pred_margins, np.float64)[f, p].reshape(-1, 3)}

    def gold_entities(self, split: str) -> set[tuple[int, str, int, int]]:
        return {(k, t, a, b) for k, sent in enumerate(self.sentences[split]) for a, b, t in sent.entities}

    def evaluate(self, split: str, gathered: Mapping[str, np.ndarray]) -> EvalResult:
        """Candidates → (flat decoding) → span P/R/F1 against the original gold, and the predictions file.

        Each span's ``score`` is ``log(p_start · p_end · p_match)`` (natural log of the three decision
        probabilities); flat decoding keeps the non-overlapping set of largest total probability
        (``flat_spans.flat_select``) and reports the others as ``dropped``. ``span_f1.json`` records the
        decoding, the candidate and dropped counts and the time from gathered outputs to scores."""
        started = time.perf_counter()
        cand = self.candidate_spans(split, np.asarray(gathered["pred_spans"]), np.asarray(gathered["pred_margins"]))
        log_p = -np.logaddexp(0.0, -cand["margins"])  # log sigmoid, exact for large margins
        score = log_p.sum(axis=1)
        if self.decoding == "flat":
            keep = flat_select(cand["sentence"], cand["start"], cand["end"], score, tiebreak=cand["type"])
        else:
            keep = np.ones(len(score), bool)
        pred = {(int(s), self.types[t], int(a), int(b)) for s, t, a, b in
                zip(cand["sentence"][keep], cand["type"][keep], cand["start"][keep], cand["end"][keep])}
        scores = span_scores(pred, self.gold_entities(split))
        decode_ms = 1e3 * (time.perf_counter() - started)
        n_dropped = int((~keep).sum())
        log.info("%s %s span F1 (%s decoding%s; decoded and scored in %.0f ms):\n%s", self.name, split, self.decoding,
                 f", {n_dropped} of {len(keep)} candidate spans dropped for overlapping others"
                 if self.decoding == "flat" else "", decode_ms, scores.table())
        report = {"micro": scores.micro.as_dict(), "per_type": {t: r.as_dict() for t, r in scores.per_type.items()},
                  "decoding": self.decoding, "candidates": len(keep), "dropped": n_dropped,
                  "decode_ms": round(decode_ms, 1)}
        return EvalResult(metrics=scores.metrics(per_type=True), extra_files={"span_f1.json": report},
                          predictions=self._predictions(split, cand, log_p, keep))

    def _predictions(self, split: str, cand: Mapping[str, np.ndarray], log_p: np.ndarray,
                     keep: np.ndarray) -> list[dict[str, Any]]:
        """Per sentence: tokens, gold ``[start, end, type]``, predicted spans (and, with flat decoding, the
        ``dropped`` overlapping candidates) as ``{"span": [start, end, type], "score", "p_start", "p_end",
        "p_match"}`` sorted like the gold (start, end, type name); numbers to 6 significant digits."""
        type_rank = np.argsort(np.argsort(self.types))  # sort by type name, as the gold
        order = np.lexsort((type_rank[cand["type"]], cand["end"], cand["start"], cand["sentence"]))
        score, probs = log_p.sum(axis=1), np.exp(log_p)
        kept, dropped = defaultdict(list), defaultdict(list)
        for k in order.tolist():
            entry = {"span": [int(cand["start"][k]), int(cand["end"][k]), self.types[int(cand["type"][k])]],
                     "score": _sig6(score[k]), "p_start": _sig6(probs[k, 0]), "p_end": _sig6(probs[k, 1]),
                     "p_match": _sig6(probs[k, 2])}
            (kept if keep[k] else dropped)[int(cand["sentence"][k])].append(entry)
        return [{"sentence": k, "tokens": sent.tokens, "gold": [[a, b, t] for a, b, t in sent.entities],
                 "pred": kept[k], **({"dropped": dropped[k]} if self.decoding == "flat" else {})}
                for k, sent in enumerate(self.sentences[split])]


def _sig6(x: float) -> float:
    """6 significant digits: readable and stable across batch compositions (last-bit float differences)."""
    return float(f"{float(x):.6g}")


__all__ = ["MrcNerFeatures", "MrcNerTask"]
