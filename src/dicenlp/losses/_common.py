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

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

IGNORE_INDEX = -100

#: Fill value for "excluded" entries inside a logsumexp: finite, so that a row whose other entries are all
#: -inf (impossible classes filled with -inf by the caller) gives a finite result; with -inf the backward
#: of logsumexp would compute 0 * exp(-inf - (-inf)) = NaN.
_EXCLUDED = -1e30


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


def log1m_softmax_at(logp: torch.Tensor, index: torch.Tensor) -> torch.Tensor:
    """log(1 - p_{i, index_i}) → [N] as a ``logsumexp`` of log p over the *other* classes: exact and finite
    for any logits (used for rows whose probabilities underflow). Args: logp = log_softmax [N, C], index [N]."""
    return logp.scatter(-1, index[:, None], _EXCLUDED).logsumexp(-1)


@dataclass
class SoftmaxParts:
    """Softmax pieces for exact powers of (1 - p) (DSC's weight, FL's factor). All from ``softmax_parts``.

    ``(1 - p)**a`` has d/dp = -a(1-p)^(a-1), infinite where p rounds to 1 (fp32 at a logit gap of ~17,
    fp16 at ~8.5): the official code gets NaN gradients there. We never form 1 - p for such an entry.
    At most one entry per row has p > 1/2 (the "big" one, column ``T``); every other entry has
    1 - p >= 1/2, so log(1 - p) is exact there. For the big entry, log(1 - p_T) = log Σ_{j≠T} p_j, the
    row sum of ``small`` (p with the big entry zeroed): positive terms, no cancellation; rows where that
    sum underflows (every other class beyond ~87 logits below in fp32) use a logsumexp instead.
    """

    logp: torch.Tensor  # [N, C] log_softmax
    p: torch.Tensor  # [N, C] softmax
    small: torch.Tensor  # [N, C] p with the big entry set to 0
    T: torch.Tensor  # [N] long: column of the big entry (0 where the row has none)
    has_big: torch.Tensor  # [N] bool
    log_q_T: torch.Tensor  # [N] exact log(1 - p_T) where has_big (0 elsewhere)

    def log1m_small(self) -> torch.Tensor:
        """[N, C] log(1 - p), exact except at big entries, where it is 0 (replace those via T / log_q_T).
        The big entry is zeroed *before* the log, so its backward never sees 1 - p ~ 0 (0 * inf)."""
        return torch.log(1 - self.small)  # (log of 1 - p >= 1/2; ~2x faster than log1p(-p) on CPU)

    def log1m_at(self, index: torch.Tensor, p_i: torch.Tensor) -> torch.Tensor:
        """[N] exact log(1 - p_{i, index_i}); ``p_i`` = p at ``index`` [N] (the caller has it gathered)."""
        naive = torch.log(1 - torch.where(self.has_big & (index == self.T), 0.0, p_i))
        return torch.where(self.has_big & (index == self.T), self.log_q_T, naive)


def softmax_parts(x: torch.Tensor) -> SoftmaxParts:
    """See :class:`SoftmaxParts`. ``x``: [N, C] logits. All [N, C] work is elementwise or a row sum."""
    logp = x.log_softmax(-1)
    p = logp.exp()
    C = x.shape[-1]
    not_big = (p.detach() <= 0.5).to(x.dtype)  # float masks: bool where/masked_fill are slow on CPU
    small = p * not_big
    has_big = not_big.sum(-1) < C - 0.5
    if C <= 4096:  # sums of integers below 2^24: exact in fp32
        # T = Σ_j j·[p_j > 1/2] = C(C-1)/2 - Σ_j j·not_big_j: a matrix-vector product (torch's CPU argmax
        # over a short last dim is ~10x slower); 0 for rows without a big entry
        T = (C * (C - 1) / 2 - not_big @ torch.arange(C, dtype=x.dtype, device=x.device)).round().long()
    else:
        T = torch.where(has_big, p.detach().argmax(-1), 0)
    tiny = torch.finfo(x.dtype).tiny
    q_T = small.sum(-1)
    log_q_T = torch.where(has_big, torch.log(q_T.clamp(min=tiny)), 0.0)
    under = has_big & (q_T < tiny)
    if bool(under.any()):
        rows = under.nonzero().squeeze(1)
        log_q_T = log_q_T.index_put((rows,), log1m_softmax_at(logp[rows], T[rows]))
    return SoftmaxParts(logp=logp, p=p, small=small, T=T, has_big=has_big, log_q_T=log_q_T)


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
