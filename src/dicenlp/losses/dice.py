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

Binary: one autograd function (``_binary_dice.py``; on float32 CPU tensors one C call). Multi-class: y is
one-hot, so n_ic = 0 and
d_ic = d(s_ic, 0) off the target; the whole loss is one autograd function (``_softmax_dice.py``): a
dense sum over the [N, C] scores per class, corrected at each row's target with [N]-sized ``index_add``,
and a backward written out w.r.t. the logits. No one-hot matrix, no loop over classes.
"""

from __future__ import annotations

import torch

from ._binary_dice import BinarySpec, binary_dice
from ._common import Flat, PositionwiseLoss, check_reduction
from ._softmax_dice import DiceSpec, multiclass_dice


class _DiceFamily(PositionwiseLoss):
    """Shared core (module docstring). A subclass gives its per-position terms by ``_terms()``: score
    s = (1 - p)^alpha p and n = a1 s y, d = s^power (d1 + d2 y) + d3 y + d4 y^power, used as they are for
    binary targets y in [0, 1] (``_binary_dice``) and at y ∈ {0, 1} for one-vs-rest classes
    (``_softmax_dice``). Both are autograd functions with a closed-form backward.
    """

    def __init__(self, smooth: float = 1.0, reduction: str = "batch", ohem_ratio: float = 0.0) -> None:
        super().__init__()
        if smooth < 0:
            raise ValueError(f"smooth must be >= 0, got {smooth}")
        if ohem_ratio < 0:
            raise ValueError(f"ohem_ratio must be >= 0 (0 disables OHEM), got {ohem_ratio}")
        self.smooth = float(smooth)
        self.reduction = check_reduction(reduction, ("batch", "mean"))
        self.ohem_ratio = float(ohem_ratio)

    def _terms(self) -> dict[str, float]:
        """{alpha, power, a1, d1, d2, d3, d4} (class docstring)."""
        raise NotImplementedError  # pragma: no cover - abstract

    def _loss(self, flat: Flat) -> torch.Tensor:
        tm = self._terms()
        common = dict(mean=self.reduction == "mean", smooth=self.smooth, ohem_ratio=self.ohem_ratio)
        if not flat.multiclass:
            return binary_dice(flat.x, flat.y, BinarySpec(**tm, **common))
        # y = 0: n = 0, d = d1 s^k;  y = 1: n = a1 s, d = (d1 + d2) s^k + d3 + d4
        spec = DiceSpec(alpha=tm["alpha"], power=tm["power"], c0=tm["d1"], a1=tm["a1"], b1=tm["d1"] + tm["d2"],
                        c1=tm["d3"] + tm["d4"], **common)
        return multiclass_dice(flat.x, flat.y, spec)

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
    ohem_ratio (0 = off; see :func:`dicenlp.losses.ohem_keep`).
    """

    def __init__(self, smooth: float = 1.0, square_denominator: bool = True, reduction: str = "batch",
                 ohem_ratio: float = 0.0) -> None:
        super().__init__(smooth=smooth, reduction=reduction, ohem_ratio=ohem_ratio)
        self.square_denominator = bool(square_denominator)

    def _terms(self):  # n = 2 s y, d = s^k + y^k
        return dict(alpha=0.0, power=2 if self.square_denominator else 1, a1=2.0, d1=1.0, d2=0.0, d3=0.0, d4=1.0)

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
    Binary: p̃ = exp(α log(1-p) + log p) from the logit (logsigmoid), so its gradient stays finite when p
    saturates to 1 (the official ``(1 - p) ** α`` gives NaN gradients there). Multi-class: p̃ from an
    exact 1 - p (a row sum of the other classes for the one entry above 1/2) and a backward in closed
    form w.r.t. the logits in which (1 - p)^{α-1} never appears (``_softmax_dice.py``).
    """

    def __init__(self, alpha: float = 0.01, smooth: float = 1.0, square_denominator: bool = True,
                 reduction: str = "batch", ohem_ratio: float = 0.0) -> None:
        super().__init__(smooth=smooth, square_denominator=square_denominator, reduction=reduction,
                         ohem_ratio=ohem_ratio)
        if alpha < 0:
            raise ValueError(f"alpha must be >= 0, got {alpha}")
        self.alpha = float(alpha)

    def _terms(self):  # DL's terms with s = p̃
        return dict(super()._terms(), alpha=self.alpha)

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

    def __init__(self, alpha: float = 0.5, beta: float = 0.5, smooth: float = 1.0, reduction: str = "batch",
                 ohem_ratio: float = 0.0) -> None:
        super().__init__(smooth=smooth, reduction=reduction, ohem_ratio=ohem_ratio)
        if alpha < 0 or beta < 0:
            raise ValueError(f"alpha and beta must be >= 0, got {alpha}, {beta}")
        self.alpha, self.beta = float(alpha), float(beta)

    def _terms(self):  # d = p y + α p (1 - y) + β (1 - p) y = p (α + (1 - α - β) y) + β y
        return dict(alpha=0.0, power=1, a1=1.0, d1=self.alpha, d2=1.0 - self.alpha - self.beta, d3=self.beta, d4=0.0)

    def extra_repr(self) -> str:
        return super().extra_repr() + f", alpha={self.alpha}, beta={self.beta}"
