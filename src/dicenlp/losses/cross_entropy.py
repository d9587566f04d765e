"""Cross entropy (PAPER.md Eq. 1) and weighted cross entropy (Eq. 2) with the paper's class weights."""

from __future__ import annotations

import torch
import torch.nn.functional as F

from .base import Flat, PositionLoss


class CrossEntropyLoss(PositionLoss):
    """CE = -1/N Σ_i α_i Σ_j y_ij log p_ij   (PAPER.md Eq. 1; with ``class_weights``, Eq. 2): multi-class
    -log p_{i,y_i}, p = softmax(x_i); binary -[y log σ(x) + (1 - y) log σ(-x)]; both by torch's fused log-space
    kernels. Reductions, ``class_weights``: :class:`~dicenlp.losses.base.PositionLoss`. A span head is one softmax
    over the positions (the standard QA objective, Seo et al. 2016 / BERT) unless class weights fix the classes.
    """

    @property
    def span_head(self) -> str:
        return "positions" if self.class_weights is None else self.binary_head

    def loss(self, flat: Flat) -> torch.Tensor:
        if flat.multiclass:
            nll = F.cross_entropy(flat.x, flat.y, reduction="none")
        else:
            nll = F.binary_cross_entropy_with_logits(flat.x, flat.y, reduction="none")
        return self.reduce(nll, flat)


def count_labels(labels, num_classes: int, ignore_index: int = -100) -> torch.Tensor:
    """Training-label counts n_t per class, ignoring ``ignore_index`` → long tensor [num_classes]."""
    y = torch.as_tensor(labels).reshape(-1).long()
    y = y[y != ignore_index]
    if y.numel() and (int(y.min()) < 0 or int(y.max()) >= num_classes):
        raise ValueError(f"labels must lie in [0, {num_classes}) or equal {ignore_index}")
    return torch.bincount(y, minlength=num_classes)


def wce_class_weights(label_counts, K: float = 1.0) -> torch.Tensor:
    """The paper's WCE weights (PAPER.md §2.3): α_t = lg((n - n_t)/n_t + K), lg = log10.

    ``label_counts``: n_t per class ([C]; binary: [n_negative, n_positive]), n = Σ n_t; ``K``: never given by the
    paper (K >= 1 keeps every α_t > 0). Returns float64 [C]; a class absent from training (n_t = 0, never a
    target) gets 0 instead of lg(∞). Raises if a weight would be <= 0 (K too small).
    """
    counts = torch.as_tensor(label_counts, dtype=torch.float64).reshape(-1)
    if counts.numel() < 2 or bool((counts < 0).any()) or float(counts.sum()) <= 0:
        raise ValueError(f"label_counts must be >= 0 for at least 2 classes with a positive total, got "
                         f"{counts.tolist()}")
    n = counts.sum()
    present = counts > 0
    alpha = torch.where(present, torch.log10((n - counts) / counts.clamp(min=1) + K), 0.0)
    if bool((alpha[present] <= 0).any()):
        raise ValueError(f"WCE weights lg((n - n_t)/n_t + K) must be > 0; got {alpha.tolist()} for K={K} "
                         "(use K >= 1)")
    return alpha


class WeightedCrossEntropyLoss(CrossEntropyLoss):
    """Weighted CE (PAPER.md Eq. 2): CE with α_t = lg((n - n_t)/n_t + K) (:func:`wce_class_weights`) from
    ``label_counts`` (+ ``K``), or with ``class_weights`` as given. 'mean' divides by N, as Eq. 2."""

    def __init__(self, class_weights=None, label_counts=None, K: float = 1.0, reduction: str = "mean") -> None:
        if class_weights is None:
            if label_counts is None:
                raise ValueError("wce needs class_weights or label_counts (training-label counts per class, "
                                 "e.g. task.label_counts() or dicenlp.losses.count_labels(train_labels, C))")
            class_weights = wce_class_weights(label_counts, K)
        super().__init__(class_weights=class_weights, reduction=reduction)
        self.K = K
