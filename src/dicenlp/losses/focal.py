"""Focal loss (PAPER.md Table 2, FL row; Lin et al. 2017)."""

from __future__ import annotations

import torch
import torch.nn.functional as F

from .base import LOG_ZERO, Flat, PositionLoss, logsumexp


class FocalLoss(PositionLoss):
    """FL = -1/N Σ_i α_i Σ_j y_ij (1 - p_ij)^γ log p_ij   (PAPER.md Table 2; γ = 0 gives CE, Eq. 1).

    * multi-class, logits [N, C], target [N] ids: -α_{y_i} (1 - p_t)^γ log p_t, p_t = softmax(x_i)_{y_i};
    * binary, logits [N], target [N] in [0, 1]: -α_i [y (1 - p)^γ log p + (1 - y) p^γ log(1 - p)], p = σ(x)
      (torchvision's sigmoid focal loss with ``alpha=-1``; the official binary focal up to its +1e-4 in the log).
    (1 - p)^γ = exp(γ log(1 - p)) with log(1 - p) taken from the logits (``logsigmoid(-x)``; multi-class: the
    logsumexp of the other classes), so the loss and its gradient are finite and exact where p rounds to 1,
    also for γ < 1 (where d/dp (1 - p)^γ is unbounded).

    Args: gamma γ ≥ 0 (Figure 1 uses 1; the official scripts' default is 2); ``class_weights`` α_t and
    ``reduction`` as in :class:`~dicenlp.losses.base.PositionLoss` (None = no α, as every official script).
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
            log_pt = log_p.gather(-1, t)
            log_1m_pt = logsumexp(log_p.scatter(-1, t, LOG_ZERO))  # log(1 - p_t) = log Σ_{j≠t} p_j: exact
            per_position = (-torch.exp(g * log_1m_pt) * log_pt).squeeze(-1)
        else:
            y, log_p, log_q = flat.y, F.logsigmoid(flat.x), F.logsigmoid(-flat.x)  # log p, log(1 - p)
            per_position = -(y * torch.exp(g * log_q) * log_p + (1 - y) * torch.exp(g * log_p) * log_q)
        return self.reduce(per_position, flat)

    def extra_repr(self) -> str:
        return f"gamma={self.gamma}, " + super().extra_repr()
