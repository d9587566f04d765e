"""Online hard example mining (OHEM) for the dice family: which negatives count."""

from __future__ import annotations

import torch


def ohem_keep(p: torch.Tensor, y: torch.Tensor, ratio: float, valid: torch.Tensor | None = None) -> torch.Tensor:
    """Online hard negative mining, per unit: keep every positive and the k hardest negatives.

    k_u = min(#negatives_u, floor(ratio · #positives_u)); "hardest" = highest probability p_iu of the
    unit's positive class. Vectorised: one ``topk`` along positions for all units at once (k differs per
    unit: take the top max_u k_u and keep the first k_u of each column). Ties at the k-th score are broken
    as ``topk`` does (the CPU kernels of ``_dice_kernels.c`` take the first rows) but exactly k_u negatives
    are kept. This reads max_u k_u back to the host (one device sync).

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
    if p.shape[1] == 1:  # one unit: k_max = k, every index of the top k is kept (unsorted is 2x faster)
        top = scores.topk(k_max, dim=0, sorted=False).indices
        return pos.scatter(0, top, True)
    top = scores.topk(k_max, dim=0, sorted=True).indices  # [k_max, U], hardest first
    take = torch.arange(k_max, device=p.device)[:, None] < k[None, :]
    return pos | torch.zeros_like(pos).scatter_(0, top, take)


def ohem_counts(t: torch.Tensor, num_classes: int, ratio: float) -> tuple[torch.Tensor, torch.Tensor]:
    """One-hot OHEM's counts per class: (#positives, k = min(#negatives, floor(ratio · #positives))), [C] each."""
    n_pos = torch.bincount(t, minlength=num_classes)
    # +1e-9: floor(0.29 * 100) must be 29, not 28 (0.29 * 100 = 28.999999999999996 in binary floating point)
    k = torch.minimum(t.shape[0] - n_pos, torch.floor(n_pos.double() * ratio + 1e-9).long())
    return n_pos, k


def ohem_keep_onehot(p: torch.Tensor, t: torch.Tensor, ratio: float) -> torch.Tensor:
    """:func:`ohem_keep` for one-hot targets, as a float keep mask [N, C] (the multi-class case).

    Same selection as ``ohem_keep(p, one_hot(t), ratio)``: per class c, every position with t_i = c and the
    k_c = min(#negatives, floor(ratio · #positives)) negatives with the highest p_ic; cheaper because the
    positives are the target entries (counts by ``bincount``, no [N, C] boolean masks).
    Args: p [N, C] probabilities (detached inside), t [N] class ids.
    """
    C = p.shape[1]
    k = ohem_counts(t, C, ratio)[1]
    k_max = int(k.max()) if C else 0
    scores = p.detach().scatter(1, t[:, None], -1.0)  # positives below every negative
    top = scores.topk(k_max, dim=0, sorted=True).indices  # [k_max, C], hardest first
    take = (torch.arange(k_max, device=p.device)[:, None] < k[None, :]).to(p.dtype)  # first k_c of column c
    keep = torch.zeros_like(p).scatter_(0, top, take)
    return keep.scatter_(1, t[:, None], 1.0)
