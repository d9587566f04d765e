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

Speed (multi-class): y is one-hot, so n_ic = 0 and d_ic = d(s_ic, 0) off the target; the [N, C] work is
one term d(s, 0) summed over positions (a matrix-vector product with k), and the target column is
corrected with [N]-sized gathers and ``index_add``. No one-hot matrix, no loop over classes.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from ._common import Flat, PositionwiseLoss, check_reduction, softmax_parts


def _ratio(num: torch.Tensor, den: torch.Tensor, smooth: float) -> torch.Tensor:
    """num / den, where den includes the smoothing γ. With γ > 0 den > 0 always; with γ = 0 a zero
    denominator (nothing predicted, nothing gold) counts as perfect agreement, ratio 1."""
    if smooth > 0:
        return num / den
    nonzero = den != 0
    return torch.where(nonzero, num / torch.where(nonzero, den, 1.0), 1.0)


def _colsum(keep: torch.Tensor | None, values: torch.Tensor) -> torch.Tensor:
    """Σ_i keep_iu values_iu → [U] (keep None = every row)."""
    return values.sum(0) if keep is None else (keep * values).sum(0)


def ohem_keep(p: torch.Tensor, y: torch.Tensor, ratio: float, valid: torch.Tensor | None = None) -> torch.Tensor:
    """Online hard negative mining, per unit: keep every positive and the k hardest negatives.

    k_u = min(#negatives_u, floor(ratio · #positives_u)); "hardest" = highest probability p_iu of the
    unit's positive class. Vectorised: one ``topk`` along positions for all units at once (k differs per
    unit: take the top max_u k_u and keep the first k_u of each column). Ties at the k-th score are broken
    arbitrarily but exactly k_u negatives are kept. This reads max_u k_u back to the host (one device sync).

    Args: p, y: [N, U] (y > 0.5 is a positive); valid: optional [N] bool of the rows that count.
    Returns a bool keep mask [N, U].
    """
    pos, neg = y > 0.5, y <= 0.5
    if valid is not None:
        pos, neg = pos & valid[:, None], neg & valid[:, None]
    n_pos, n_neg = pos.sum(0), neg.sum(0)
    # +1e-9: floor(0.29 * 100) must be 29, not 28 (0.29 * 100 = 28.999999999999996 in binary floating point)
    k = torch.minimum(n_neg, torch.floor(n_pos.double() * ratio + 1e-9).long())
    k_max = int(k.max()) if k.numel() else 0
    scores = p.detach() - 2.0 * (~neg).to(p.dtype)  # non-negatives below every probability (float math: fast)
    top = scores.topk(k_max, dim=0, sorted=True).indices  # [k_max, U], hardest first
    take = torch.arange(k_max, device=p.device)[:, None] < k[None, :]
    return pos | torch.zeros_like(pos).scatter_(0, top, take)


class _DiceFamily(PositionwiseLoss):
    """Shared core (module docstring). Subclasses define the score s (p for DL/TL, p̃ for DSC) and

    * ``_terms(s, q, y)``: dense (n, d) for binary targets y in [0, 1] (q = 1 - p, accurate);
    * ``_d0(s)``: d at y = 0 (n is 0 there);
    * ``_nd1(s, q)``: (n, d) at y = 1.
    """

    uses_q = False  # whether _terms / _nd1 need q = 1 - p

    def __init__(self, smooth: float = 1.0, reduction: str = "batch", ohem_ratio: float = 0.0) -> None:
        super().__init__()
        if smooth < 0:
            raise ValueError(f"smooth must be >= 0, got {smooth}")
        if ohem_ratio < 0:
            raise ValueError(f"ohem_ratio must be >= 0 (0 disables OHEM), got {ohem_ratio}")
        self.smooth = float(smooth)
        self.reduction = check_reduction(reduction, ("batch", "mean"))
        self.ohem_ratio = float(ohem_ratio)

    # ---------------------------------------------------------------- per-loss pieces
    def _binary_score(self, x: torch.Tensor) -> torch.Tensor:
        return torch.sigmoid(x)

    def _multiclass_scores(self, x: torch.Tensor, t: torch.Tensor):
        """Softmax probabilities and the loss's score s, in the form the reductions need.

        Returns ``(p, d0, s_t, q_t, fix)``: p [N, C]; d0 = d(s, 0) [N, C] (the y = 0 denominator term of
        every entry); s_t = s at the target [N]; q_t = 1 - p at the target [N] (or None if unused);
        ``fix`` = None, or ``(T, s_exact_T, s_T)`` when d0 holds d(s_T, 0) instead of d(s_exact_T, 0) at one
        entry per row (column T [N]) and the reductions must swap it.
        """
        p = x.softmax(-1)
        p_t = p.gather(1, t[:, None]).squeeze(1)
        return p, self._d0(p), p_t, (1 - p_t if self.uses_q else None), None

    def _terms(self, s, q, y):  # pragma: no cover - abstract
        raise NotImplementedError

    def _d0(self, s):  # pragma: no cover - abstract
        raise NotImplementedError

    def _nd1(self, s, q):  # pragma: no cover - abstract
        raise NotImplementedError

    # ---------------------------------------------------------------- reductions
    def _reduce(self, num_sum, den_sum, loss_sum, count):
        if self.reduction == "batch":
            per_unit = 1 - _ratio(num_sum + self.smooth, den_sum + self.smooth, self.smooth)
        else:
            per_unit = loss_sum / count.clamp(min=1)
        return per_unit.mean()

    def _per_position(self, n, d):
        """1 - (n + γ)/(d + γ), the per-example loss of Eqs. 7, 10, 12."""
        return 1 - _ratio(n + self.smooth, d + self.smooth, self.smooth)

    def _loss(self, flat: Flat) -> torch.Tensor:
        return self._multiclass(flat) if flat.multiclass else self._binary(flat)

    def _binary(self, flat: Flat) -> torch.Tensor:
        x, y = flat.x, flat.y
        s = self._binary_score(x)
        q = torch.sigmoid(-x) if self.uses_q else None  # 1 - p without cancellation (TL's false negatives)
        n, d = self._terms(s, q, y)
        if self.ohem_ratio > 0:
            keep = ohem_keep(torch.sigmoid(x)[:, None], y[:, None], self.ohem_ratio)[:, 0].to(x.dtype)
            n, d, count = keep * n, keep * d, keep.sum()
        else:
            keep, count = None, x.new_tensor(float(x.shape[0]))
        if self.reduction == "batch":
            return self._reduce(n.sum(), d.sum(), None, None)
        per_pos = self._per_position(n, d)
        return self._reduce(None, None, (per_pos if keep is None else keep * per_pos).sum(), count)

    def _multiclass(self, flat: Flat) -> torch.Tensor:
        x, t = flat.x, flat.y
        N, C = x.shape
        p, d0, s_t, q_t, fix = self._multiclass_scores(x, t)
        col = t[:, None]
        if self.ohem_ratio > 0:
            y = torch.zeros_like(p, dtype=torch.bool).scatter_(1, col, True)
            keep = ohem_keep(p, y, self.ohem_ratio).to(x.dtype)
            k_t = keep.gather(1, col).squeeze(1)
            k_fix = keep.gather(1, fix[0][:, None]).squeeze(1) if fix is not None else None
            count = keep.sum(0)
        else:
            keep, k_t, k_fix, count = None, 1.0, 1.0, x.new_tensor(float(N))
        zeros = x.new_zeros(C)
        n1, d1 = self._nd1(s_t, q_t)
        if self.reduction == "batch":
            # Σ_i d_ic = Σ_i d(s_ic, 0) over all entries, then the target entries switch d(s, 0) → d(s, 1)
            den_sum = _colsum(keep, d0) + zeros.index_add(0, t, k_t * (d1 - self._d0(s_t)))
            if fix is not None:
                T, exact, approx = fix
                den_sum = den_sum + zeros.index_add(0, T, k_fix * (self._d0(exact) - self._d0(approx)))
            num_sum = zeros.index_add(0, t, k_t * n1)
            return self._reduce(num_sum, den_sum, None, None)
        # Σ_i l_ic = Σ_i l(s_ic, 0) over all entries, then the target entries switch l(s, 0) → l(s, 1)
        target_switch = self._per_position(n1, d1) - self._l0(s_t)
        loss_sum = _colsum(keep, self._l0_from_d(d0)) + zeros.index_add(0, t, k_t * target_switch)
        if fix is not None:
            T, exact, approx = fix
            loss_sum = loss_sum + zeros.index_add(0, T, k_fix * (self._l0(exact) - self._l0(approx)))
        return self._reduce(None, None, loss_sum, count)

    def _l0(self, s):
        """Per-position loss at y = 0 (n = 0): 1 - γ/(d(s, 0) + γ)."""
        return self._l0_from_d(self._d0(s))

    def _l0_from_d(self, d):
        if self.smooth > 0:
            return d / (d + self.smooth)  # = 1 - γ/(d + γ), one pass fewer
        return (d != 0).to(d.dtype)  # γ = 0: 1 - 0/d = 1, and 0/0 counts as ratio 1 (loss 0)

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

    def _terms(self, s, q, y):
        if self.square_denominator:
            return 2 * s * y, s * s + y * y
        return 2 * s * y, s + y

    def _d0(self, s):
        return s * s if self.square_denominator else s

    def _nd1(self, s, q):
        return 2 * s, self._d0(s) + 1

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

    def __init__(self, alpha: float = 0.01, smooth: float = 1.0, square_denominator: bool = True,
                 reduction: str = "batch", ohem_ratio: float = 0.0) -> None:
        super().__init__(smooth=smooth, square_denominator=square_denominator, reduction=reduction,
                         ohem_ratio=ohem_ratio)
        if alpha < 0:
            raise ValueError(f"alpha must be >= 0, got {alpha}")
        self.alpha = float(alpha)

    def _binary_score(self, x):
        if self.alpha == 0:  # exactly DL
            return torch.sigmoid(x)
        # log p = logsigmoid(x), log(1 - p) = logsigmoid(-x): exact and finite for any finite x
        return torch.exp(F.logsigmoid(x) + self.alpha * F.logsigmoid(-x))

    def _multiclass_scores(self, x, t):
        if self.alpha == 0:
            return super()._multiclass_scores(x, t)
        a = self.alpha
        sm = softmax_parts(x)  # exact log(1 - p) without 0 * inf (see SoftmaxParts)
        # log p̃ = log p + α log(1 - p); d0 = p̃^k = exp(k log p̃) (one exp, no separate square). Exact
        # except at a row's big entry (p > 1/2), which holds p for now: the reductions swap in the exact
        # value ``exact_T`` there ([N] work, ``fix``).
        log_s = torch.add(sm.logp, sm.log1m_small(), alpha=a)
        d0 = torch.exp(log_s.mul_(2) if self.square_denominator else log_s)
        lp = sm.logp.gather(1, torch.stack([t, sm.T], 1))
        lp_t, lp_T = lp[:, 0], lp[:, 1]
        approx_T = lp_T.exp()  # what d0 assumed at a big entry (log(1 - 0) = 0)
        exact_T = torch.where(sm.has_big, torch.exp(lp_T + a * sm.log_q_T), approx_T)
        s_t = torch.exp(lp_t + a * sm.log1m_at(t, lp_t.exp()))
        return sm.p, d0, s_t, None, (sm.T, exact_T, approx_T)

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

    uses_q = True

    def __init__(self, alpha: float = 0.5, beta: float = 0.5, smooth: float = 1.0, reduction: str = "batch",
                 ohem_ratio: float = 0.0) -> None:
        super().__init__(smooth=smooth, reduction=reduction, ohem_ratio=ohem_ratio)
        if alpha < 0 or beta < 0:
            raise ValueError(f"alpha and beta must be >= 0, got {alpha}, {beta}")
        self.alpha, self.beta = float(alpha), float(beta)

    def _terms(self, p, q, y):
        tp = p * y
        return tp, tp + self.alpha * p * (1 - y) + self.beta * q * y

    def _d0(self, p):
        return self.alpha * p

    def _nd1(self, p, q):
        return p, p + self.beta * q

    def extra_repr(self) -> str:
        return super().extra_repr() + f", alpha={self.alpha}, beta={self.beta}"
