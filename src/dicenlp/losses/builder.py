"""``build_loss``: a loss from its paper abbreviation (or a preset name) and keyword parameters."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from torch import nn

from .cross_entropy import CrossEntropyLoss, WeightedCrossEntropyLoss
from .dice import DiceLoss, SelfAdjustingDiceLoss, TverskyLoss
from .focal import FocalLoss

#: Paper abbreviation → class (PAPER.md Table 2).
LOSSES: dict[str, type[nn.Module]] = {
    "ce": CrossEntropyLoss,
    "wce": WeightedCrossEntropyLoss,
    "fl": FocalLoss,
    "dl": DiceLoss,
    "tl": TverskyLoss,
    "dsc": SelfAdjustingDiceLoss,
}

#: Named settings: preset name → (loss name, parameters). Explicit keyword arguments override them.
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
    try:  # OmegaConf is optional for plain-PyTorch users
        from omegaconf import DictConfig, OmegaConf
    except ImportError:  # pragma: no cover
        DictConfig = ()
    if DictConfig and isinstance(cfg, DictConfig):
        return dict(OmegaConf.to_container(cfg, resolve=True))
    if isinstance(cfg, Mapping):
        return dict(cfg)
    raise TypeError(f"build_loss expects a loss name or a mapping with a 'name' key, got {type(cfg).__name__}")


def build_loss(name_or_cfg: str | Mapping[str, Any], **params: Any) -> nn.Module:
    """Build a loss module.

    ``build_loss("dsc", alpha=0.01)``, ``build_loss({"name": "dl", "smooth": 1.0})``,
    ``build_loss(cfg.loss)`` (an OmegaConf node with ``name``), ``build_loss("dsc_official")`` (a preset
    from ``PRESETS``). Keyword arguments override the mapping's / preset's values. Unknown parameter
    names raise ``TypeError`` naming the accepted ones (a typo must not silently fall back to a default).
    """
    if isinstance(name_or_cfg, str):
        name, cfg_params = name_or_cfg, {}
    else:
        cfg_params = _to_dict(name_or_cfg)
        if "name" not in cfg_params:
            raise ValueError(f"loss config has no 'name' key: {cfg_params}")
        name = cfg_params.pop("name")
    key = str(name).lower()
    merged: dict[str, Any] = {}
    if key in PRESETS:
        key, preset = PRESETS[key]
        merged.update(preset)
    merged.update(cfg_params)
    merged.update(params)
    if key not in LOSSES:
        raise ValueError(f"unknown loss {name!r}; expected one of {sorted(LOSSES)} or a preset {sorted(PRESETS)}")
    cls = LOSSES[key]
    try:
        return cls(**merged)
    except TypeError as err:
        import inspect

        accepted = [p for p in inspect.signature(cls.__init__).parameters if p != "self"]
        raise TypeError(f"loss {key!r} ({cls.__name__}) got bad parameters {sorted(merged)}: {err}; "
                        f"accepted: {accepted}") from err
