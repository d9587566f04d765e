"""Shared plumbing of every loss: shape convention, masking, precision, stable log-probabilities.

Shape convention (PAPER.md §2.1 generalised):
  * binary:      ``logits.shape == target.shape`` (one logit per position, sigmoid), target in [0, 1]
                 (hard labels {0, 1}; soft labels work in every formula). ``logits`` of shape
                 ``[..., 1]`` with ``target`` of shape ``[...]`` is also read as binary.
  * multi-class: ``logits`` is ``[..., C]`` (C >= 2, softmax over the last dim), ``target`` is ``[...]``
                 of integer class ids.
A position is ignored when ``target == -100`` or ``mask == 0`` (``mask`` has the target's shape).
Ignored positions never reach a formula: they are dropped (boolean indexing) before any arithmetic, so
their gradient is exactly 0 even when their logits are NaN or infinite, and every later op runs on the
kept rows only (tagging batches are often half padding and sub-tokens).
"""

from __future__ import annotations

import functools
from dataclasses import dataclass

import torch
from torch import nn

IGNORE_INDEX = -100

#: Fill value for "excluded" entries inside a logsumexp: finite, so that a row whose other entries are all
#: -inf (impossible classes filled with -inf by the caller) gives a finite (hugely negative) result
#: instead of -inf, and -inf - (-inf) = NaN downstream.
EXCLUDED = -1e30


@dataclass
class Flat:
    """Flattened, validated inputs restricted to the kept (unignored) positions. ``x``: [N] (binary) or
    [N, C] (multi-class) logits in the compute dtype; ``y``: [N] float targets (binary) or long class ids
    (multi-class). N may be 0."""

    x: torch.Tensor
    y: torch.Tensor
    multiclass: bool

    @property
    def num_units(self) -> int:
        """1 for binary, C for multi-class (the dice family is one-vs-rest per class)."""
        return self.x.shape[-1] if self.multiclass else 1


def compute_dtype(dtype: torch.dtype) -> torch.dtype:
    """float64 stays float64 (exactness tests); everything else (fp16, bf16, fp32) is computed in fp32."""
    if not dtype.is_floating_point:
        raise TypeError(f"logits must be a floating-point tensor, got {dtype}")
    return torch.float64 if dtype == torch.float64 else torch.float32


def flatten_inputs(logits: torch.Tensor, target: torch.Tensor, mask: torch.Tensor | None = None) -> Flat:
    """Apply the shape convention, the ignore rules and the precision rule. See the module docstring."""
    if not isinstance(logits, torch.Tensor) or not isinstance(target, torch.Tensor):
        raise TypeError("logits and target must be tensors")
    if mask is not None and tuple(mask.shape) != tuple(target.shape):
        # No silent broadcasting: the official code's (N, 1) mask against (N,) inputs broadcast to N x N.
        raise ValueError(f"mask must have the target's shape {tuple(target.shape)}, got {tuple(mask.shape)}")
    if logits.shape == target.shape:
        multiclass = False
    elif logits.dim() == target.dim() + 1 and logits.shape[:-1] == target.shape:
        multiclass = logits.shape[-1] > 1
        if not multiclass:
            logits = logits.squeeze(-1)
    else:
        raise ValueError(
            f"logits {tuple(logits.shape)} and target {tuple(target.shape)} do not match: binary needs equal "
            "shapes (one logit per position), multi-class needs logits [..., C] and target [...]")

    dtype = compute_dtype(logits.dtype)
    if multiclass and (target.dtype.is_floating_point or target.dtype == torch.bool):
        raise TypeError(f"multi-class target must hold integer class ids, got {target.dtype}")
    num_classes = logits.shape[-1] if multiclass else None
    x = logits.to(dtype).reshape(-1, num_classes) if multiclass else logits.to(dtype).reshape(-1)
    y = target.reshape(-1)
    valid = y != IGNORE_INDEX
    if mask is not None:
        valid = valid & (mask.reshape(-1) != 0)
    if not bool(valid.all()):  # keep only the counted rows (exact zero gradient for the others)
        x, y = x[valid], y[valid]
    if multiclass:
        bad = (y < 0) | (y >= num_classes)
        if bool(bad.any()):
            raise ValueError(f"target holds class id {y[bad][0].item()}, outside [0, {num_classes}) (and not -100)")
        y = y.long()
    else:
        y = y.to(dtype)
        bad = (y < 0) | (y > 1)
        if bool(bad.any()):
            raise ValueError(f"binary target must lie in [0, 1] (or be -100), got {y[bad][0].item()}")
    return Flat(x=x, y=y, multiclass=multiclass)


def ratio_inv(num: torch.Tensor, den: torch.Tensor, smooth: float):
    """(num/den, 1/den) for a dice ratio whose den includes the smoothing γ. With γ > 0, den > 0 always;
    with γ = 0 a zero denominator (nothing predicted, nothing gold) counts as ratio 1 (dice of two empty
    sets) with zero gradient (1/den replaced by 0)."""
    if smooth > 0:
        inv = den.reciprocal()
        return num * inv, inv
    nonzero = den != 0
    inv = torch.where(nonzero, torch.where(nonzero, den, 1.0).reciprocal(), 0.0)
    return torch.where(nonzero, num * inv, 1.0), inv


def first_order_backward(backward):
    """Decorator for the ``backward`` of our autograd functions: they compute the gradient in closed form
    from saved intermediates, which is not itself differentiable. A second-order use (``create_graph=True``,
    e.g. a gradient penalty) raises instead of silently treating the gradient as a constant. The body runs
    without grad and without autocast (fp32 math, whatever the caller's autocast state)."""

    @functools.wraps(backward)
    def wrapper(ctx, *grads):
        if torch.is_grad_enabled():
            raise RuntimeError(
                "dicenlp's dice-family losses (dl, tl, dsc) and focal loss (fl) have a closed-form "
                "first-order backward only: "
                "create_graph=True (double backward) is not supported")
        with torch.no_grad(), torch.autocast(device_type=grads[0].device.type, enabled=False):
            return backward(ctx, *grads)

    return wrapper


def graph_freed_after_backward() -> bool:
    """Inside a custom backward: whether this backward pass frees the graph (``retain_graph`` false), so the
    function's saved buffers can be reused for its output. Uses a private torch function; where that is
    missing or fails, answers False (always safe: the caller then allocates)."""
    keep_graph = getattr(torch._C._autograd, "_get_current_graph_task_keep_graph", None)
    try:
        return keep_graph is not None and not keep_graph()
    except RuntimeError:  # not inside a backward pass
        return False


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


def reduce_positions(values: torch.Tensor, reduction: str) -> torch.Tensor:
    """Per-position losses [N] → scalar: 'mean' (the 1/N of Eqs. 1, 2; 'batch' is the same) or 'sum'.
    N = 0 → 0 (still attached to the graph, so ``backward()`` works)."""
    total = values.sum()
    if reduction == "sum":
        return total
    return total / max(values.shape[0], 1)


class PositionwiseLoss(nn.Module):
    """Base class: ``forward(logits, target, mask=None) -> scalar``; subclasses implement ``_loss(flat)``.

    Autocast is switched off inside the loss and half-precision logits are upcast to fp32, so fp16/bf16
    training computes every loss in fp32 (exp/log of saturated probabilities are not safe in fp16).
    """

    def forward(self, logits: torch.Tensor, target: torch.Tensor, mask: torch.Tensor | None = None) -> torch.Tensor:
        with torch.autocast(device_type=logits.device.type, enabled=False):
            return self._loss(flatten_inputs(logits, target, mask))

    def _loss(self, flat: Flat) -> torch.Tensor:  # pragma: no cover - abstract
        raise NotImplementedError

    def _class_weights(self, flat: Flat) -> torch.Tensor | None:
        w = getattr(self, "class_weights", None)
        if w is None:
            return None
        expected = flat.x.shape[-1] if flat.multiclass else 2
        if w.numel() != expected:
            raise ValueError(f"{type(self).__name__}: {w.numel()} class weights for {expected} classes "
                             "(binary problems take 2 weights: [negative, positive])")
        return w.to(device=flat.x.device, dtype=flat.x.dtype)
