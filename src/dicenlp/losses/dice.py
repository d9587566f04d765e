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

import torch
import torch.nn.functional as F

from .base import LOG_ZERO, Flat, Loss, check_reduction, logsumexp


def ohem_keep(p: torch.Tensor, y: torch.Tensor, ratio: float, valid: torch.Tensor | None = None) -> torch.Tensor:
    """Online hard example mining per unit u: every positive (y > 0.5) and the k_u hardest negatives.

    k_u = min(#negatives_u, ⌊ratio · #positives_u⌋); hardest = highest p_iu (ties: ``topk``'s choice). They are
    among the unit's top max_u k_u: eager code reads that number (one host sync), compiled code (static shapes)
    ranks every row. Args: p, y [N, U]; valid: [N] bool, the rows that count. Returns a bool keep mask [N, U].
    """
    pos, neg = y > 0.5, y <= 0.5
    if valid is not None:
        pos, neg = pos & valid[:, None], neg & valid[:, None]
    # +1e-9: ⌊0.29 · 100⌋ must be 29, not 28 (0.29 * 100 = 28.999999999999996 in binary floating point)
    k = torch.minimum(neg.sum(0), torch.floor(pos.sum(0).double() * ratio + 1e-9).long())
    k_max = p.shape[0] if torch.compiler.is_compiling() else int(k.max())
    hardest = torch.where(neg, p.detach(), -1.0).topk(k_max, dim=0).indices  # [k_max, U], hardest first
    take = torch.arange(k_max, device=p.device)[:, None] < k  # the first k_u of unit u
    return pos | torch.zeros_like(pos).scatter_(0, hardest, take)


def ratio(num: torch.Tensor, den: torch.Tensor, smooth: float) -> torch.Tensor:
    """num / den, den including γ; with γ = 0 a zero denominator gives 1 (module docstring), with zero gradient."""
    if smooth > 0:
        return num / den
    empty = den == 0
    return torch.where(empty, 1.0, num / torch.where(empty, 1.0, den))


def unit_sums(f, s: torch.Tensor, flat: Flat, keep: torch.Tensor) -> list[torch.Tensor]:
    """Σ_i k_iu v_iu per unit u ([U]) for each tensor v of ``f(s, y)``; s, keep: [N, U]. A dropped entry gets
    s = y = 0, where every dice term is 0, so it adds nothing. Multi-class targets are one-hot and y is never
    formed: f(s, 0) summed over every entry, plus f(s, 1) - f(s, 0) at each row's target (an [N] correction)."""
    s = s * keep
    if not flat.multiclass:
        return [v.sum(0) for v in f(s, flat.y[:, None] * keep)]
    t = flat.y[:, None]
    s_t, keep_t = s.gather(1, t), keep.gather(1, t)
    at_target = zip(f(s_t, 1.0), f(s_t, 0.0))
    return [v.sum(0).index_add(0, flat.y, (keep_t * (v1 - v0)).squeeze(1)) for v, (v1, v0) in zip(f(s, 0.0), at_target)]


class _DiceFamily(Loss):
    """The shared core (module docstring); a subclass gives ``terms(s, y) -> (n, d)`` and may change ``score``.
    ``smooth`` γ (1, as in the paper), ``reduction`` "batch" | "mean", ``ohem_ratio`` (0: off; :func:`ohem_keep`).
    A binary decision is one logit and a sigmoid (as the official code does for MRPC and MRC start/end)."""

    binary_head = "sigmoid"

    def __init__(self, smooth: float = 1.0, reduction: str = "batch", ohem_ratio: float = 0.0) -> None:
        super().__init__()
        if smooth < 0 or ohem_ratio < 0:
            raise ValueError(f"smooth and ohem_ratio must be >= 0 (ohem_ratio 0 = off), got {smooth}, {ohem_ratio}")
        self.smooth, self.ohem_ratio = float(smooth), float(ohem_ratio)
        self.reduction = check_reduction(reduction, ("batch", "mean"))

    def score(self, flat: Flat) -> tuple[torch.Tensor, torch.Tensor]:
        """(p, s) [N, U]: the probability and the score the formula uses (here s = p)."""
        p = torch.softmax(flat.x, -1) if flat.multiclass else torch.sigmoid(flat.x)[:, None]
        return p, p

    def loss(self, flat: Flat) -> torch.Tensor:
        p, s = self.score(flat)
        keep = flat.valid[:, None].expand_as(s)
        if self.ohem_ratio > 0:
            y = F.one_hot(flat.y, s.shape[-1]) if flat.multiclass else flat.y[:, None]
            keep = ohem_keep(p, y, self.ohem_ratio, flat.valid > 0).to(s)
        g = self.smooth
        if self.reduction == "batch":  # Eq. 8: one ratio per unit over the set
            n, d = unit_sums(self.terms, s, flat, keep)
            return (1 - ratio(n + g, d + g, g)).mean()

        def per_example(s, y):  # Eqs. 7, 10, 12: the mean of the per-example losses
            n, d = self.terms(s, y)
            return [1 - ratio(n + g, d + g, g)]

        return (unit_sums(per_example, s, flat, keep)[0] / keep.sum(0).clamp(min=1)).mean()


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

    def terms(self, s, y):
        return 2 * y * s, (s * s + y * y if self.square_denominator else s + y)


class SelfAdjustingDiceLoss(DiceLoss):
    """Self-adjusting dice loss, DSC (PAPER.md Eq. 12 with the official code's exponent α): dice with p replaced
    by p̃ = (1 - p)^α · p, i.e. n = 2 p̃ y, d = p̃^k + y^k;

        mean, k = 1, α = 1 (Eq. 12 as printed): 1/N Σ_i [1 - (2(1-p_i)p_i y_i + γ) / ((1-p_i)p_i + y_i + γ)]
        batch, k = 2, α = 0.01 (official scripts):  1 - (2 Σ p̃ y + γ) / (Σ p̃² + Σ y² + γ)

    p̃ = exp(log p + α log(1 - p)) with both logs from the logits: binary, logsigmoid(±x); multi-class,
    log_softmax and log(1 - p), exact where 1 - p ≥ 0.49, and for the one class per row with p > 0.51 the
    logsumexp of the others' log p. So p̃ and its gradient are exact where p rounds to 1, where the official
    ``(1 - p) ** α`` has a NaN gradient (unbounded for α < 1). α = 0 is :class:`DiceLoss`. Defaults: the official
    recipe (set level, squared, α = 0.01, γ = 1); per example, α = 1 makes a positive's loss symmetric about
    p = 0.5 and a confident false positive free (docs/losses.md).
    """

    def __init__(self, alpha: float = 0.01, smooth: float = 1.0, square_denominator: bool = True,
                 reduction: str = "batch", ohem_ratio: float = 0.0) -> None:
        super().__init__(smooth=smooth, square_denominator=square_denominator, reduction=reduction,
                         ohem_ratio=ohem_ratio)
        if alpha < 0:
            raise ValueError(f"alpha must be >= 0, got {alpha}")
        self.alpha = float(alpha)

    def score(self, flat):
        if not flat.multiclass:
            log_p, log_1mp = F.logsigmoid(flat.x[:, None]), F.logsigmoid(-flat.x[:, None])
            p = log_p.exp()
        else:
            log_p = torch.log_softmax(flat.x, -1)
            p = log_p.exp()
            big = p.detach().sub(0.01).round_()  # 1 where p > 0.51 (at most one class per row), else 0
            log_1mp = torch.log(torch.addcmul(1 - p, p, big))  # 1 - p, and 1 (log 0) at the big class
            log_1mp = torch.addcmul(log_1mp, big, logsumexp(torch.add(log_p, big, alpha=LOG_ZERO)))  # log Σ_{j≠c} p_j
        return p, torch.exp(log_p + self.alpha * log_1mp)  # p, p̃ = p (1 - p)^α


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

    def terms(self, p, y):
        return y * p, y * p + self.alpha * (1 - y) * p + self.beta * y * (1 - p)

