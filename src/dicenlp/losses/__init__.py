"""The losses of "Dice Loss for Data-imbalanced NLP Tasks" (Li et al., ACL 2020) as plain ``nn.Module``s.

    from dicenlp.losses import build_loss
    loss_fn = build_loss("dsc", alpha=0.01)          # or build_loss(cfg.loss), build_loss("dsc_official")
    loss = loss_fn(logits, target, mask=None)         # scalar; loss_fn.binary_head: "sigmoid" or "softmax"

Binary: ``logits.shape == target.shape`` (one logit per position, sigmoid), target in {0, 1}; multi-class:
``logits`` [..., C] (softmax), ``target`` [...] class ids, the dice family (dl, tl, dsc) one-vs-rest per class,
averaged over classes; ``target == -100`` or ``mask == 0``: ignored, with exactly zero gradient. Names (PAPER.md
Table 2): ce, wce, fl, dl, tl, dsc; each a few lines of PyTorch that read like the paper's equation, in log space,
differentiated by autograd (double backward and ``torch.compile(fullgraph=True)`` work). docs/losses.md.
"""

from .base import Loss
from .builder import LOSSES, PRESETS, build_loss
from .cross_entropy import CrossEntropyLoss, WeightedCrossEntropyLoss, count_labels, wce_class_weights
from .dice import DiceLoss, SelfAdjustingDiceLoss, TverskyLoss, ohem_keep
from .focal import FocalLoss

__all__ = ["LOSSES", "PRESETS", "build_loss", "Loss", "CrossEntropyLoss", "WeightedCrossEntropyLoss", "FocalLoss",
           "DiceLoss", "TverskyLoss", "SelfAdjustingDiceLoss", "count_labels", "wce_class_weights", "ohem_keep"]
