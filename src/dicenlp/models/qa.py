"""Span QA head: start and end scores for every token of an encoder's output (SQuAD, QuoRef).

``SpanQAModel(encoder, output_form)`` = any ``AutoModel`` encoder + one linear layer on the last hidden states
(the head of ``BertForQuestionAnswering`` / ``XLNetForQuestionAnsweringSimple``, and of the official code's
``BertQueryNER``-style QA model without its unused MLP option). ``output_form`` is the loss's ``span_head``:

* ``"positions"`` (``ce``): one logit per token for start and for end, ``[B, L]`` each; the loss is a softmax
  over the positions of a sequence (the standard objective, Seo et al. 2016 / BERT).
* ``"sigmoid"`` (``dl``, ``tl``, ``dsc``): one logit per token, ``[B, L]``, read as an independent binary
  decision "this token starts (ends) the answer" through a sigmoid (the official dice code).
* ``"softmax"`` (``fl``, ``wce``): two logits per token, ``[B, L, 2]``, the same binary decision as a 2-way
  softmax (the loss's ``binary_head``, as in every task).

The head's weights start like Hugging Face's QA heads (normal with the encoder's ``initializer_range``, zero bias).
"""

from __future__ import annotations

import inspect
from typing import Mapping

import torch
from torch import nn

from dicenlp.models.base import ENCODER_INPUTS, EncoderWithHead

QA_OUTPUT_FORMS = ("positions", "sigmoid", "softmax")


class SpanQAModel(EncoderWithHead):
    """Encoder + linear start/end head; ``forward(batch) -> {"start_logits", "end_logits"}`` (see module doc)."""

    def __init__(self, encoder: nn.Module, output_form: str) -> None:
        super().__init__(encoder)
        if output_form not in QA_OUTPUT_FORMS:
            raise ValueError(f"unknown output_form {output_form!r}; expected one of {QA_OUTPUT_FORMS}")
        self.output_form = output_form
        self.logits_per_token = 2 if output_form == "softmax" else 1
        self.qa_outputs = nn.Linear(self.hidden_size, 2 * self.logits_per_token)
        nn.init.normal_(self.qa_outputs.weight, std=float(getattr(encoder.config, "initializer_range", 0.02)))
        nn.init.zeros_(self.qa_outputs.bias)
        # DistilBERT-like encoders take no token_type_ids; XLNet and BERT do (XLNet: segment ids 0/1/2).
        accepted = inspect.signature(encoder.forward).parameters
        self._inputs = tuple(k for k in ENCODER_INPUTS if k in accepted)

    def encode(self, batch: Mapping[str, torch.Tensor]) -> torch.Tensor:
        return self.encoder(**{k: batch[k] for k in self._inputs if k in batch}).last_hidden_state

    def forward(self, batch: Mapping[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        logits = self.qa_outputs(self.encode(batch))  # [B, L, 2 * logits_per_token]
        if self.logits_per_token == 1:
            start, end = logits.unbind(-1)  # [B, L] each
        else:
            start, end = logits[..., :2], logits[..., 2:]  # [B, L, 2] each
        return {"start_logits": start.contiguous(), "end_logits": end.contiguous()}
