"""BERT-MRC for NER (Li et al. 2019; PAPER.md §3.2, OFFICIAL_CODE.md §2a): start, end and span-match heads.

Input ``[CLS] query [SEP] context [SEP]``; only context positions can be starts, ends or spans
(``batch["start_mask"]``, ``batch["end_mask"]``). With ``h = dropout(encoder(x))`` ``[B, L, H]``:

    start_logits = MLP_s(h)                       [B, L] (sigmoid form) or [B, L, 2] (softmax form)
    end_logits   = MLP_e(h)                       same
    span score(i, j) = MLP_m([h_i; h_j])          for candidate pairs only: [N] or [N, 2]

(computed at the context positions only, ``start_mask | end_mask``; 0 elsewhere: no loss or decision reads them)

The output form of every binary decision is the loss's ``binary_head``: one logit and a
sigmoid for the dice family, two logits and a softmax for ce/wce/fl (identical expressiveness: a 2-way
softmax on (a, b) is a sigmoid on b − a).

**Span-match head without the [B, L, L, 2H] tensor.** BERT-MRC scores every pair with an MLP on the
concatenation ``[h_i; h_j]``; its first layer splits as ``W [h_i; h_j] = W_s h_i + W_e h_j``, so

    MLP_m([h_i; h_j]) = w_2ᵀ act(P_s[i] + P_e[j]) + b_2,   P_s = W_s h + b_1,  P_e = W_e h    ([B, L, H] each)

and a pair costs one gather and an add. Only *candidate* pairs are scored: ``start ≤ end < start +
max_span_len`` inside the context (a band, ``[B, L, K]`` booleans), from

* training: gold pairs ∪ predicted pairs (predicted start × predicted end inside the band) ∪ a Bernoulli(
  ``span_sample_ratio``) sample of the band (the official ``gold_pred_random``, restricted to the band),
  at most ``max_span_candidates`` per batch (gold always kept, the rest subsampled);
* evaluation: predicted pairs only.

So memory is O(B·L·H + N·H) instead of O(B·L²·H). ``all_pairs_logits`` computes the official all-pairs form
with the same weights (for tests and ``scripts/bench_mrc_memory.py``).
"""

from __future__ import annotations

import math
from typing import Mapping

import torch
from torch import nn

from dicenlp.models.base import EncoderWithHead

_ACTIVATIONS = {"relu": nn.ReLU, "gelu": nn.GELU, "tanh": nn.Tanh}


def logit_threshold(probability: float) -> float:
    """The logit (or softmax margin b − a) above which the positive probability exceeds ``probability``."""
    if not 0.0 < probability < 1.0:
        raise ValueError(f"a decision threshold must lie in (0, 1), got {probability}")
    return math.log(probability / (1.0 - probability))


def positive_margin(logits: torch.Tensor, form: str) -> torch.Tensor:
    """Sigmoid form: the logit itself; softmax form ``[..., 2]``: ``logit_1 − logit_0`` (same decision)."""
    return logits if form == "sigmoid" else logits[..., 1] - logits[..., 0]


def band_pairs(start_ok: torch.Tensor, end_ok: torch.Tensor, max_span_len: int) -> torch.Tensor:
    """``[B, L, K]`` bool: ``band[b, i, k]`` ⇔ ``start_ok[b, i] and end_ok[b, i + k]`` (``i + k < L``).

    K = ``min(max_span_len, L)``; pair ``(i, j = i + k)`` has length ``k + 1`` tokens.
    """
    B, L = start_ok.shape
    K = min(max_span_len, L)
    j = torch.arange(L, device=start_ok.device)[:, None] + torch.arange(K, device=start_ok.device)[None, :]  # [L, K]
    inside = j < L
    end_at = end_ok[:, j.clamp(max=L - 1)] & inside  # [B, L, K]
    return start_ok[:, :, None] & end_at


def band_to_index(band: torch.Tensor) -> torch.Tensor:
    """``[B, L, K]`` bool → ``[N, 3]`` long rows ``(b, i, j)`` with ``j = i + k``."""
    b, i, k = band.nonzero(as_tuple=True)
    return torch.stack([b, i, i + k], dim=1)


def span_keys(index: torch.Tensor, length: int) -> torch.Tensor:
    """Unique integer key of each ``(b, i, j)`` row for set operations."""
    return (index[:, 0] * length + index[:, 1]) * length + index[:, 2]


def gold_index(gold_spans: torch.Tensor) -> torch.Tensor:
    """``[B, M, 2]`` (token start, end; ``-1`` padding) → ``[N, 3]`` rows ``(b, i, j)``."""
    b, m = (gold_spans[..., 0] >= 0).nonzero(as_tuple=True)
    return torch.stack([b, gold_spans[b, m, 0], gold_spans[b, m, 1]], dim=1)


def place(rows: torch.Tensor, where: torch.Tensor) -> torch.Tensor:
    """``[M, D]`` rows put at the ``M`` true positions of ``where`` ``[B, L]`` → ``[B, L, D]``, 0 elsewhere."""
    return rows.new_zeros((*where.shape, rows.shape[-1])).index_put((where,), rows)


class MLPHead(nn.Module):
    """``Linear(H, H) → act → dropout → Linear(H, out)`` (the official 2-layer heads)."""

    def __init__(self, hidden: int, out: int, dropout: float, activation: str = "relu") -> None:
        super().__init__()
        self.net = nn.Sequential(nn.Linear(hidden, hidden), _ACTIVATIONS[activation](), nn.Dropout(dropout),
                                 nn.Linear(hidden, out))

    def forward(self, h: torch.Tensor) -> torch.Tensor:
        return self.net(h)


class SpanMatchHead(nn.Module):
    """``score(i, j) = w_2ᵀ act(W_s h_i + W_e h_j + b_1) + b_2`` = an MLP on ``[h_i; h_j]`` (see module doc).

    ``project(h)`` → ``(P_s, P_e)`` ``[B, L, I]``; ``score(P_s, P_e, index)`` → ``[N, out]`` for rows
    ``(b, i, j)`` of ``index``. ``I`` = ``intermediate`` (default H).
    """

    def __init__(self, hidden: int, out: int, dropout: float, activation: str = "relu",
                 intermediate: int | None = None) -> None:
        super().__init__()
        inter = intermediate or hidden
        self.start_proj = nn.Linear(hidden, inter)            # W_s, b_1
        self.end_proj = nn.Linear(hidden, inter, bias=False)  # W_e
        self.act = _ACTIVATIONS[activation]()
        self.dropout = nn.Dropout(dropout)
        self.out = nn.Linear(inter, out)

    def project(self, h: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        return self.start_proj(h), self.end_proj(h)

    def score(self, p_start: torch.Tensor, p_end: torch.Tensor, index: torch.Tensor) -> torch.Tensor:
        b, i, j = index.unbind(1)
        return self.out(self.dropout(self.act(p_start[b, i] + p_end[b, j])))

    def all_pairs_logits(self, h: torch.Tensor) -> torch.Tensor:
        """The official all-pairs form: ``[B, L, L, 2H]`` concatenation → MLP → ``[B, L, L, out]``.

        Same weights as ``score`` (``W = [W_s | W_e]``); for equivalence tests and the memory benchmark only.
        """
        B, L, H = h.shape
        pairs = torch.cat([h[:, :, None, :].expand(B, L, L, H), h[:, None, :, :].expand(B, L, L, H)], dim=-1)
        weight = torch.cat([self.start_proj.weight, self.end_proj.weight], dim=1)  # [I, 2H]
        z = torch.nn.functional.linear(pairs, weight, self.start_proj.bias)
        return self.out(self.dropout(self.act(z)))


class BertMrcNer(EncoderWithHead):
    """Encoder + start, end and span-match heads; ``forward(batch)`` returns

    * ``start_logits``, ``end_logits``: ``[B, L]`` (sigmoid form) or ``[B, L, 2]`` (softmax form);
    * ``span_index``: ``[N, 3]`` candidate rows ``(b, i, j)`` (token positions, ``i ≤ j``);
    * ``span_logits``: ``[N]`` or ``[N, 2]``.

    Batch keys used: ``input_ids``, ``attention_mask``, ``token_type_ids`` (encoder), ``start_mask``,
    ``end_mask`` (``[B, L]`` bool: where a start/end decision exists), and in training ``gold_spans``
    (``[B, M, 2]`` token start/end, ``-1`` padding).

    Args:
        form: ``"sigmoid"`` or ``"softmax"`` (``loss_fn.binary_head``).
        max_span_len: longest span in tokens that can be a candidate (and be predicted).
        threshold, span_threshold: probability thresholds of start/end and of span-match decisions.
        span_sample_ratio: probability of adding each band pair as a random training candidate.
        max_span_candidates: cap on training candidates per batch (gold pairs are always kept).
    """

    def __init__(self, encoder: nn.Module, form: str = "sigmoid", max_span_len: int = 32, dropout: float = 0.1,
                 activation: str = "relu", threshold: float = 0.5, span_threshold: float = 0.5,
                 span_sample_ratio: float = 0.0, max_span_candidates: int = 16384) -> None:
        super().__init__(encoder)
        if form not in ("sigmoid", "softmax"):
            raise ValueError(f"form must be 'sigmoid' or 'softmax', got {form!r}")
        if max_span_len < 1:
            raise ValueError(f"max_span_len must be >= 1, got {max_span_len}")
        self.form = form
        out = 1 if form == "sigmoid" else 2
        self.max_span_len = int(max_span_len)
        self.start_margin = logit_threshold(threshold)
        self.span_margin = logit_threshold(span_threshold)
        self.span_sample_ratio = float(span_sample_ratio)
        self.max_span_candidates = int(max_span_candidates)
        self.dropout = nn.Dropout(dropout)
        H = self.hidden_size
        self.start_head = MLPHead(H, out, dropout, activation)
        self.end_head = MLPHead(H, out, dropout, activation)
        self.span_head = SpanMatchHead(H, out, dropout, activation)

    def _squeeze(self, logits: torch.Tensor) -> torch.Tensor:
        return logits.squeeze(-1) if self.form == "sigmoid" else logits

    def forward(self, batch: Mapping[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        # Decisions exist only where start_mask or end_mask is set (context word boundaries): the dropout, the
        # start/end heads and the span projections run on those rows alone (in a [CLS] query [SEP] context [SEP]
        # feature, a third to a half of the tokens) and every other position gets 0, which no loss (labels -100),
        # decision or candidate reads. The same logits at the boundaries as on every row, for less work.
        where = batch["start_mask"].bool() | batch["end_mask"].bool()  # [B, L]
        rows = self.dropout(self.encode(batch)[where])  # [M, H]
        start_logits = self._squeeze(place(self.start_head(rows), where))
        end_logits = self._squeeze(place(self.end_head(rows), where))
        index = self.candidates(start_logits, end_logits, batch)
        p_start, p_end = (place(p, where) for p in self.span_head.project(rows))
        span_logits = self._squeeze(self.span_head.score(p_start, p_end, index))
        return {"start_logits": start_logits, "end_logits": end_logits, "span_index": index,
                "span_logits": span_logits}

    @torch.no_grad()
    def predicted_band(self, start_logits: torch.Tensor, end_logits: torch.Tensor,
                       batch: Mapping[str, torch.Tensor]) -> torch.Tensor:
        """``[B, L, K]`` bool: predicted start × predicted end inside the band and the context."""
        start_ok = batch["start_mask"].bool() & (positive_margin(start_logits, self.form) > self.start_margin)
        end_ok = batch["end_mask"].bool() & (positive_margin(end_logits, self.form) > self.start_margin)
        return band_pairs(start_ok, end_ok, self.max_span_len)

    @torch.no_grad()
    def candidates(self, start_logits: torch.Tensor, end_logits: torch.Tensor,
                   batch: Mapping[str, torch.Tensor]) -> torch.Tensor:
        """Candidate rows ``(b, i, j)``: predicted pairs, plus gold and sampled pairs in training."""
        band = self.predicted_band(start_logits, end_logits, batch)
        if not (self.training and "gold_spans" in batch):
            return band_to_index(band)
        if self.span_sample_ratio > 0:
            valid = band_pairs(batch["start_mask"].bool(), batch["end_mask"].bool(), self.max_span_len)
            band = band | (valid & (torch.rand(valid.shape, device=valid.device) < self.span_sample_ratio))
        L = start_logits.shape[1]
        gold = gold_index(batch["gold_spans"])
        other = band_to_index(band)
        other = other[~torch.isin(span_keys(other, L), span_keys(gold, L))]
        room = max(0, self.max_span_candidates - gold.shape[0])
        if other.shape[0] > room:  # subsample the non-gold candidates (memory bound)
            other = other[torch.randperm(other.shape[0], device=other.device)[:room]]
        return torch.cat([gold, other], dim=0)

    def decode(self, outputs: Mapping[str, torch.Tensor], batch_size: int,
               max_spans: int) -> tuple[torch.Tensor, torch.Tensor]:
        """Matched spans of ``outputs`` and their span-match margins (see ``decode_spans``) with this model's
        form and threshold."""
        return decode_spans(outputs["span_index"], outputs["span_logits"], self.form, self.span_margin, batch_size,
                            max_spans)


@torch.no_grad()
def decode_spans(index: torch.Tensor, span_logits: torch.Tensor, form: str, span_margin: float, batch_size: int,
                 max_spans: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Candidate pairs whose span-match margin exceeds ``span_margin`` → ``(spans, margins)``:

    * ``spans`` ``[B, P, 2]`` long token ``(start, end)`` per example, ``-100`` padding, at most
      ``max_spans`` per example (the highest span scores first), ``P >= 1``;
    * ``margins`` ``[B, P]`` float: the span-match margin of each (``positive_margin``; ``-inf`` padding).

    Nested and overlapping spans are all kept (flat decoding is the task's: ``dicenlp.tasks.flat_spans``)."""
    margin = positive_margin(span_logits, form)
    keep = margin > span_margin
    index, margin = index[keep], margin[keep]
    if index.shape[0] == 0:
        return (torch.full((batch_size, 1, 2), -100, dtype=torch.long, device=index.device),
                torch.full((batch_size, 1), float("-inf"), dtype=margin.dtype, device=index.device))
    order = torch.argsort(margin, descending=True, stable=True)
    order = order[torch.argsort(index[order, 0], stable=True)]  # by example, best first within it
    index = index[order]
    b = index[:, 0]
    counts = torch.bincount(b, minlength=batch_size)
    first = torch.cumsum(counts, 0) - counts
    rank = torch.arange(b.shape[0], device=b.device) - first[b]
    sel = rank < max_spans
    width = max(1, int(min(max_spans, int(counts.max()))))
    out = torch.full((batch_size, width, 2), -100, dtype=torch.long, device=index.device)
    out[b[sel], rank[sel]] = index[sel, 1:]
    margins = torch.full((batch_size, width), float("-inf"), dtype=margin.dtype, device=index.device)
    margins[b[sel], rank[sel]] = margin[order][sel]
    return out, margins


__all__ = ["BertMrcNer", "MLPHead", "SpanMatchHead", "band_pairs", "band_to_index", "decode_spans", "gold_index",
           "logit_threshold", "place", "positive_margin", "span_keys"]
