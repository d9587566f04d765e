"""The binary dice family (DL, TL, DSC; both reductions; OHEM) as one autograd function.

One logit x_i per position, p = σ(x), targets y_i ∈ [0, 1] (soft labels allowed), score s = p (DL, TL)
or p̃ = (1 - p)^α p (DSC), keep k_i (OHEM; 1 otherwise), γ = smooth. Every loss's terms are

    n = a1 s y,    d = s^k (d1 + d2 y) + d3 y + d4 y^k
    DL/DSC: a1 = 2, d1 = 1, d2 = d3 = 0, d4 = 1  (n = 2sy, d = s^k + y^k; k = 2 squared, 1 linear)
    TL:     a1 = 1, k = 1, d1 = α, d2 = 1 - α - β, d3 = β, d4 = 0
            (d = sy + α s(1 - y) + β(1 - s)y, rearranged without 1 - s: exact near s = 1)

  * "batch" (Eq. 8):  L = 1 - A/B,  A = γ + Σ_i k_i n_i,  B = γ + Σ_i k_i d_i;
  * "mean" (Eqs. 7, 10, 12):  L = Σ_i k_i [1 - (n_i + γ)/(d_i + γ)] / max(Σ_i k_i, 1).

With γ = 0 a ratio with denominator 0 counts as 1 (zero gradient). The gradient is dL/dx = dL/ds · ds/dx
with ds/dx = s (q - α p), q = 1 - p = σ(-x) (from log s = log σ(x) + α log σ(-x)): finite for any
logit, where the official ``(1 - p) ** α`` gives NaN once p rounds to 1. Computed in the forward when
the input needs a gradient; the backward scales it. A function instead of autograd through ~20 small
ops: these inputs are small ([N] values), so the per-op overhead is most of the cost. On float32 CPU
tensors the whole forward (OHEM included) is one C call, ``dice_binary`` in ``_dice_kernels.c``, with the
same formulas; the PyTorch code below runs everywhere else.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F

from . import _cpu_kernels as _cpu
from ._common import first_order_backward, ratio_inv
from ._ohem import ohem_keep


@dataclass(frozen=True)
class BinarySpec:
    """Score exponent ``alpha`` (0: s = p), ``power`` k, the terms ``a1``, ``d1`` ... ``d4`` (module
    docstring), ``mean`` (reduction "mean", else "batch"), ``smooth`` γ, ``ohem_ratio`` (0 = off)."""

    alpha: float
    power: int
    a1: float
    d1: float
    d2: float
    d3: float
    d4: float
    mean: bool
    smooth: float
    ohem_ratio: float


class _BinaryDice(torch.autograd.Function):
    @staticmethod
    def forward(ctx, x: torch.Tensor, y: torch.Tensor, spec: BinarySpec):
        a, k, g = spec.alpha, spec.power, spec.smooth
        need_grad = ctx.needs_input_grad[0]
        if _cpu.usable(x) and x.shape[0] < 2**31:  # the whole loss as one C function (float32 CPU; same formulas)
            params = (a, spec.a1, spec.d1, spec.d2, spec.d3, spec.d4, g, spec.ohem_ratio)
            loss, gx = _cpu.dice_binary(x, y, params, k, spec.mean, need_grad)
            if need_grad:
                ctx.save_for_backward(gx)
            return loss
        if a == 0:
            s = p = torch.sigmoid(x)
        else:  # log p̃ = log σ(x) + α log σ(-x), exact for any finite logit; log σ(-x) = log σ(x) - x
            lp = F.logsigmoid(x)
            lq = lp - x
            s = torch.add(lp, lq, alpha=a).exp_()
            p, q = lp.exp_(), lq.exp_()
        sk = s if k == 1 else s * s
        # d = s^k dcoef + yterm  (DL/DSC: s^k + y^k; TL: s (d1 + d2 y) + d3 y)
        dcoef = spec.d1 if spec.d2 == 0 else torch.add(y * spec.d2, spec.d1)
        yk = y if k == 1 else y * y
        yterm = (yk if spec.d4 == 1 else yk * spec.d4) if spec.d3 == 0 else torch.add(y * spec.d3, yk, alpha=spec.d4)
        d = torch.add(yterm, sk, alpha=dcoef) if isinstance(dcoef, float) else torch.addcmul(yterm, sk, dcoef)
        n = s * y  # (times a1)
        keep = None
        if spec.ohem_ratio > 0:
            keep = ohem_keep(p[:, None], y[:, None], spec.ohem_ratio)[:, 0].to(x.dtype)
            n, d = n * keep, d * keep
        dprime = dcoef if k == 1 else s * (2 * dcoef)  # d'(s) = k s^{k-1} dcoef (a number or [N])
        if not spec.mean:
            A = n.sum().mul_(spec.a1).add_(g)
            r, inv_B = ratio_inv(A, d.sum().add_(g), g)
            loss = 1 - r
            if need_grad:  # dL/ds = -a1 y/B + A/B^2 d'(s)
                gs = torch.mul(y, inv_B * -spec.a1).add_(dprime * (A * inv_B * inv_B))
        else:
            r, inv = ratio_inv(n.mul(spec.a1).add_(g), d + g, g)
            if keep is None:  # Σ (1 - r) / N (0 when N = 0)
                w = 1.0 / max(x.shape[0], 1)
                loss = (x.shape[0] - r.sum()) * w
            else:
                w = keep.sum().clamp_(min=1).reciprocal_()
                loss = ((1 - r) * keep).sum() * w
            if need_grad:  # dl/ds = -(a1 y - r d'(s))/(d + γ)
                gs = torch.mul(r, dprime).sub_(y, alpha=spec.a1).mul_(inv).mul_(w)
        if need_grad:
            if keep is not None:
                gs = gs * keep
            # ds/dx = s (q - α p) (DL/TL: p (1 - p), as torch's sigmoid backward)
            dsdx = torch.addcmul(p, p, p, value=-1) if a == 0 else torch.add(q, p, alpha=-a).mul_(s)
            ctx.save_for_backward(gs.mul_(dsdx))
        return loss

    @staticmethod
    @first_order_backward
    def backward(ctx, grad_loss):
        (gx,) = ctx.saved_tensors
        return gx * grad_loss, None, None


@torch.compiler.disable  # (the hand-written backward is not traceable: eager, one graph break)
def binary_dice(x: torch.Tensor, y: torch.Tensor, spec: BinarySpec) -> torch.Tensor:
    """The loss (module docstring). ``x``: [N] logits of the kept positions (compute dtype); ``y``: [N] in [0, 1]."""
    return _BinaryDice.apply(x, y, spec)
