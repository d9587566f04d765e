"""What every loss shares: the shape convention, ignored positions, the compute precision, the head it needs.

Shapes (PAPER.md §2.1, generalised): binary, ``logits.shape == target.shape`` (or logits ``[..., 1]``), one
logit per position, p = σ(x), target in [0, 1] (soft labels work in every formula); multi-class, logits
``[..., C]`` (C ≥ 2), p = softmax over the last dim, target ``[...]`` of class ids. Leading dims are flattened
into N positions. A position is ignored when ``target == -100`` or ``mask == 0``: its weight is 0 and its logits
are replaced by 0 before any arithmetic, so its gradient is exactly 0 even where its logits are NaN or ±inf.
No shape or branch depends on the data (the target checks are skipped while compiling): every loss is one graph
for ``torch.compile``. float64 stays float64; fp16, bf16 and fp32 are computed in fp32, autocast off.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
from torch import nn


@dataclass
class Flat:
    """Inputs after :func:`flatten`: ``x`` [N] or [N, C] logits (0 where ignored), ``y`` [N] float targets (binary)
    or class ids (0 where ignored), ``valid`` [N] weights 1 (counted) / 0 (ignored), in the compute dtype."""

    x: torch.Tensor
    y: torch.Tensor
    valid: torch.Tensor
    multiclass: bool


def flatten(logits: torch.Tensor, target: torch.Tensor, mask: torch.Tensor | None = None) -> Flat:
    """Apply the shape convention, the ignore rule and the precision rule (module docstring)."""
    if not isinstance(logits, torch.Tensor) or not isinstance(target, torch.Tensor):
        raise TypeError("logits and target must be tensors")
    if not logits.dtype.is_floating_point:
        raise TypeError(f"logits must be a floating-point tensor, got {logits.dtype}")
    if mask is not None and mask.shape != target.shape:  # never broadcast: (N, 1) against (N,) would be N x N
        raise ValueError(f"mask must have the target's shape {tuple(target.shape)}, got {tuple(mask.shape)}")
    if logits.dim() == target.dim() + 1 and logits.shape[:-1] == target.shape:
        logits = logits if logits.shape[-1] > 1 else logits.squeeze(-1)
    elif logits.shape != target.shape:
        raise ValueError(f"logits {tuple(logits.shape)} and target {tuple(target.shape)} do not match: binary needs "
                         "equal shapes (one logit per position), multi-class needs logits [..., C] and target [...]")
    multiclass = logits.shape != target.shape
    if multiclass and (target.dtype.is_floating_point or target.dtype == torch.bool):
        raise TypeError(f"multi-class target must hold integer class ids, got {target.dtype}")
    dtype = torch.float64 if logits.dtype == torch.float64 else torch.float32
    y = target.reshape(-1)
    valid = (y != -100) if mask is None else (y != -100) & (mask.reshape(-1) != 0)
    if multiclass:
        x = torch.where(valid[:, None], logits.reshape(-1, logits.shape[-1]).to(dtype), 0.0)
        y = torch.where(valid, y.long(), 0)
        bad = (y < 0) | (y >= x.shape[-1])
    else:
        x = torch.where(valid, logits.reshape(-1).to(dtype), 0.0)
        y = torch.where(valid, y.to(dtype), 0.0)
        bad = (y < 0) | (y > 1)
    if not torch.compiler.is_compiling() and bool(bad.any()):  # (a host sync: a message, not a wrong loss)
        raise ValueError(f"target holds class id {y[bad][0].item()}, outside [0, {x.shape[-1]}) (and not -100)"
                         if multiclass else f"binary target must lie in [0, 1] (or be -100), got {y[bad][0].item()}")
    return Flat(x, y, valid.to(dtype), multiclass)


def drop_class(log_p: torch.Tensor, c: torch.Tensor):
    """One class per row, c [N, 1], taken out of log p [N, C]: (others, e, shift, log(1 - p_c)): others is log p
    with -inf at c, e = exp(others - shift) ≤ 1 with a detached shift [N, 1] (the largest other log p), and
    log(1 - p_c) = log Σ_{j≠c} p_j = shift + log Σ_j e_j [N, 1], exact where p_c rounds to 1. If every other
    class is -inf, the shift is -1e30 (log 0, finite) and the gradient 0."""
    others = log_p.scatter(1, c, -math.inf)
    shift = others.detach().amax(-1, keepdim=True).clamp(min=-1e30)
    e = (others - shift).exp_()
    return others, e, shift, e.sum(-1, keepdim=True).clamp(min=1).log() + shift


def check_reduction(reduction: str, allowed: tuple[str, ...]) -> str:
    if reduction not in allowed:
        raise ValueError(f"reduction must be one of {allowed}, got {reduction!r}")
    return reduction


class Loss(nn.Module):
    """``forward(logits, target, mask=None) -> scalar``; a subclass implements ``loss(flat)``.

    The loss says what head a model needs: ``binary_head``, for a binary decision, is ``"sigmoid"`` (one logit)
    or ``"softmax"`` (two logits; a 2-way softmax on (a, b) is a sigmoid on b - a); ``span_head``, for the
    start/end positions of a span, is ``"positions"`` (one softmax over a sequence's positions) or a binary
    decision per token (``binary_head``). Tasks and models ask these; they never compare loss names.
    """

    binary_head = "softmax"

    @property
    def span_head(self) -> str:
        return self.binary_head

    def forward(self, logits: torch.Tensor, target: torch.Tensor, mask: torch.Tensor | None = None) -> torch.Tensor:
        with torch.autocast(device_type=logits.device.type, enabled=False):
            return self.loss(flatten(logits, target, mask))

    def loss(self, flat: Flat) -> torch.Tensor:  # pragma: no cover - abstract
        raise NotImplementedError

    def extra_repr(self) -> str:  # the parameters (and the name build_loss gave)
        return ", ".join(f"{k}={v!r}" for k, v in vars(self).items() if not k.startswith("_") and k != "training")


class PositionLoss(Loss):
    """A mean (or sum) of per-position terms: CE, WCE, FL.

    ``reduction``: ``"mean"`` divides by the number N of counted positions, the paper's 1/N (Eqs. 1, 2; note that
    ``torch.nn.CrossEntropyLoss(weight=...)`` divides by Σ α_i); ``"sum"``; ``"batch"`` = ``"mean"`` (Eq. 1 is a
    set-level mean already), so one setting fits every loss. ``class_weights``: α_t per class ([C]; binary:
    [negative, positive]), α_i = α_{y_i} (soft binary targets: α_0 (1 - y_i) + α_1 y_i); None: α = 1.
    """

    def __init__(self, class_weights=None, reduction: str = "mean") -> None:
        super().__init__()
        self.reduction = check_reduction(reduction, ("mean", "batch", "sum"))
        w = None if class_weights is None else torch.as_tensor(class_weights, dtype=torch.float64).reshape(-1)
        if w is not None and (not bool(torch.isfinite(w).all()) or bool((w < 0).any())):
            raise ValueError(f"class weights must be finite and >= 0, got {w.tolist()}")
        self.register_buffer("class_weights", w, persistent=False)

    def reduce(self, per_position: torch.Tensor, flat: Flat) -> torch.Tensor:
        """Σ_i α_i l_i over the counted positions, divided by their number for "mean" (none counted: 0)."""
        alpha, w = flat.valid, self.class_weights
        if w is not None:
            classes = flat.x.shape[-1] if flat.multiclass else 2
            if w.numel() != classes:
                raise ValueError(f"{type(self).__name__}: {w.numel()} class weights for {classes} classes "
                                 "(binary problems take 2 weights: [negative, positive])")
            w = w.to(flat.x)
            alpha = alpha * (w[flat.y] if flat.multiclass else w[0] * (1 - flat.y) + w[1] * flat.y)
        total = (alpha * per_position).sum()
        return total if self.reduction == "sum" else total / flat.valid.sum().clamp(min=1)
