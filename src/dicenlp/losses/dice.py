"""The dice family: dice loss (DL, PAPER.md Eqs. 6-8), Tversky loss (TL, Eqs. 9-10), self-adjusting dice (DSC, Eq. 12).

Units: binary, one unit, p_i = σ(x_i), y_i ∈ [0, 1]; multi-class, one unit per class c (one-vs-rest),
p_ic = softmax(x_i)_c, y_ic = [y_i = c]. Each loss gives a numerator and a denominator term per position and
unit, n(s, y) and d(s, y), of the score s (p; DSC: p̃). With k_iu = 1 for a kept entry (0: ignored or dropped by
OHEM) and γ = ``smooth``, the reductions are, per unit u,

    "batch", set level (Eq. 8; the official code):   L_u = 1 - (Σ_i k n + γ) / (Σ_i k d + γ)
    "mean", per example (Eqs. 7, 10, 12):            L_u = Σ_i k [1 - (n + γ) / (d + γ)] / Σ_i k

and the loss is mean_u L_u (classes averaged; the official multi-class code sums them). With γ = 0, a ratio
whose denominator is 0 (nothing predicted, nothing gold) is 1: the dice of two empty sets, loss 0.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F

from .base import Flat, Loss, check_reduction, drop_class


def ohem_keep(score: torch.Tensor, y: torch.Tensor, ratio: float, valid: torch.Tensor | None = None) -> torch.Tensor:
    """Online hard example mining per unit u: every positive (y > 0.5) and the k_u hardest negatives.

    k_u = min(#negatives_u, ⌊ratio · #positives_u⌋); hardest = highest p_iu (ties: ``topk``'s choice). They are
    among the unit's top max_u k_u: eager code reads that number (one host sync), compiled code (static shapes)
    ranks every row. Args: score [N, U], p or log p; y [N, U]; valid: [N] bool, the rows that count. Returns a
    bool keep mask [N, U].
    """
    pos = y if y.dtype == torch.bool else y > 0.5
    if valid is not None:
        pos = pos & valid[:, None]
    n_pos = pos.sum(0)
    n_neg = (len(y) if valid is None else valid.sum()) - n_pos
    # +1e-9: ⌊0.29 · 100⌋ must be 29, not 28 (0.29 * 100 = 28.999999999999996 in binary floating point)
    k = torch.minimum(n_neg, torch.floor(n_pos.double() * ratio + 1e-9).long())
    k_max = score.shape[0] if torch.compiler.is_compiling() else int(k.max())
    ranked = score.detach().clamp(min=torch.finfo(score.dtype).min).masked_fill_(pos, -math.inf)  # negatives > -inf
    if valid is not None:
        ranked.masked_fill_(~valid[:, None], -math.inf)
    hardest = ranked.topk(k_max, dim=0).indices  # [k_max, U], hardest first
    take = torch.arange(k_max, device=score.device)[:, None] < k  # the first k_u of unit u
    return pos | torch.zeros_like(pos).scatter_(0, hardest, take)


def ratio(num: torch.Tensor, den: torch.Tensor, smooth: float) -> torch.Tensor:
    """num / den, den including γ; with γ = 0 a zero denominator gives 1 (module docstring), with zero gradient."""
    if smooth > 0:
        return num / den
    empty = den == 0
    return torch.where(empty, 1.0, num / torch.where(empty, 1.0, den))


class _DiceFamily(Loss):
    """The shared core (module docstring): a subclass gives ``terms(s, y) -> (n, d)`` and a negative entry's
    denominator d(s, 0) = c s^k as ``negative = (log c, k)``, and may change ``log_scores``. ``smooth`` γ (1, as in
    the paper), ``reduction`` "batch" | "mean", ``ohem_ratio`` (0: off; :func:`ohem_keep`). A binary decision is
    one logit and a sigmoid (as the official code does for MRPC and MRC start/end). Multi-class targets are
    one-hot, never formed: every entry is summed as a negative (n = 0) from log s, then each row's target class
    gets f(s, 1) instead of f(s, 0), an [N] correction (docs/losses.md).
    """

    binary_head = "sigmoid"

    def __init__(self, smooth: float = 1.0, reduction: str = "batch", ohem_ratio: float = 0.0) -> None:
        super().__init__()
        if smooth < 0 or ohem_ratio < 0:
            raise ValueError(f"smooth and ohem_ratio must be >= 0 (ohem_ratio 0 = off), got {smooth}, {ohem_ratio}")
        self.smooth, self.ohem_ratio = float(smooth), float(ohem_ratio)
        self.reduction = check_reduction(reduction, ("batch", "mean"))

    def log_scores(self, flat: Flat):
        """(log p [N, U], log s [N, U], log s at the target [N, 1] (multi-class)): here s = p."""
        if not flat.multiclass:
            log_p = F.logsigmoid(flat.x)[:, None]
            return log_p, log_p, None
        log_p = torch.log_softmax(flat.x, -1)
        return log_p, log_p, log_p.gather(1, flat.y[:, None])

    def loss(self, flat: Flat) -> torch.Tensor:
        log_p, log_s, log_s_t = self.log_scores(flat)
        valid, t = flat.valid[:, None], flat.y[:, None]
        kept = None  # OHEM's keep mask [N, U]; None: every valid position
        if self.ohem_ratio > 0:
            pos = torch.zeros_like(log_p, dtype=torch.bool).scatter_(1, t, True) if flat.multiclass else t
            kept = ohem_keep(log_p, pos, self.ohem_ratio, flat.valid > 0)
        g, per_example = self.smooth, self.reduction == "mean"

        def f(s, y):  # the summed terms of one entry: [n, d], or per example [1 - (n + γ) / (d + γ)]
            n, d = self.terms(s, y)
            return [1 - ratio(n + g, d + g, g)] if per_example else [n, d]

        if not flat.multiclass:
            keep = valid if kept is None else kept.to(valid)
            sums = [(keep * v).sum(0) for v in f(log_s.exp(), t)]
        else:
            log_c, k = self.negative

            def negative(log_s, log_k, inplace=False):  # the last of f(s, 0) (n(s, 0) = 0), weight k, from log s
                if inplace:  # (DSC's log p̃ is ours to overwrite; log p is saved by log_softmax)
                    log_d = (log_s.mul_(k) if k != 1 else log_s).add_(log_k)
                else:
                    log_d = torch.add(log_k, log_s, alpha=k)
                log_d = log_d.add_(log_c) if log_c else log_d  # log k + log d(s, 0)
                if not per_example:
                    return log_d.exp_()
                if g == 0:
                    return (log_d > -math.inf).to(log_d)  # 1 - 0/d: 1, or 0 where d = 0 (see ratio)
                return (log_d.sub_(math.log(g)) if g != 1 else log_d).sigmoid_()  # 1 - γ/(d + γ)

            log_valid = valid.log()  # log k: 0 kept, -inf dropped
            log_k = log_valid if kept is None else torch.full_like(log_p, -math.inf).masked_fill_(kept, 0.0)
            sums = [negative(log_s, log_k, inplace=log_s is not log_p).sum(0)]
            sums = sums if per_example else [torch.zeros_like(sums[0]), *sums]
            fix = [valid * v for v in f(log_s_t.exp(), 1.0)]  # at the target: f(s_t, 1) instead of f(s_t, 0)
            fix[-1] = fix[-1] - negative(log_s_t, log_valid)
            sums = [s.index_add(0, t[:, 0], v[:, 0]) for s, v in zip(sums, fix)]
        if not per_example:  # Eq. 8: one ratio per unit over the set
            n, d = sums
            return (1 - ratio(n + g, d + g, g)).mean()
        return (sums[0] / (valid.sum() if kept is None else kept.sum(0)).clamp(min=1)).mean()  # Eqs. 7, 10, 12


class DiceLoss(_DiceFamily):
    """Dice loss (PAPER.md Eqs. 6-8): n = 2 p y, d = p^k + y^k;

        batch (Eq. 8): 1 - (2 Σ_i p_i y_i + γ) / (Σ_i p_i^k + Σ_i y_i^k + γ)
        mean  (Eq. 7): 1/N Σ_i [1 - (2 p_i y_i + γ) / (p_i^k + y_i^k + γ)]

    k = 2 with ``square_denominator`` (Milletari's form, Eqs. 7, 8; the default, as every official dice script
    passes ``--dice_square``), else k = 1 (Eq. 6). Other arguments: :class:`_DiceFamily`.
    """

    def __init__(self, smooth: float = 1.0, square_denominator: bool = True, reduction: str = "batch",
                 ohem_ratio: float = 0.0) -> None:
        super().__init__(smooth=smooth, reduction=reduction, ohem_ratio=ohem_ratio)
        self.square_denominator = bool(square_denominator)

    negative = property(lambda self: (0.0, 2 if self.square_denominator else 1))  # d(p, 0) = p^k

    def terms(self, s, y):
        return 2 * y * s, (s * s + y * y if self.square_denominator else s + y)


class SelfAdjustingDiceLoss(DiceLoss):
    """Self-adjusting dice loss, DSC (PAPER.md Eq. 12 with the official code's exponent α): dice with p replaced
    by p̃ = (1 - p)^α · p, i.e. n = 2 p̃ y, d = p̃^k + y^k;

        mean, k = 1, α = 1 (Eq. 12 as printed): 1/N Σ_i [1 - (2(1-p_i)p_i y_i + γ) / ((1-p_i)p_i + y_i + γ)]
        batch, k = 2, α = 0.01 (official scripts):  1 - (2 Σ p̃ y + γ) / (Σ p̃² + Σ y² + γ)

    log p̃ = log p + α log(1 - p) with both logs from the logits: binary, logsigmoid(±x); multi-class,
    log_softmax and log(1 - p), exact where p ≤ 1/2 (every class but a row's top one m), and for m the logsumexp
    of the others' log p (``drop_class``). So p̃ and its gradient are exact where p rounds to 1, where the
    official ``(1 - p) ** α`` has a NaN gradient (unbounded for α < 1). α = 0 is :class:`DiceLoss`.
    Defaults: the official recipe (set level, squared, α = 0.01, γ = 1); per example, α = 1 makes a positive's
    loss symmetric about p = 0.5 and a confident false positive free (docs/losses.md).
    """

    def __init__(self, alpha: float = 0.01, smooth: float = 1.0, square_denominator: bool = True,
                 reduction: str = "batch", ohem_ratio: float = 0.0) -> None:
        super().__init__(smooth=smooth, square_denominator=square_denominator, reduction=reduction,
                         ohem_ratio=ohem_ratio)
        if alpha < 0:
            raise ValueError(f"alpha must be >= 0, got {alpha}")
        self.alpha = float(alpha)

    def log_scores(self, flat):
        """log p̃ = log p + α log(1 - p) (class docstring)."""
        a = self.alpha
        if not flat.multiclass:
            log_p = F.logsigmoid(flat.x)[:, None]
            return log_p, log_p + a * F.logsigmoid(-flat.x)[:, None], None
        log_p = torch.log_softmax(flat.x, -1)
        m, t = log_p.detach().max(-1, keepdim=True).indices, flat.y[:, None]
        others, e, shift, log_1mp_m = drop_class(log_p, m)  # log p_j (j ≠ m: p_j ≤ 1/2), p_j / e^shift, ...
        log_1mp = e.mul(-shift.exp()).add_(1).log()  # log(1 - p_j), 0 at m
        log_p_m, log_p_t = log_p.gather(1, torch.cat([m, t], 1)).split(1, 1)
        top = log_p_m + a * log_1mp_m
        is_m = m == t  # (a safe input where the other branch is taken)
        log_s_t = torch.where(is_m, top, log_p_t + a * torch.log1p(-torch.where(is_m, -math.inf, log_p_t).exp()))
        return log_p, log_1mp.mul_(a).add_(others).scatter_(1, m, top), log_s_t


class TverskyLoss(_DiceFamily):
    """Tversky loss (PAPER.md Eqs. 9-10): n = p y, d = p y + α p (1 - y) + β (1 - p) y;

        batch: 1 - (Σ p y + γ) / (Σ p y + α Σ p (1-y) + β Σ (1-p) y + γ)
        mean (Eq. 10): 1/N Σ_i [1 - (p_i y_i + γ) / (p_i y_i + α p_i (1-y_i) + β (1-p_i) y_i + γ)]

    α weighs false positives, β false negatives; ``beta=None`` means β = 1 - α (the paper's Table 10 sweeps α
    so). α = β = 0.5 is the linear dice (Eq. 6) with γ doubled: (2py + 2γ)/(p + y + 2γ).
    """

    def __init__(self, alpha: float = 0.5, beta: float | None = 0.5, smooth: float = 1.0, reduction: str = "batch",
                 ohem_ratio: float = 0.0) -> None:
        super().__init__(smooth=smooth, reduction=reduction, ohem_ratio=ohem_ratio)
        beta = 1.0 - alpha if beta is None else beta
        if alpha < 0 or beta < 0:
            raise ValueError(f"alpha and beta must be >= 0, got {alpha}, {beta}")
        self.alpha, self.beta = float(alpha), float(beta)

    negative = property(lambda self: (math.log(self.alpha) if self.alpha > 0 else -math.inf, 1))  # d(p, 0) = α p

    def terms(self, p, y):
        return y * p, y * p + self.alpha * (1 - y) * p + self.beta * y * (1 - p)
