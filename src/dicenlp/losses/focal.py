"""Focal loss (PAPER.md Table 2, FL row; Lin et al. 2017)."""

from __future__ import annotations

import torch
import torch.nn.functional as F

from .base import Flat, PositionLoss, drop_class


class FocalLoss(PositionLoss):
    """FL = -1/N Σ_i α_i Σ_j y_ij (1 - p_ij)^γ log p_ij   (PAPER.md Table 2; γ = 0 gives CE, Eq. 1).

    Multi-class: -α_{y_i} (1 - p_t)^γ log p_t, p_t = softmax(x_i)_{y_i}; binary: -α_i [y (1 - p)^γ log p +
    (1 - y) p^γ log(1 - p)], p = σ(x) (torchvision's sigmoid focal loss, alpha=-1). (1 - p)^γ = exp(γ log(1 - p))
    with log(1 - p) from the logits (logsigmoid(-x); multi-class, the logsumexp of the other classes), so loss
    and gradient are exact where p rounds to 1, also for γ < 1 (d/dp (1 - p)^γ unbounded). ``gamma`` ≥ 0
    (Figure 1: 1; official default: 2); ``class_weights`` (None: no α, as every official script), ``reduction``:
    :class:`~dicenlp.losses.base.PositionLoss`.
    """

    def __init__(self, gamma: float = 2.0, class_weights=None, reduction: str = "mean") -> None:
        super().__init__(class_weights=class_weights, reduction=reduction)
        if gamma < 0:
            raise ValueError(f"gamma must be >= 0, got {gamma}")
        self.gamma = float(gamma)

    def loss(self, flat: Flat) -> torch.Tensor:
        g = self.gamma
        if flat.multiclass:
            log_p = torch.log_softmax(flat.x, -1)
            t = flat.y[:, None]
            log_pt, log_1m_pt = log_p.gather(-1, t), drop_class(log_p, t)[3]  # log p_t, log(1 - p_t): exact
            per_position = (-torch.exp(g * log_1m_pt) * log_pt).squeeze(-1)
        else:
            y, log_p, log_q = flat.y, F.logsigmoid(flat.x), F.logsigmoid(-flat.x)  # log p, log(1 - p)
            per_position = -(y * torch.exp(g * log_q) * log_p + (1 - y) * torch.exp(g * log_p) * log_q)
        return self.reduce(per_position, flat)
