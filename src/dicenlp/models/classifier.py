"""Sequence(-pair) classifier (PAPER.md §3.4–3.6: MRPC, QQP, SST-2, SST-5): summary vector → dropout → linear.

    h = encoder(input_ids, token_type_ids, attention_mask)        [B, L, H]
    s = summary(h)                                                [B, H]
    logits = W · dropout(s) + b                                   [B, K]

The summary vector follows the encoder family, read from its config rather than assumed:

* ``"pooler"`` (BERT and other encoders with a pre-trained pooler): ``tanh(W_p h_[CLS] + b_p)``, the encoder's
  own ``pooler_output``, as ``BertForSequenceClassification`` and the official MRPC code use;
* ``"last"`` (XLNet: ``config.summary_type == "last"``): the hidden state of the *last real* token, which is
  XLNet's ``<cls>`` (XLNet appends ``<cls>`` and pads on the left), then a new ``tanh(W h + b)`` projection,
  as XLNet's ``SequenceSummary`` (``summary_use_proj``, ``summary_activation="tanh"``);
* ``"first"`` (any other encoder): the first token's hidden state, then a new ``tanh(W h + b)`` projection.

The last real token is found from the attention mask (``cumsum(mask).argmax``), so it is right for left and
right padding alike.

K, the number of outputs, comes from the task × loss rule in ``dicenlp.tasks.classification.num_outputs``
(1 logit + sigmoid for a binary task under the dice family, otherwise one logit per class).
"""

from __future__ import annotations

from typing import Mapping

import torch
from torch import nn

from dicenlp.models.base import ENCODER_INPUTS, EncoderWithHead

POOLINGS = ("pooler", "last", "first")


def pooling_for(encoder: nn.Module) -> str:
    """The summary an encoder's own sequence-classification model uses (see the module docstring)."""
    if getattr(encoder.config, "summary_type", None) == "last":
        return "last"
    if getattr(encoder, "pooler", None) is not None:
        return "pooler"
    return "first"


def last_token_index(attention_mask: torch.Tensor) -> torch.Tensor:
    """Index of the last position with mask 1 in each row, ``[B]`` (left or right padding)."""
    return attention_mask.long().cumsum(dim=-1).argmax(dim=-1)


def head_dropout(config, dropout: float | None) -> float:
    """``dropout`` if given, else the encoder's classifier / hidden / summary dropout (0.1 if none)."""
    if dropout is not None:
        return float(dropout)
    for key in ("classifier_dropout", "hidden_dropout_prob", "summary_last_dropout", "dropout"):
        value = getattr(config, key, None)
        if isinstance(value, (int, float)):
            return float(value)
    return 0.1


class SequenceClassifier(EncoderWithHead):
    """``forward(batch) -> {"logits": [B, num_outputs]}``.

    Args:
        encoder: any Hugging Face ``AutoModel`` encoder.
        num_outputs: 1 (one logit, sigmoid) or C (softmax over C classes).
        dropout: dropout on the summary vector; None = the encoder's (``head_dropout``).
        pooling: ``pooler`` | ``last`` | ``first``; None = ``pooling_for(encoder)``.
    """

    def __init__(self, encoder: nn.Module, num_outputs: int, dropout: float | None = None,
                 pooling: str | None = None) -> None:
        pooling = pooling or pooling_for(encoder)
        super().__init__(encoder, uses_pooler=pooling == "pooler")
        self.pooling = pooling
        if self.pooling not in POOLINGS:
            raise ValueError(f"unknown pooling {self.pooling!r}; expected one of {POOLINGS}")
        if self.pooling == "pooler" and getattr(encoder, "pooler", None) is None:
            raise ValueError(f"pooling='pooler' needs an encoder with a pooler ({type(encoder).__name__} has none)")
        std = getattr(encoder.config, "initializer_range", 0.02)
        self.summary = None
        if self.pooling != "pooler":
            self.summary = nn.Linear(self.hidden_size, self.hidden_size)
            nn.init.normal_(self.summary.weight, std=std)
            nn.init.zeros_(self.summary.bias)
        self.num_outputs = int(num_outputs)
        self.dropout = nn.Dropout(head_dropout(encoder.config, dropout))
        self.classifier = nn.Linear(self.hidden_size, self.num_outputs)
        nn.init.normal_(self.classifier.weight, std=std)
        nn.init.zeros_(self.classifier.bias)

    def summarize(self, batch: Mapping[str, torch.Tensor]) -> torch.Tensor:
        """The ``[B, H]`` summary vector."""
        inputs = {k: batch[k] for k in ENCODER_INPUTS if k in batch}
        out = self.encoder(**inputs)
        if self.pooling == "pooler":
            return out.pooler_output
        hidden = out.last_hidden_state
        if self.pooling == "last":
            index = last_token_index(batch["attention_mask"])
            vector = hidden[torch.arange(hidden.shape[0], device=hidden.device), index]
        else:
            vector = hidden[:, 0]
        return torch.tanh(self.summary(vector))

    def forward(self, batch: Mapping[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        return {"logits": self.classifier(self.dropout(self.summarize(batch)))}
