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


class EncoderWithHead(nn.Module):
    """``encoder`` (any ``AutoModel``) + task head; ``encode(batch)`` gives ``[B, L, H]`` hidden states."""

    def __init__(self, encoder: nn.Module) -> None:
        super().__init__()
        self.encoder = encoder
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
