"""``build_loss``: a loss from its formula's name (``kind``), a preset, or a loss config, plus keyword parameters."""

from __future__ import annotations

import inspect
from collections.abc import Callable, Mapping
from typing import Any

from .base import Loss
from .cross_entropy import CrossEntropyLoss, WeightedCrossEntropyLoss
from .dice import DiceLoss, SelfAdjustingDiceLoss, TverskyLoss
from .focal import FocalLoss

#: The formulas by their paper abbreviation (PAPER.md Table 2).
LOSSES: dict[str, type[Loss]] = {
    "ce": CrossEntropyLoss,
    "wce": WeightedCrossEntropyLoss,
    "fl": FocalLoss,
    "dl": DiceLoss,
    "tl": TverskyLoss,
    "dsc": SelfAdjustingDiceLoss,
}

#: Named settings: preset name → (formula, parameters). Explicit parameters override them.
PRESETS: dict[str, tuple[str, dict[str, Any]]] = {
    # The official scripts' dice (ShannonAI/dice_loss_for_NLP, every dice script: --dice_square,
    # DICE_ALPHA=0.01, dice_smooth 1), without its bugs: one set-level ratio over the unmasked positions.
    # Some NER scripts add --dice_ohem 0.3 (pass ohem_ratio=0.3).
    "dsc_official": ("dsc", dict(alpha=0.01, smooth=1.0, square_denominator=True, reduction="batch",
                                 ohem_ratio=0.0)),
    # Eq. 12 exactly as printed in the ACL paper: per example, weight (1 - p)^1, linear denominator.
    "dsc_paper": ("dsc", dict(alpha=1.0, smooth=1.0, square_denominator=False, reduction="mean",
                              ohem_ratio=0.0)),
}


def _to_dict(cfg: Any) -> dict[str, Any]:
    if type(cfg).__module__.startswith("omegaconf"):  # a Hydra node (OmegaConf stays optional for PyTorch users)
        from omegaconf import OmegaConf

        return OmegaConf.to_container(cfg, resolve=True)
    if isinstance(cfg, Mapping):
        return dict(cfg)
    raise TypeError(f"build_loss expects a loss name or a mapping with a 'kind' or 'name' key, got {type(cfg).__name__}")


def build_loss(name_or_cfg: str | Mapping[str, Any], *, label_counts: Any | Callable[[], Any] = None,
               **params: Any) -> Loss:
    """A loss module: ``build_loss("dsc", alpha=0.01)``, ``build_loss("dsc_official")`` (a preset),
    ``build_loss({"kind": "dl", "smooth": 1.0})``, ``build_loss(cfg.loss)`` (a Hydra node).

    A config's ``kind`` is the formula (a name of ``LOSSES`` or ``PRESETS``); its ``name`` is the variant the run
    chose (``dsc_paper``, a user's own), kept as ``loss.name`` for recording, and the formula when there is no
    ``kind``. Keyword parameters override the config's and the preset's; an unknown one raises ``TypeError``
    naming the accepted ones (a typo must not fall back to a default). ``label_counts``: the training-label
    counts per class, or a function returning them, used (called) only by a loss that derives class weights
    from them: ``wce`` without ``class_weights``. ``binary_head`` (any loss): the head of a binary decision,
    ``"sigmoid"`` (1 logit) or ``"softmax"`` (2 logits; the dice family then averages the dices of both classes);
    None = the formula's own (CE: softmax, dice family: sigmoid as in the official code).
    """
    if isinstance(name_or_cfg, str):
        name = kind = name_or_cfg
        merged: dict[str, Any] = {}
    else:
        cfg = _to_dict(name_or_cfg)
        name, kind = cfg.pop("name", None), cfg.pop("kind", None)
        kind = kind if kind is not None else name
        if kind is None:
            raise ValueError(f"loss config has no 'kind' (or 'name') key: {cfg}")
        merged = cfg
    key = str(kind).lower()
    if key in PRESETS:
        key, preset = PRESETS[key]
        merged = {**preset, **merged}
    merged.update(params)
    binary_head = merged.pop("binary_head", None)
    if binary_head not in (None, "sigmoid", "softmax"):
        raise ValueError(f"binary_head must be 'sigmoid', 'softmax' or null (the formula's own), not {binary_head!r}")
    if key not in LOSSES:
        raise ValueError(f"unknown loss {kind!r}; expected one of {sorted(LOSSES)} or a preset {sorted(PRESETS)}")
    cls = LOSSES[key]
    if cls is WeightedCrossEntropyLoss and merged.get("class_weights") is None and merged.get("label_counts") is None \
            and label_counts is not None:
        merged["label_counts"] = label_counts() if callable(label_counts) else label_counts
    try:
        loss = cls(**merged)
    except TypeError as err:
        accepted = [p for p in inspect.signature(cls.__init__).parameters if p != "self"]
        raise TypeError(f"loss {key!r} ({cls.__name__}) got bad parameters {sorted(merged)}: {err}; "
                        f"accepted: {accepted}") from err
    loss.name = str(name if name is not None else kind)
    if binary_head is not None:
        loss.binary_head = binary_head
    return loss
