"""Focal loss (PAPER.md Table 2, FL row; Lin et al. 2017)."""

from __future__ import annotations

import torch
import torch.nn.functional as F

from ._common import Flat, PositionwiseLoss, as_weight_buffer, check_reduction, first_order_backward, \
    graph_freed_after_backward, reduce_positions


class _MulticlassFocal(torch.autograd.Function):
    """Σ_i -w_i (1 - p_it)^γ log p_it · scale, p = softmax(x), t the targets, γ > 0, with the backward in
    closed form: per row a CE-like gradient scaled by a scalar,

        dL_i/dx_j = w_i H_i (p_j - [j = t]),   H = m^γ - γ m^{γ-1} p_t log p_t = m^γ (1 - γ p_t (log p_t)/m),

    where m = 1 - p_t = Σ_{j≠t} p_j (a row sum of positive terms: exact, no cancellation). (log p_t)/m
    is finite (-1 as m → 0; log p_t = log1p(-m) where p_t > 1/2), so nothing unbounded is formed where
    (1 - p)^γ saturates. Cost: one log-softmax, an in-place exp and a row sum forward; one pass backward.
    """

    @staticmethod
    def forward(ctx, x: torch.Tensor, t: torch.Tensor, gamma: float, w_t: torch.Tensor | None, scale: float):
        col = t[:, None]
        lp = torch.log_softmax(x, -1)
        lp_t = lp.gather(1, col).squeeze(1)
        small = lp.exp_().scatter_(1, col, 0.0)  # p with the target entry zeroed (in lp's buffer)
        m = small.sum(-1)  # 1 - p_t
        p_t = lp_t.exp()
        log_pt = torch.where(p_t > 0.5, torch.log1p(-m), lp_t)  # exact near p_t = 1 too
        mg = m.pow(gamma)
        ratio = torch.where(m > 0, log_pt / m, -1.0)  # log(p_t)/m → -1 as m → 0
        H = mg * (1 - gamma * p_t * ratio) * scale  # dL/dx = H (p - onehot)
        per_pos = -mg * log_pt
        if w_t is not None:
            per_pos, H = per_pos * w_t, H * w_t
        ctx.save_for_backward(small, H, m, col)
        return per_pos.sum() * scale

    @staticmethod
    @first_order_backward
    def backward(ctx, grad_loss):
        small, H, m, col = ctx.saved_tensors
        c = H * grad_loss
        grad = small.mul_(c[:, None]) if graph_freed_after_backward() else small * c[:, None]
        return grad.scatter_(1, col, (-c * m)[:, None]), None, None, None, None


class FocalLoss(PositionwiseLoss):
    """FL = -1/N Σ_i α_i Σ_j y_ij (1 - p_ij)^γ log p_ij   (PAPER.md Table 2; γ = 0 gives CE, Eq. 1).

    * binary: -α_i [y (1 - p)^γ log p + (1 - y) p^γ log(1 - p)], p = σ(x) (the sigmoid focal loss of
      torchvision with ``alpha=-1``, and the official code's binary focal up to its +1e-4 inside the log).
    * multi-class: -α_{y_i} (1 - p_{i,y_i})^γ log p_{i,y_i}, p = softmax(x).
    (1 - p)^γ comes from an exact 1 - p (binary: exp(γ logsigmoid(-x)); multi-class: the row sum of the
    other classes, with the backward in closed form, :class:`_MulticlassFocal`), so γ < 1 stays finite at p → 1.

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
                if w is not None:
                    per_pos = per_pos * w[flat.y]
            else:  # one fused function, exact where (1 - p_t)^γ saturates
                scale = 1.0 if self.reduction == "sum" else 1.0 / max(flat.x.shape[0], 1)
                return _MulticlassFocal.apply(flat.x, flat.y, self.gamma, None if w is None else w[flat.y], scale)
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
