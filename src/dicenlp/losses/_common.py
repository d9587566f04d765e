"""Shared plumbing of every loss: shape convention, masking, precision, stable log-probabilities.

Shape convention (PAPER.md §2.1 generalised):
  * binary:      ``logits.shape == target.shape`` (one logit per position, sigmoid), target in [0, 1]
                 (hard labels {0, 1}; soft labels work in every formula). ``logits`` of shape
                 ``[..., 1]`` with ``target`` of shape ``[...]`` is also read as binary.
  * multi-class: ``logits`` is ``[..., C]`` (C >= 2, softmax over the last dim), ``target`` is ``[...]``
                 of integer class ids.
A position is ignored when ``target == -100`` or ``mask == 0`` (``mask`` has the target's shape).
Ignored positions never reach a formula: their logits are replaced by 0 *before* any arithmetic
(``torch.where``), so their gradient is exactly 0 even when their logits are NaN or infinite.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

IGNORE_INDEX = -100

#: Logits below this are clamped (multi-class only). A finite floor keeps ``logsumexp`` over the
#: non-argmax classes finite when a caller fills impossible classes with ``-inf`` (e.g. question tokens
#: in a softmax over positions): with a row of ``-inf`` its backward would compute 0 * NaN.
_LOGIT_FLOOR = -1e30


@dataclass
class Flat:
    """Flattened, validated inputs. ``x``: [N] (binary) or [N, C] (multi-class) logits in the compute
    dtype; ``y``: [N] float targets (binary) or long class ids (multi-class), 0 at ignored positions;
    ``valid``: [N] bool."""

    x: torch.Tensor
    y: torch.Tensor
    valid: torch.Tensor
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
    x = logits.to(dtype)
    valid = target != IGNORE_INDEX
    if mask is not None:
        valid = valid & (mask != 0)
    valid = valid.reshape(-1)
    if multiclass:
        num_classes = x.shape[-1]
        x = x.reshape(-1, num_classes)
        if target.dtype.is_floating_point or target.dtype == torch.bool:
            raise TypeError(f"multi-class target must hold integer class ids, got {target.dtype}")
        y = torch.where(valid, target.reshape(-1), 0).long()
        if bool(((y < 0) | (y >= num_classes)).any()):
            bad = target.reshape(-1)[(y < 0) | (y >= num_classes)][0].item()
            raise ValueError(f"target holds class id {bad}, outside [0, {num_classes}) (and not -100)")
        x = torch.where(valid[:, None], x, 0.0).clamp(min=_LOGIT_FLOOR)
    else:
        x = x.reshape(-1)
        y = torch.where(valid, target.reshape(-1).to(dtype), 0.0)
        if bool(((y < 0) | (y > 1)).any()):
            bad = y[(y < 0) | (y > 1)][0].item()
            raise ValueError(f"binary target must lie in [0, 1] (or be -100), got {bad}")
        x = torch.where(valid, x, 0.0)
    return Flat(x=x, y=y, valid=valid, multiclass=multiclass)


def log_probs(flat: Flat, need_log1mp: bool = True) -> tuple[torch.Tensor, torch.Tensor | None]:
    """``(log p, log(1 - p))`` per position and unit, both ``[N, U]`` (U = 1 binary, C multi-class).

    Both are computed in log space from the logits so that ``(1 - p)**a`` for any a > 0 keeps a finite
    gradient with respect to the logits even where p rounds to exactly 1 (fp32 at logit ~17, fp16 at
    ~8.5): d(1-p)^a/dp = -a(1-p)^(a-1) is infinite at p = 1, but d/dlogit is finite and is what we use.
      * binary: log p = logsigmoid(x), log(1-p) = logsigmoid(-x) (exact for |x| up to the float range).
      * multi-class: log p = log_softmax(x). For a class that is not the row's argmax, p <= 1/2, so
        log1p(-p) is accurate; for the argmax class, log(1-p) = log of the sum of the *other* classes'
        probabilities (logsumexp over them), which has no cancellation when p -> 1.
    """
    if not flat.multiclass:
        logp = F.logsigmoid(flat.x)[:, None]
        return logp, (F.logsigmoid(-flat.x)[:, None] if need_log1mp else None)
    logp = flat.x.log_softmax(-1)
    if not need_log1mp:
        return logp, None
    top = flat.x.argmax(-1, keepdim=True)
    is_top = torch.zeros_like(logp, dtype=torch.bool).scatter_(-1, top, True)
    log_rest = logp.masked_fill(is_top, float("-inf")).logsumexp(-1, keepdim=True)
    # where() before log1p: the argmax entry must not see p = 1 (its backward would give 0 * inf = NaN).
    p_others = torch.where(is_top, 0.0, logp.exp())
    log1mp = torch.where(is_top, log_rest, torch.log1p(-p_others))
    return logp, log1mp


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


def masked_mean(values: torch.Tensor, valid: torch.Tensor, reduction: str) -> torch.Tensor:
    """Per-position losses ``values`` [N] → scalar: 'mean' over valid positions (the 1/N of Eqs. 1, 2)
    or 'sum'. No valid position → 0 (still attached to the graph, so ``backward()`` works)."""
    total = torch.where(valid, values, 0.0).sum()
    if reduction == "sum":
        return total
    return total / valid.sum().clamp(min=1).to(values.dtype)


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
