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


class _BinaryFocal(torch.autograd.Function):
    """Σ_i -[y_i q_i^γ log p_i + (1 - y_i) p_i^γ log q_i] · c_i, p = σ(x), q = 1 - p = σ(-x), c_i the class
    weight times the reduction's scale, with the gradient in closed form (from d log p/dx = q and
    d log q/dx = -p):

        dL_i/dx_i = -c_i [y_i q^γ (q - γ p log p) + (1 - y_i) p^γ (γ q log q - p)],

    computed in the forward (these inputs are [N] values: one function instead of autograd through ~15
    small ops, whose per-op overhead is most of the cost). log p and log q come from logsigmoid: exact for
    any finite logit."""

    @staticmethod
    def forward(ctx, x: torch.Tensor, y: torch.Tensor, gamma: float, c1, c0):
        lp, lq = F.logsigmoid(x), F.logsigmoid(-x)
        p, q = lp.exp(), lq.exp()
        pg, qg = (lp * gamma).exp_(), (lq * gamma).exp_()
        loss = -torch.lerp(pg * lq * c0, qg * lp * c1, y).sum()  # y · (pos term) + (1 - y) · (neg term)
        if ctx.needs_input_grad[0]:
            g1 = torch.addcmul(q, p, lp, value=-gamma).mul_(qg).mul_(c1)  # q^γ (q - γ p log p)
            g0 = torch.mul(q, lq).mul_(gamma).sub_(p).mul_(pg).mul_(c0)  # p^γ (γ q log q - p)
            ctx.save_for_backward(torch.lerp(g0, g1, y).neg_())
        return loss

    @staticmethod
    @first_order_backward
    def backward(ctx, grad_loss):
        (gx,) = ctx.saved_tensors
        return gx * grad_loss, None, None, None, None


@torch.compiler.disable  # (the hand-written backward is not traceable: eager, one graph break)
def _focal(function, *args) -> torch.Tensor:
    return function.apply(*args)


class FocalLoss(PositionwiseLoss):
    """FL = -1/N Σ_i α_i Σ_j y_ij (1 - p_ij)^γ log p_ij   (PAPER.md Table 2; γ = 0 gives CE, Eq. 1).

    * binary: -α_i [y (1 - p)^γ log p + (1 - y) p^γ log(1 - p)], p = σ(x) (the sigmoid focal loss of
      torchvision with ``alpha=-1``, and the official code's binary focal up to its +1e-4 inside the log).
    * multi-class: -α_{y_i} (1 - p_{i,y_i})^γ log p_{i,y_i}, p = softmax(x).
    (1 - p)^γ comes from an exact 1 - p (binary: exp(γ logsigmoid(-x)), :class:`_BinaryFocal`; multi-class:
    the row sum of the other classes, :class:`_MulticlassFocal`), and both have their backward in closed form,
    so γ < 1 stays finite at p → 1.

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

    def _loss(self, flat: Flat) -> torch.Tensor:
        w = self._class_weights(flat)
        if flat.multiclass and self.gamma == 0:  # cross-entropy
            per_pos = F.cross_entropy(flat.x, flat.y, reduction="none")
            return reduce_positions(per_pos if w is None else per_pos * w[flat.y], self.reduction)
        # one function each, with the backward in closed form, exact where the focal factor saturates
        scale = 1.0 if self.reduction == "sum" else 1.0 / max(flat.x.shape[0], 1)
        if flat.multiclass:
            return _focal(_MulticlassFocal, flat.x, flat.y, self.gamma, None if w is None else w[flat.y], scale)
        c1, c0 = (scale, scale) if w is None else (w[1] * scale, w[0] * scale)
        return _focal(_BinaryFocal, flat.x, flat.y, self.gamma, c1, c0)

    def extra_repr(self) -> str:
        return f"gamma={self.gamma}, reduction={self.reduction!r}, class_weights={self.class_weights is not None}"
