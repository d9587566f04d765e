"""The multi-class dice family (DL, TL, DSC; both reductions; OHEM) as one autograd function with the
backward written out: a few passes over the [N, C] softmax, no autograd graph of [N, C] temporaries,
and no unbounded intermediate where DSC's weight (1 - p)^α saturates.

Notation. x [N, C] logits of the kept rows, t [N] targets, p = softmax(x), y_ic = [t_i = c], score
s = p (DL, TL) or p̃ = (1 - p)^α p (DSC), κ_ic the OHEM keep mask (1 without OHEM), γ = smooth. Every
loss's numerator and denominator terms (n, d) per entry have the form

    y = 0:  n = 0,       d = c0 s^k        (DL/DSC: c0 = 1, k = 2 squared / 1 linear;  TL: c0 = α_TL, k = 1)
    y = 1:  n = a1 s,    d = b1 s^k + c1   (DL/DSC: a1 = 2, b1 = c1 = 1;  TL: a1 = 1, b1 = 1 - β, c1 = β)

(TL at y = 1: d = p + β(1 - p) = (1 - β)p + β.) y is one-hot, so a class sum over all entries is a
dense sum of the y = 0 term plus one correction per row at its target ([N] values, ``index_add``):

  * "batch" (Eq. 8):  L = mean_c [1 - A_c/B_c],  A_c = γ + Σ_i κ_ic n_ic,  B_c = γ + Σ_i κ_ic d_ic;
  * "mean" (Eqs. 7, 10, 12):  L = mean_c Σ_i κ_ic l_ic / max(Σ_i κ_ic, 1),  l = 1 - (n + γ)/(d + γ),
    whose y = 0 value is l0 = d0/(d0 + γ) (γ = 0: [d0 ≠ 0]).

Gradient. G = s ⊙ dL/ds. Off the target, G_ic = coef_c ψ_ic with ψ = κ s^k, coef = k c0 dL/dB_c (batch;
s (c0 s^k)' = k c0 s^k) or ψ = κ l0 (1 - l0), coef = k dL/dloss_c (mean; s l0'(s) = k l0 (1 - l0)); at
the target (and T below) G comes from the [N] values (computed in the forward, per unit of dL).
With d log p_c/dx_j = δ_cj - p_j:

  * s = p:  dL/dx_j = G_j - p_j Σ_c G_c   (the softmax backward).
  * s = p̃:  log p̃_c = log p_c + α log(1 - p_c) and d log(1 - p_c)/dx_j = -p_c (j = c), p_c p_j/(1 - p_c)
    (j ≠ c), so with K_c = G_c (1 - (1+α)p_c)/(1 - p_c):  dL/dx_j = K_j - p_j Σ_c K_c.
    K_c contains (1 - p_c)^{α-1}, unbounded as p_c → 1 (the official ``(1 - p) ** α`` gives NaN
    gradients there). At most one entry per row has p > 1/2; call it T (any column if none). Every other
    entry has 1 - p_c ≥ 1/2, exact in floating point. Splitting K_T off, with R = Σ_{c≠T} K_c and
    m = 1 - p_T = Σ_{j≠T} p_j (a row sum of positive terms: exact, no cancellation):
        dL/dx_j = K_j - p_j R - (p_j/m) E_T   (j ≠ T),     dL/dx_T = E_T - p_T R,
    with E_T = G_T (1 - (1+α) p_T), finite (G_T ∝ p̃_T = m^α p_T), and p_j/m ≤ 1 the softmax of the
    other classes. Nothing unbounded is formed. Rows whose m is below √tiny (every other class more
    than ~44 logits lower in fp32) take log m and p_j/m from a log-softmax of those rows.
    The dense p̃ is computed as h = (1 - p)^{kα-1} p^k (one log, one exp), p̃^k = h (1 - p), and the
    factor (1 - (1+α)p)/(1 - p) of K is folded into ψ = h (1 - (1+α) p) in the forward.

DSC's [N, C] passes (softmax, T and m, the per-row values, the dense terms, the gradient) run as one C kernel
on float32 CPU tensors where a C compiler is found (``_cpu_kernels.py``, ``_dice_kernels.c``); the PyTorch
code below computes the same and runs everywhere else. Double backward (``create_graph=True``) raises
(``first_order_backward``). Speed: docs/losses.md, "Speed".
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from . import _cpu_kernels as _cpu
from ._common import EXCLUDED, first_order_backward, graph_freed_after_backward, ratio_inv
from ._ohem import ohem_counts, ohem_keep_onehot


@dataclass(frozen=True)
class DiceSpec:
    """One multi-class dice loss (module docstring): score exponent ``alpha`` (0: s = p), ``power`` k,
    the y = 0 denominator weight ``c0``, the y = 1 terms ``a1``, ``b1``, ``c1``, ``mean`` (reduction
    "mean", else "batch"), ``smooth`` γ, ``ohem_ratio`` (0 = off; see ``_ohem.ohem_keep``)."""

    alpha: float
    power: int
    c0: float
    a1: float
    b1: float
    c1: float
    mean: bool
    smooth: float
    ohem_ratio: float


def _big_column(p: torch.Tensor, buf: torch.Tensor) -> torch.Tensor:
    """[N] long: the column with p > 1/2 (0 where no entry exceeds 1/2). round(p) is 1 exactly there (round
    half to even: 0.5 → 0); a matrix-vector product with the column indices reads it out (torch's CPU
    argmax over a short last dim is ~10x slower). Only one term is nonzero, so the sum is exact for any
    C < 2^24. A row with two entries rounded above 1/2 (a near-tie at 0.5) or with NaN gives a garbage
    index, clamped into range: any column is valid for such a row (every entry has 1 - p ≥ 1/2 - ulp).
    ``buf``: scratch of p's shape (overwritten)."""
    C = p.shape[-1]
    Tf = torch.round(p, out=buf) @ torch.arange(C, dtype=p.dtype, device=p.device)
    return torch.nan_to_num_(Tf, nan=0.0).clamp_(0, C - 1).long()


def _at(v: torch.Tensor, index: torch.Tensor) -> torch.Tensor:
    """v[index] for a [C] vector and an [N, K] index (``index_select`` is ~3x faster than ``v[index]`` on CPU)."""
    return v.index_select(0, index.reshape(-1)).view(index.shape)


def _l0(d0: torch.Tensor, smooth: float) -> torch.Tensor:
    """Loss at y = 0: 1 - γ/(d0 + γ) = d0/(d0 + γ); γ = 0: [d0 ≠ 0] (0/0 counts as ratio 1), zero gradient."""
    return d0 / (d0 + smooth) if smooth > 0 else (d0 != 0).to(d0.dtype)


def _dsc_dense_torch(p: torch.Tensor, t: torch.Tensor, keep: torch.Tensor | None, a: float, k: int, mean: bool,
                     g: float):
    """DSC's dense pieces (module docstring) in PyTorch; ``_cpu_kernels.dsc_forward`` computes the same in
    one pass over the rows. Zeroes the T entry of ``p`` in place (→ ``small``).

    With h = (1 - p)^{kα-1} p^k (0 at T), Φ = h (1 - p) = s^k (the y = 0 term) and ψ = h (1 - (1+α) p):
    "mean" turns Φ into l0 = Φ/(Φ + γ) and ψ into ψ γ/(Φ + γ)^2; both are then multiplied by κ (OHEM).
    Returns (small, psi, T, m = 1 - p_T, p_sel [N, 2] = p at t and T, colsum [C] = Σ_i Φ).
    """
    buf = torch.empty_like(p)  # the one scratch buffer: round(p), then h (fresh buffers cost page faults)
    T = _big_column(p, buf)
    p_sel = p.gather(1, torch.stack([t, T], 1))
    small = p.scatter_(1, T[:, None], 0.0)  # p with the T entry zeroed (in place)
    m = small.sum(-1)  # 1 - p_T, a sum of positive terms
    # h = (1 - p)^{kα-1} p^k: log(1 - p) is exact (1 - p >= 1/2 off T); 0 at T
    h = torch.sub(small.new_ones(()), small, out=buf).log_().mul_(k * a - 1).exp_().mul_(small)
    if k == 2:
        h.mul_(small)
    if mean:
        phi = torch.addcmul(h, h, small, value=-1)
    else:  # Σ Φ = (Σ ψ + α Σ h)/(1 + α): no buffer for Φ (no cancellation: Φ >= h/2)
        h_sum = (h if keep is None else keep * h).sum(0)
    psi = h.addcmul_(h, small, value=-(1 + a))  # in h's buffer
    if mean:  # l0 (1 - l0) (1 - (1+α)p)/(1 - p) = ψ γ/(Φ + γ)^2
        if g > 0:
            den = phi + g
            phi.div_(den)
            psi.div_(den.mul_(den)).mul_(g)
        else:
            phi = (phi != 0).to(p.dtype)
            psi.zero_()
    if keep is not None:
        psi.mul_(keep)
    if mean:
        colsum = (phi if keep is None else keep * phi).sum(0)
    else:
        colsum = psi.sum(0).add_(h_sum, alpha=a).div_(1 + a)
    return small, psi, T, m, p_sel, colsum


#: DSC's per-row values, the columns of one [N, 8] tensor (``_dice_kernels.c`` writes the same layout): p̃ at
#: t and T, [t = T], f_t, e_T, p_T, 1/m (0 where m underflows) and m = 1 - p_T (module docstring).
ROW_VALUES = ("s_t", "s_T", "is_T", "f_t", "e_T", "p_T", "inv_m", "m")


def _m_underflow(dtype: torch.dtype) -> float:
    """Below this m = 1 - p_T, log m and p_j/m come from a log-softmax (√tiny: 1.08e-19 in fp32)."""
    return torch.finfo(dtype).tiny ** 0.5


def _dsc_rows_torch(t: torch.Tensor, T: torch.Tensor, m: torch.Tensor, p_sel: torch.Tensor, a: float):
    """DSC's per-row values from the dense pieces: (sel [N, 2] = (t, T), values [N, 8] as in ``ROW_VALUES``),
    with m clamped at :func:`_m_underflow` (:func:`_fix_underflow` then redoes those rows)."""
    m_c = m.clamp(min=_m_underflow(m.dtype))
    is_T = t == T
    p_t, p_T = p_sel.unbind(1)
    q_t = 1 - p_t  # off T, 1 - p_t >= 1/2: exact
    # p̃ at t and T: p_t (1 - p_t)^α and p_T m^α
    s_T = m_c.log().mul_(a).exp_().mul_(p_T)
    s_t = torch.where(is_T, s_T, q_t.log().mul_(a).exp_().mul_(p_t))
    # at t ≠ T, K_t = G_t (1 - α p_t/(1 - p_t)); at t = T the target's G joins G_T (f_t = 0)
    f_t = torch.where(is_T, 0.0, torch.addcdiv(q_t.new_ones(()), p_t, q_t, value=-a))
    e_T = 1 - (1 + a) * p_T
    values = torch.stack([s_t, s_T, is_T.to(m.dtype), f_t, e_T, p_T, m_c.reciprocal(), m], 1)
    return torch.stack([t, T], 1), values


def _fix_underflow(x: torch.Tensor, sel: torch.Tensor, values: torch.Tensor, a: float):
    """The rows whose m = 1 - p_T is below :func:`_m_underflow` (every other class more than ~44 logits below T
    in fp32): log m from a log-softmax, p̃ redone from it, 1/m set to 0 and their p_j/m returned as ``rho``
    (0 at T). Updates ``values`` in place; returns (rows, rho), or (None, None) when there are none."""
    s_t, s_T, is_T, _, _, p_T, inv_m, m = values.unbind(1)
    under = m < _m_underflow(m.dtype)
    if not bool(under.any()):
        return None, None
    rows = under.nonzero().squeeze(1)
    lp = x[rows].log_softmax(-1)
    col_T = sel[rows, 1:]
    log_m = lp.scatter(1, col_T, EXCLUDED).logsumexp(-1)
    rho = torch.exp(lp.scatter(1, col_T, float("-inf")) - log_m[:, None])  # p_j/m, 0 at T
    s_T[rows] = torch.exp(a * log_m) * p_T[rows]
    s_t[rows] = torch.where(is_T[rows] > 0, s_T[rows], s_t[rows])
    inv_m[rows] = 0.0  # (their p_j/m term comes from rho)
    return rows, rho


class _MulticlassDice(torch.autograd.Function):
    """forward(x, t, spec) -> scalar loss; the backward in closed form (module docstring)."""

    @staticmethod
    def forward(ctx, x: torch.Tensor, t: torch.Tensor, spec: DiceSpec):
        N, C = x.shape
        a, k, g = spec.alpha, spec.power, spec.smooth
        K = 1 if a == 0 else 2  # selected columns per row: t (and T)
        # DSC's dense part as one C kernel (float32 CPU; not the rare mean with γ = 0 and its [Φ ≠ 0] indicator)
        fused = a != 0 and (g > 0 or not spec.mean) and _cpu.usable(x)
        p = None if fused else torch.softmax(x, -1)
        keep = k_sel = counts = ohem_k = None  # OHEM: κ [N, C] (PyTorch), κ at (t, T), rows counted per class
        if spec.ohem_ratio > 0:
            n_pos, ohem_k = ohem_counts(t, C, spec.ohem_ratio)
            counts = (n_pos + ohem_k).to(x.dtype)
            if not fused:
                keep = ohem_keep_onehot(p, t, spec.ohem_ratio)

        # ---- dense: ψ (G = coef ψ off the selected entries) and colsum = Σ_i k_ic Φ_ic (Φ: the y = 0 term)
        if a == 0:  # s = p
            small, sel = p, t[:, None]
            s_sel = p.gather(1, sel)
            dsc = ()
            base = p if k == 1 else p * p  # s^k
            if spec.mean:
                phi = _l0(base * spec.c0 if spec.c0 != 1 else base, g)
                psi = torch.addcmul(phi, phi, phi, value=-1)  # l0 (1 - l0)
            else:
                phi = psi = base
            if keep is not None:
                phi, psi = keep * phi, keep * psi
            colsum = phi.sum(0)
        else:  # s = p̃: Φ = s^k = h (1 - p), ψ = s^k (1 - (1+α)p)/(1 - p) = h (1 - (1+α)p)
            if fused:  # (OHEM's selection included)
                small, psi, sel, values, colsum, k_sel = _cpu.dsc_forward(x, t, ohem_k, a, k, spec.mean, g)
            else:
                small, psi, T, m, p_sel, colsum = _dsc_dense_torch(p, t, keep, a, k, spec.mean, g)
                sel, values = _dsc_rows_torch(t, T, m, p_sel, a)
            under = _fix_underflow(x, sel, values, a)
            s_sel, dsc = values[:, :2], (values, *under)
        if keep is not None:
            k_sel = keep.gather(1, sel)

        # ---- [N]: the selected entries' own terms, the class sums, the loss; G_sel per unit of dL
        s_t = s_sel[:, 0]
        sk = s_sel if k == 1 else s_sel * s_sel  # s^k at t (and T)
        zeros = x.new_zeros(C)
        if not spec.mean:
            # the dense sum counted c0 s^k at t (now b1 s^k + c1) and 0 at T (now c0 s^k)
            vB = torch.addcmul(x.new_tensor([spec.c1, 0.0][:K]), sk, x.new_tensor([spec.b1 - spec.c0, spec.c0][:K]))
            vA = s_t if k_sel is None else s_t * k_sel[:, 0]
            if k_sel is not None:
                vB = vB * k_sel
            A = zeros.index_add(0, t, vA, alpha=spec.a1).add_(g)
            B = zeros.index_add(0, sel.reshape(-1), vB.reshape(-1)).add_(colsum, alpha=spec.c0).add_(g)
            r, inv_B = ratio_inv(A, B, g)
            loss = (1 - r).mean()
            # dL/dA_c = -1/(C B_c), dL/dB_c = A_c/(C B_c^2);  s dL/ds at t: a1 s dL/dA + k (b1 - c0) s^k dL/dB,
            # at T: k c0 s^k dL/dB;  coef = k c0 dL/dB
            dB = (A * inv_B).mul_(inv_B).div_(C)
            G_sel = sk * _at(dB, sel) * sk.new_tensor([k * (spec.b1 - spec.c0), k * spec.c0][:K])
            G_sel[:, 0].addcmul_(s_t, inv_B.index_select(0, t), value=-spec.a1 / C)
            coef = dB.mul_(k * spec.c0)
        else:
            d0 = sk * spec.c0 if spec.c0 != 1 else sk
            l0 = _l0(d0, g)
            r1, inv_d1 = ratio_inv(spec.a1 * s_t + g, spec.b1 * sk[:, 0] + (spec.c1 + g), g)
            # the dense sum counted l0 at t (now l1 = 1 - r1) and 0 at T (now l0)
            sign = l0.new_tensor([-1.0, 1.0][:K])
            vL = l0 * sign
            vL[:, 0] += 1 - r1
            if k_sel is None:  # every class counts N positions: dL/d(loss sum of class c) = 1/(C N), a number
                w = w_sel = w_t = 1.0 / (C * max(N, 1))
                loss = (vL.sum() + colsum.sum()) * w
                coef = x.new_full((C,), k * w)
            else:
                vL = vL * k_sel
                w = (C * counts.clamp(min=1)).reciprocal_()  # dL/d(loss sum of class c)
                w_sel, w_t = _at(w, sel), w.index_select(0, t)
                loss = zeros.index_add(0, sel.reshape(-1), vL.reshape(-1)).add_(colsum).mul_(w).sum()
                coef = w * k
            # s l0'(s) = k l0 (1 - l0) (d0 = 0 or γ = 0: 0);  s l1'(s) = -(a1 s - r1 k b1 s^k)/(d1 + γ)
            G_sel = (k * l0 * (1 - l0)) * (sign * w_sel)
            G_sel[:, 0] -= (spec.a1 * s_t - (k * spec.b1) * r1 * sk[:, 0]) * inv_d1 * w_t
        if k_sel is not None:
            G_sel.mul_(k_sel)
        ctx.save_for_backward(small, psi, sel, G_sel, coef, *dsc)
        ctx.alpha, ctx.fused = a, fused
        return loss

    @staticmethod
    @first_order_backward
    def backward(ctx, grad_loss):
        small, psi, sel, G_sel, coef, *dsc = ctx.saved_tensors
        a = ctx.alpha
        G_sel, coef = G_sel * grad_loss, coef * grad_loss
        # build the gradient in psi's buffer when nothing can read psi again (no retain_graph) and psi
        # is its own buffer: one fresh [N, C] buffer less (on CPU, page faults cost about one pass)
        reuse = graph_freed_after_backward() and psi.data_ptr() != small.data_ptr()
        if a == 0:  # softmax backward: G - p Σ_c G_c
            row = psi @ coef  # Σ_c G_c over the dense part
            grad = psi.mul_(coef) if reuse else psi * coef
            grad.addcmul_(small, (row + G_sel[:, 0])[:, None], value=-1)
            return grad.scatter_add_(1, sel, G_sel), None, None
        values, rows, rho = dsc
        if ctx.fused:
            grad = _cpu.dsc_backward(small, psi, coef, sel, values, G_sel)
        else:
            _, _, is_T, f_t, e_T, p_T, inv_m, _ = values.unbind(1)
            K_t = G_sel[:, 0] * f_t  # (0 at t = T)
            E_T = torch.addcmul(G_sel[:, 1], is_T, G_sel[:, 0]).mul_(e_T)  # the target's G joins G_T at t = T
            R = psi @ coef + K_t  # Σ_{c≠T} K_c
            grad = psi.mul_(coef) if reuse else psi * coef
            grad.addcmul_(small, torch.addcmul(R, E_T, inv_m)[:, None], value=-1)  # K_j - p_j (R + E_T/m); 0 at T
            grad.scatter_add_(1, sel, torch.stack([K_t, torch.addcmul(E_T, p_T, R, value=-1)], 1))  # T: E_T - p_T R
        if rows is not None:  # - (p_j/m) E_T for the rows whose m underflows
            _, _, is_T, _, e_T, _, _, _ = values[rows].unbind(1)
            E_T = torch.addcmul(G_sel[rows, 1], is_T, G_sel[rows, 0]).mul_(e_T)
            grad.index_add_(0, rows, -rho * E_T[:, None])
        return grad, None, None


@torch.compiler.disable  # (the C kernel and the hand-written backward are not traceable: eager, one graph break)
def multiclass_dice(x: torch.Tensor, t: torch.Tensor, spec: DiceSpec) -> torch.Tensor:
    """The loss (module docstring). ``x``: [N, C] logits of the kept rows (compute dtype); ``t``: [N] ids."""
    return _MulticlassDice.apply(x, t, spec)
