"""The common frame of every task model: a Hugging Face encoder plus a small task head.

Task models subclass ``EncoderWithHead``, add their head modules in ``__init__`` and implement
``forward(batch) -> dict of logits``. Saving writes a normal Hugging Face directory for the encoder
(``save_pretrained``, safetensors) and the head's weights next to it, so the encoder of a run can be
reloaded with ``AutoModel.from_pretrained(<run>/checkpoint/encoder)``.
"""

from __future__ import annotations

from pathlib import Path
from typing import Mapping

import torch
from safetensors.torch import load_file, save_file
from torch import nn

#: Batch keys passed to the encoder when present (XLNet has no ``token_type_ids`` for some tokenizers).
ENCODER_INPUTS = ("input_ids", "attention_mask", "token_type_ids")


def drop_unused_parameters(encoder: nn.Module, keep_pooler: bool = False) -> nn.Module:
    """Remove what no task head uses, so that every trainable parameter gets a gradient at every step (DDP then
    runs without ``find_unused_parameters``, which costs a graph traversal per step, and AdamW skips nothing):

    * the pooler (``tanh(W h_[CLS] + b)`` of BERT, RoBERTa, XLM-R ...), unless ``keep_pooler`` (the sequence
      classifier's summary): the same as loading with ``add_pooling_layer=False``, and not computed;
    * XLNet's ``mask_emb``, the query stream's embedding of permutation-LM pre-training (used only with
      ``target_mapping``): frozen (kept in the weights, so that the encoder still saves and loads as XLNet).
    """
    if not keep_pooler and getattr(encoder, "pooler", None) is not None:
        encoder.pooler = None
    mask_emb = getattr(encoder, "mask_emb", None)
    if isinstance(mask_emb, nn.Parameter):
        mask_emb.requires_grad_(False)
    return encoder


class EncoderWithHead(nn.Module):
    """``encoder`` (any ``AutoModel``) + task head; ``encode(batch)`` gives ``[B, L, H]`` hidden states. The
    encoder's parameters that the head does not use are dropped (``drop_unused_parameters``)."""

    def __init__(self, encoder: nn.Module, uses_pooler: bool = False) -> None:
        super().__init__()
        self.encoder = drop_unused_parameters(encoder, keep_pooler=uses_pooler)
        self.hidden_size = encoder.config.hidden_size if hasattr(encoder.config, "hidden_size") else encoder.config.d_model

    def encode(self, batch: Mapping[str, torch.Tensor]) -> torch.Tensor:
        inputs = {k: batch[k] for k in ENCODER_INPUTS if k in batch}
        return self.encoder(**inputs).last_hidden_state

    def head_state_dict(self) -> dict[str, torch.Tensor]:
        return {k: v for k, v in self.state_dict().items() if not k.startswith("encoder.")}

    def save_pretrained(self, directory: str | Path, tokenizer=None) -> None:
        """Encoder with ``save_pretrained`` (safetensors) in ``directory/encoder``; head in ``head.safetensors``."""
        directory = Path(directory)
        directory.mkdir(parents=True, exist_ok=True)
        self.encoder.save_pretrained(directory / "encoder")
        if tokenizer is not None:
            tokenizer.save_pretrained(directory / "encoder")
        save_file({k: v.detach().contiguous().cpu() for k, v in self.head_state_dict().items()},
                  str(directory / "head.safetensors"))

    def load_head(self, directory: str | Path) -> None:
        missing, unexpected = self.load_state_dict(load_file(str(Path(directory) / "head.safetensors")), strict=False)
        unexpected = [k for k in unexpected if not k.startswith("encoder.")]
        if unexpected:
            raise ValueError(f"head weights in {directory} do not fit this model: unexpected {unexpected}")
