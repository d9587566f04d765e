"""Focal loss (PAPER.md Table 2, FL row; Lin et al. 2017)."""

from __future__ import annotations

import torch

import torch.nn.functional as F

from ._common import Flat, PositionwiseLoss, as_weight_buffer, check_reduction, reduce_positions, softmax_parts


class FocalLoss(PositionwiseLoss):
    """FL = -1/N Σ_i α_i Σ_j y_ij (1 - p_ij)^γ log p_ij   (PAPER.md Table 2; γ = 0 gives CE, Eq. 1).

    * binary: -α_i [y (1 - p)^γ log p + (1 - y) p^γ log(1 - p)], p = σ(x) (the sigmoid focal loss of
      torchvision with ``alpha=-1``, and the official code's binary focal up to its +1e-4 inside the log).
    * multi-class: -α_{y_i} (1 - p_{i,y_i})^γ log p_{i,y_i}, p = softmax(x).
    (1 - p)^γ is evaluated as exp(γ log(1 - p)) from the logits, so γ < 1 stays finite at p → 1.

    Args:
        gamma: focusing parameter γ (>= 0; Figure 1 uses 1; the official scripts' default is 2).
        class_weights: optional α_t per class ([C]; [2] = [negative, positive] for binary). None = 1.
        reduction: ``"mean"`` over unmasked positions (``"batch"`` is a synonym), or ``"sum"``.
    """

    def __init__(self, gamma: float = 2.0, class_weights=None, reduction: str = "mean") -> None:
        super().__init__()
        if gamma < 0:
            raise ValueError(f"gamma must be >= 0, got {gamma}")
        self.gamma = float(gamma)
        self.reduction = check_reduction(reduction, ("mean", "batch", "sum"))
        self.register_buffer("class_weights", as_weight_buffer(class_weights), persistent=False)

    def _focal_factor(self, log_q: torch.Tensor) -> torch.Tensor | float:
        # q^γ = exp(γ log q); γ = 0 skipped so that q = 0 (log q = -inf) cannot produce 0 * inf.
        return torch.exp(self.gamma * log_q) if self.gamma != 0 else 1.0

    def _loss(self, flat: Flat) -> torch.Tensor:
        w = self._class_weights(flat)
        if flat.multiclass:
            if self.gamma == 0:
                per_pos = F.cross_entropy(flat.x, flat.y, reduction="none")
            else:
                sm = softmax_parts(flat.x)  # exact log(1 - p_t), finite gradient at saturation
                logp_t = sm.logp.gather(-1, flat.y[:, None]).squeeze(-1)
                per_pos = -self._focal_factor(sm.log1m_at(flat.y, logp_t.exp())) * logp_t
            if w is not None:
                per_pos = per_pos * w[flat.y]
        else:
            y = flat.y
            logp, log1mp = F.logsigmoid(flat.x), F.logsigmoid(-flat.x)  # exact for any finite logit
            pos = -self._focal_factor(log1mp) * logp
            neg = -self._focal_factor(logp) * log1mp
            if w is not None:
                pos, neg = w[1] * pos, w[0] * neg
            per_pos = y * pos + (1 - y) * neg
        return reduce_positions(per_pos, self.reduction)

    def extra_repr(self) -> str:
        return f"gamma={self.gamma}, reduction={self.reduction!r}, class_weights={self.class_weights is not None}"
