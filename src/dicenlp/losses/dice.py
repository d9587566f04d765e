"""The dice family: dice loss (DL, Eqs. 6-8), Tversky loss (TL, Eqs. 9-10), self-adjusting dice (DSC, Eq. 12).

All three share one core. Per position i and unit u (binary: the positive class; multi-class: each
class c one-vs-rest, y_ic = [y_i == c], p_ic = softmax(x_i)_c) a loss supplies a numerator term n_iu and
a denominator term d_iu; the core then reduces:

  * ``reduction="batch"`` (set level, Eq. 8; what the official code computes):
        L_u = 1 - (Σ_i k_iu n_iu + γ) / (Σ_i k_iu d_iu + γ)
  * ``reduction="mean"`` (per example, Eqs. 7, 10, 12, averaged):
        L_u = Σ_i k_iu [1 - (n_iu + γ) / (d_iu + γ)] / Σ_i k_iu

and returns mean_u L_u (classes are averaged; the official multi-class code sums them). k_iu is 1 for
unmasked positions (0 for ``target == -100`` / ``mask == 0``), further restricted by OHEM. γ is ``smooth``.
A ratio whose denominator is 0 (only possible with smooth = 0 and nothing to count) is taken as 1
(dice of two empty sets), so an all-masked batch gives loss 0 with zero gradients.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from ._common import Flat, PositionwiseLoss, check_reduction, log_probs


def _safe_ratio(num: torch.Tensor, den: torch.Tensor) -> torch.Tensor:
    nonzero = den != 0
    return torch.where(nonzero, num / torch.where(nonzero, den, 1.0), 1.0)


def ohem_keep(p: torch.Tensor, y: torch.Tensor, valid: torch.Tensor, ratio: float) -> torch.Tensor:
    """Online hard negative mining, per unit: keep every positive and the k hardest negatives.

    k_u = min(#negatives_u, floor(ratio · #positives_u)); "hardest" = highest probability p_iu of the
    unit's positive class (ties broken by position). Vectorised: one sort along positions for all units.

    Args: p, y: [N, U] (y > 0.5 is a positive); valid: [N] bool. Returns a bool keep mask [N, U].
    """
    pos = (y > 0.5) & valid[:, None]
    neg = (y <= 0.5) & valid[:, None]
    n_pos, n_neg = pos.sum(0), neg.sum(0)
    # +1e-9: floor(0.29 * 100) must be 29, not 28 (0.29 * 100 = 28.999999999999996 in binary floating point)
    k = torch.minimum(n_neg, torch.floor(n_pos.double() * ratio + 1e-9).long())
    scores = p.detach().masked_fill(~neg, float("-inf"))
    order = scores.argsort(dim=0, descending=True, stable=True)
    positions = torch.arange(p.shape[0], device=p.device)[:, None].expand_as(order)
    rank = torch.empty_like(order).scatter_(0, order, positions)
    return pos | (neg & (rank < k))


class _DiceFamily(PositionwiseLoss):
    """Shared core; subclasses implement ``_terms(logp, log1mp, y) -> (n, d)``, each [N, U]."""

    needs_log1mp = False

    def __init__(self, smooth: float = 1.0, reduction: str = "batch", ohem_ratio: float = 0.0) -> None:
        super().__init__()
        if smooth < 0:
            raise ValueError(f"smooth must be >= 0, got {smooth}")
        if ohem_ratio < 0:
            raise ValueError(f"ohem_ratio must be >= 0 (0 disables OHEM), got {ohem_ratio}")
        self.smooth = float(smooth)
        self.reduction = check_reduction(reduction, ("batch", "mean"))
        self.ohem_ratio = float(ohem_ratio)

    def _terms(self, logp, log1mp, y):  # pragma: no cover - abstract
        raise NotImplementedError

    def _loss(self, flat: Flat) -> torch.Tensor:
        logp, log1mp = log_probs(flat, need_log1mp=self.needs_log1mp)
        if flat.multiclass:
            y = F.one_hot(flat.y, flat.num_units).to(logp.dtype)
        else:
            y = flat.y[:, None]
        if self.ohem_ratio > 0:
            keep = ohem_keep(logp.exp(), y, flat.valid, self.ohem_ratio).to(logp.dtype)
        else:
            keep = flat.valid.to(logp.dtype)[:, None]
        num, den = self._terms(logp, log1mp, y)
        g = self.smooth
        if self.reduction == "batch":
            per_unit = 1 - _safe_ratio((keep * num).sum(0) + g, (keep * den).sum(0) + g)
        else:
            per_pos = 1 - _safe_ratio(num + g, den + g)
            per_unit = (keep * per_pos).sum(0) / keep.sum(0).clamp(min=1)
        return per_unit.mean()

    def extra_repr(self) -> str:
        return f"smooth={self.smooth}, reduction={self.reduction!r}, ohem_ratio={self.ohem_ratio}"


class DiceLoss(_DiceFamily):
    """Dice loss (PAPER.md Eqs. 6-8): n_i = 2 p_i y_i, d_i = p_i^k + y_i^k.

    k = 2 with ``square_denominator=True`` (Milletari's form, Eqs. 7 and 8; the default, as every official
    dice script passes ``--dice_square``), k = 1 otherwise (the plain smoothed dice of Eq. 6).

        batch (Eq. 8): 1 - (2 Σ p y + γ) / (Σ p^k + Σ y^k + γ)
        mean  (Eq. 7): 1/N Σ_i [1 - (2 p_i y_i + γ) / (p_i^k + y_i^k + γ)]

    Shapes: see :mod:`dicenlp.losses` (binary [...] + sigmoid, or [..., C] + softmax one-vs-rest).
    Args: smooth (γ, default 1 as in the paper), square_denominator, reduction ("batch" | "mean"),
    ohem_ratio (0 = off; see :func:`ohem_keep`).
    """

    def __init__(self, smooth: float = 1.0, square_denominator: bool = True, reduction: str = "batch",
                 ohem_ratio: float = 0.0) -> None:
        super().__init__(smooth=smooth, reduction=reduction, ohem_ratio=ohem_ratio)
        self.square_denominator = bool(square_denominator)

    def _scores(self, logp, log1mp):
        return logp.exp()

    def _terms(self, logp, log1mp, y):
        p = self._scores(logp, log1mp)
        if self.square_denominator:
            return 2 * p * y, p * p + y * y
        return 2 * p * y, p + y

    def extra_repr(self) -> str:
        return super().extra_repr() + f", square_denominator={self.square_denominator}"


class SelfAdjustingDiceLoss(DiceLoss):
    """Self-adjusting dice loss, DSC (PAPER.md Eq. 12 with the official code's exponent α):
    dice with p replaced by p̃ = (1 - p)^α · p, i.e. n_i = 2 p̃_i y_i, d_i = p̃_i^k + y_i^k.

        mean, k = 1, α = 1 (Eq. 12 as printed): 1/N Σ_i [1 - (2(1-p_i)p_i y_i + γ) / ((1-p_i)p_i + y_i + γ)]
        batch, k = 2, α = 0.01 (official scripts):  1 - (2 Σ p̃ y + γ) / (Σ p̃² + Σ y² + γ)

    Defaults = the official scripts' recipe (set level, squared denominator, α = 0.01, γ = 1): per example,
    α = 1 makes a positive's loss symmetric about p = 0.5 (its minimiser is p = 0.5, and a confident
    false positive costs nothing), see docs/losses.md; α = 0 is exactly :class:`DiceLoss`.
    p̃ is computed as exp(α log(1-p) + log p) from the logits, so its gradient stays finite when p
    saturates to 1 (the official ``(1 - p) ** α`` gives NaN gradients there).
    """

    needs_log1mp = True

    def __init__(self, alpha: float = 0.01, smooth: float = 1.0, square_denominator: bool = True,
                 reduction: str = "batch", ohem_ratio: float = 0.0) -> None:
        super().__init__(smooth=smooth, square_denominator=square_denominator, reduction=reduction,
                         ohem_ratio=ohem_ratio)
        if alpha < 0:
            raise ValueError(f"alpha must be >= 0, got {alpha}")
        self.alpha = float(alpha)

    def _scores(self, logp, log1mp):
        if self.alpha == 0:  # exactly DL; also avoids 0 * (-inf) for a class with p = 1 exactly
            return logp.exp()
        return torch.exp(self.alpha * log1mp + logp)

    def extra_repr(self) -> str:
        return super().extra_repr() + f", alpha={self.alpha}"


class TverskyLoss(_DiceFamily):
    """Tversky loss (PAPER.md Eqs. 9-10): n_i = p_i y_i, d_i = p_i y_i + α p_i (1 - y_i) + β (1 - p_i) y_i.

        batch: 1 - (Σ p y + γ) / (Σ p y + α Σ p (1-y) + β Σ (1-p) y + γ)
        mean (Eq. 10): 1/N Σ_i [1 - (p_i y_i + γ) / (p_i y_i + α p_i (1-y_i) + β (1-p_i) y_i + γ)]

    α weights false positives, β false negatives. α = β = 0.5 is the non-squared dice (Eq. 6, DL with
    ``square_denominator=False``) with smoothing doubled: TL(γ) = DL(2γ), since multiplying numerator
    and denominator by 2 gives (2py + 2γ)/(p + y + 2γ). Table 10 of the paper uses β = 1 - α.
    """

    needs_log1mp = True

    def __init__(self, alpha: float = 0.5, beta: float = 0.5, smooth: float = 1.0, reduction: str = "batch",
                 ohem_ratio: float = 0.0) -> None:
        super().__init__(smooth=smooth, reduction=reduction, ohem_ratio=ohem_ratio)
        if alpha < 0 or beta < 0:
            raise ValueError(f"alpha and beta must be >= 0, got {alpha}, {beta}")
        self.alpha, self.beta = float(alpha), float(beta)

    def _terms(self, logp, log1mp, y):
        p, q = logp.exp(), log1mp.exp()  # q = 1 - p, accurate near p = 1
        tp = p * y
        return tp, tp + self.alpha * p * (1 - y) + self.beta * q * y

    def extra_repr(self) -> str:
        return super().extra_repr() + f", alpha={self.alpha}, beta={self.beta}"
