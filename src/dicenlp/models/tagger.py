"""BERT-Tagger (Devlin et al. 2019; PAPER.md §3.1): encoder → dropout → linear layer over every sub-token.

    h = encoder(input_ids)                [B, L, H]
    logits = W · dropout(h) + b           [B, L, C]    C = number of POS labels (or BIES×POS labels)

Training labels sit on the first sub-token of each word (or character) and are -100 elsewhere, so the
loss (``TaggingTask.compute_loss``) sees exactly one position per word. POS is a multi-class decision,
so the head is a C-way softmax for every loss; the dice family is applied one-vs-rest per class inside
the loss (``dicenlp.losses``), which is the only sensible reading of the paper for multi-class tags
(PAPER.md §2.9 [NF]). Predictions are ``argmax`` over C.
"""

from __future__ import annotations

from typing import Mapping

import torch
from torch import nn

from dicenlp.models.base import EncoderWithHead


class BertTagger(EncoderWithHead):
    """Token-classification head on any ``AutoModel`` encoder; ``forward(batch) -> {"logits": [B, L, C]}``.

    Args:
        encoder: a Hugging Face encoder (``last_hidden_state`` [B, L, H]).
        num_labels: C.
        dropout: dropout before the linear layer; ``None`` takes the encoder's ``classifier_dropout`` or
            ``hidden_dropout_prob`` (as ``BertForTokenClassification``), else 0.1.
    """

    def __init__(self, encoder: nn.Module, num_labels: int, dropout: float | None = None) -> None:
        super().__init__(encoder)
        if dropout is None:
            config = encoder.config
            dropout = getattr(config, "classifier_dropout", None)
            if dropout is None:
                dropout = getattr(config, "hidden_dropout_prob", 0.1)
        self.num_labels = num_labels
        self.dropout = nn.Dropout(dropout)
        self.classifier = nn.Linear(self.hidden_size, num_labels)
        std = getattr(encoder.config, "initializer_range", 0.02)
        nn.init.normal_(self.classifier.weight, std=std)
        nn.init.zeros_(self.classifier.bias)

    def forward(self, batch: Mapping[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        return {"logits": self.classifier(self.dropout(self.encode(batch)))}
