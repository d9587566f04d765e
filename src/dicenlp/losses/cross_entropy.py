"""Cross entropy (PAPER.md Eq. 1) and weighted cross entropy (Eq. 2) with the paper's class weights."""

from __future__ import annotations

import torch
import torch.nn.functional as F

from ._common import Flat, PositionwiseLoss, as_weight_buffer, check_reduction, reduce_positions


class CrossEntropyLoss(PositionwiseLoss):
    """CE = -1/N Σ_i α_i Σ_j y_ij log p_ij   (PAPER.md Eq. 1; with ``class_weights``, Eq. 2).

    * binary (logits [...] , target [...] in [0, 1]): binary cross entropy with logits,
      -[y log σ(x) + (1 - y) log(1 - σ(x))], computed stably from the logit.
    * multi-class (logits [..., C], target [...] class ids): softmax cross entropy, -log p_{i, y_i}.

    Args:
        class_weights: optional per-class weights α_t ([C], or [2] = [negative, positive] for binary);
            α_i = α_{y_i}. Soft binary targets use α_i = α_0 (1 - y_i) + α_1 y_i.
        reduction: ``"mean"`` divides by the number N of unmasked positions, as the paper's 1/N does
            (note: ``torch.nn.CrossEntropyLoss(weight=...)`` divides by Σ α_i instead); ``"sum"`` sums;
            ``"batch"`` is accepted as a synonym of ``"mean"`` (Eq. 1 is already a set-level mean), so
            one ``reduction=batch`` setting can be shared by every loss.
    """

    def __init__(self, class_weights=None, reduction: str = "mean") -> None:
        super().__init__()
        self.reduction = check_reduction(reduction, ("mean", "batch", "sum"))
        self.register_buffer("class_weights", as_weight_buffer(class_weights), persistent=False)

    def _loss(self, flat: Flat) -> torch.Tensor:
        w = self._class_weights(flat)
        if flat.multiclass:
            per_pos = F.cross_entropy(flat.x, flat.y, reduction="none")
            if w is not None:
                per_pos = per_pos * w[flat.y]  # (not F.cross_entropy(weight=...): its mean divides by Σ α)
        else:
            per_pos = F.binary_cross_entropy_with_logits(flat.x, flat.y, reduction="none")
            if w is not None:
                per_pos = per_pos * (w[0] * (1 - flat.y) + w[1] * flat.y)
        return reduce_positions(per_pos, self.reduction)

    def extra_repr(self) -> str:
        return f"reduction={self.reduction!r}, class_weights={self.class_weights is not None}"


def count_labels(labels, num_classes: int, ignore_index: int = -100) -> torch.Tensor:
    """Training-label counts n_t per class, ignoring ``ignore_index`` → long tensor [num_classes]."""
    y = torch.as_tensor(labels).reshape(-1).long()
    y = y[y != ignore_index]
    if y.numel() and (int(y.min()) < 0 or int(y.max()) >= num_classes):
        raise ValueError(f"labels must lie in [0, {num_classes}) or equal {ignore_index}")
    return torch.bincount(y, minlength=num_classes)


def wce_class_weights(label_counts, K: float = 1.0) -> torch.Tensor:
    """The paper's WCE weights (PAPER.md §2.3): α_t = lg((n - n_t)/n_t + K), lg = log10.

    Args:
        label_counts: n_t per class ([C]; [n_negative, n_positive] for a binary problem), n = Σ n_t.
        K: the paper's hyperparameter (its value is never given; K >= 1 keeps every α_t > 0).

    Returns a float64 tensor [C]. A class with n_t = 0 never occurs as a training target, so its weight
    cannot matter; it gets 0 instead of lg(∞). Raises if a weight would be <= 0 (K too small).
    """
    counts = torch.as_tensor(label_counts, dtype=torch.float64).reshape(-1)
    if counts.numel() < 2 or bool((counts < 0).any()) or float(counts.sum()) <= 0:
        raise ValueError(f"label_counts must be >= 0 for at least 2 classes with a positive total, got "
                         f"{counts.tolist()}")
    n = counts.sum()
    present = counts > 0
    ratio = torch.where(present, (n - counts) / counts.clamp(min=1), 0.0)
    alpha = torch.where(present, torch.log10(ratio + K), 0.0)
    if bool((alpha[present] <= 0).any()):
        raise ValueError(f"WCE weights lg((n - n_t)/n_t + K) must be > 0; got {alpha.tolist()} for K={K} "
                         "(use K >= 1)")
    return alpha


class WeightedCrossEntropyLoss(CrossEntropyLoss):
    """Weighted CE (PAPER.md Eq. 2): CE with α_t = lg((n - n_t)/n_t + K) from the training-label counts.

    Give either ``class_weights`` (used as they are) or ``label_counts`` (+ ``K``); see
    :func:`wce_class_weights`. Reductions as in :class:`CrossEntropyLoss` ('mean' divides by N, as Eq. 2).
    """

    def __init__(self, class_weights=None, label_counts=None, K: float = 1.0, reduction: str = "mean") -> None:
        if class_weights is None:
            if label_counts is None:
                raise ValueError("wce needs class_weights or label_counts (training-label counts per class, "
                                 "e.g. task.label_counts() or dicenlp.losses.count_labels(train_labels, C))")
            class_weights = wce_class_weights(label_counts, K)
        super().__init__(class_weights=class_weights, reduction=reduction)
        self.K = K
