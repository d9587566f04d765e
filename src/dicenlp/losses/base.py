"""What every loss shares: the shape convention, ignored positions, the compute precision, the head it needs.

Shapes (PAPER.md §2.1, generalised):
  * binary: ``logits.shape == target.shape``, one logit per position, p = σ(x); target in [0, 1] (hard labels
    {0, 1}; soft labels work in every formula). ``[..., 1]`` logits with ``[...]`` targets are binary too.
  * multi-class: logits ``[..., C]`` (C ≥ 2), p = softmax over the last dim; target ``[...]`` of class ids.
Leading dims are flattened: a loss sees N positions. A position is ignored when ``target == -100`` or
``mask == 0``: it gets weight 0, and its logits are replaced by 0 before any arithmetic (``torch.where``), so
its gradient is exactly 0 even where its logits are NaN or ±inf. There are no data-dependent shapes or
branches (the target checks are skipped while compiling), so every loss is one graph for ``torch.compile``.

Precision: float64 stays float64 (the exactness tests); fp16, bf16 and fp32 logits are computed in fp32 with
autocast switched off. Every formula works from the logits in log space (``log_softmax``, ``logsigmoid``,
the logsumexp of the other classes for log(1 - p)), so loss and gradient stay finite at saturated logits without a custom backward.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

IGNORE_INDEX = -100

#: log 0 inside a logsumexp: finite, so that log(1 - p) of a row whose other classes are all -inf comes out as
#: about -1e30 (its exp is 0) with finite gradients, instead of -inf (and NaN downstream).
LOG_ZERO = -1e30


@dataclass
class Flat:
    """The inputs after :func:`flatten`: ``x`` [N] or [N, C] logits in the compute dtype (0 where ignored),
    ``y`` [N] float targets (binary) or long class ids (0 where ignored), ``valid`` [N] weights 1 / 0."""

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
    if logits.shape == target.shape:
        multiclass = False
    elif logits.dim() == target.dim() + 1 and logits.shape[:-1] == target.shape:
        multiclass = logits.shape[-1] > 1
        logits = logits if multiclass else logits.squeeze(-1)
    else:
        raise ValueError(f"logits {tuple(logits.shape)} and target {tuple(target.shape)} do not match: binary needs "
                         "equal shapes (one logit per position), multi-class needs logits [..., C] and target [...]")
    if multiclass and (target.dtype.is_floating_point or target.dtype == torch.bool):
        raise TypeError(f"multi-class target must hold integer class ids, got {target.dtype}")
    dtype = torch.float64 if logits.dtype == torch.float64 else torch.float32
    valid = target.reshape(-1) != IGNORE_INDEX
    if mask is not None:
        valid = valid & (mask.reshape(-1) != 0)
    y = target.reshape(-1)
    if multiclass:
        x = torch.where(valid[:, None], logits.reshape(-1, logits.shape[-1]).to(dtype), 0.0)
        y = torch.where(valid, y.long(), 0)
    else:
        x = torch.where(valid, logits.reshape(-1).to(dtype), 0.0)
        y = torch.where(valid, y.to(dtype), 0.0)
    if not torch.compiler.is_compiling():  # (host syncs; a user's mistake gets a message, not a wrong loss)
        _check_targets(y, logits.shape[-1] if multiclass else None)
    return Flat(x, y, valid.to(dtype), multiclass)


def _check_targets(y: torch.Tensor, num_classes: int | None) -> None:
    bad = (y < 0) | (y >= num_classes) if num_classes else (y < 0) | (y > 1)
    if bool(bad.any()):
        value = y[bad][0].item()
        if num_classes:
            raise ValueError(f"target holds class id {value}, outside [0, {num_classes}) (and not -100)")
        raise ValueError(f"binary target must lie in [0, 1] (or be -100), got {value}")


def logsumexp(v: torch.Tensor) -> torch.Tensor:
    """log Σ_j exp(v_ij) over the last dim, keepdim, shifted by the row maximum (``v`` must hold a finite entry
    per row). The value and gradient of ``torch.logsumexp``; the shift is detached (the function does not depend
    on it), which makes the backward one exp instead of torch's several masked passes for ±inf."""
    shift = v.detach().amax(-1, keepdim=True)
    return shift + (v - shift).exp().sum(-1, keepdim=True).log()


def check_reduction(reduction: str, allowed: tuple[str, ...]) -> str:
    if reduction not in allowed:
        raise ValueError(f"reduction must be one of {allowed}, got {reduction!r}")
    return reduction


def as_weight_buffer(values) -> torch.Tensor | None:
    """Per-class weights (list, tuple, numpy array or tensor) as a float64 tensor, or None."""
    if values is None:
        return None
    w = torch.as_tensor(values, dtype=torch.float64).reshape(-1).clone()
    if not bool(torch.isfinite(w).all()) or bool((w < 0).any()):
        raise ValueError(f"class weights must be finite and >= 0, got {w.tolist()}")
    return w


class Loss(nn.Module):
    """Base class: ``forward(logits, target, mask=None) -> scalar``; a subclass implements ``loss(flat)``.

    ``binary_head`` says how a model should score a binary decision for this loss: ``"sigmoid"`` (one logit)
    or ``"softmax"`` (two logits; a 2-way softmax on (a, b) is a sigmoid on b - a, so nothing is lost).
    ``span_head`` says how a span head (QA start/end) should score the positions of a sequence:
    ``"positions"`` (one softmax over the positions) or a binary decision per token (``binary_head``).
    Tasks and models ask the loss these questions; they never compare loss names.
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


class PositionLoss(Loss):
    """A loss that is a (weighted) mean or sum of per-position terms: CE, WCE, FL.

    ``reduction``: ``"mean"`` divides by the number N of counted positions, as the paper's 1/N (Eqs. 1, 2;
    ``torch.nn.CrossEntropyLoss(weight=...)`` divides by Σ α_i instead); ``"sum"``; ``"batch"`` is a synonym
    of ``"mean"`` (Eq. 1 is already a set-level mean), so one setting can be shared by every loss.
    ``class_weights``: α_t per class ([C]; binary: [negative, positive]), α_i = α_{y_i}; soft binary targets
    use α_0 (1 - y_i) + α_1 y_i. None: α = 1.
    """

    def __init__(self, class_weights=None, reduction: str = "mean") -> None:
        super().__init__()
        self.reduction = check_reduction(reduction, ("mean", "batch", "sum"))
        self.register_buffer("class_weights", as_weight_buffer(class_weights), persistent=False)

    def reduce(self, per_position: torch.Tensor, flat: Flat) -> torch.Tensor:
        """Σ_i α_i l_i over the counted positions, divided by their number N for "mean" (N = 0: loss 0)."""
        total = (self.weights_of(flat) * per_position).sum()
        return total if self.reduction == "sum" else total / flat.valid.sum().clamp(min=1)

    def weights_of(self, flat: Flat) -> torch.Tensor:
        """[N]: α_i (module docstring) times the position's 0/1 validity."""
        w = self.class_weights
        if w is None:
            return flat.valid
        classes = flat.x.shape[-1] if flat.multiclass else 2
        if w.numel() != classes:
            raise ValueError(f"{type(self).__name__}: {w.numel()} class weights for {classes} classes "
                             "(binary problems take 2 weights: [negative, positive])")
        w = w.to(flat.x)
        alpha = w[flat.y] if flat.multiclass else w[0] * (1 - flat.y) + w[1] * flat.y
        return alpha * flat.valid

    def extra_repr(self) -> str:
        return f"reduction={self.reduction!r}, class_weights={self.class_weights is not None}"

