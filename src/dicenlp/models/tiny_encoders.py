"""Tiny random RoBERTa, DeBERTa-v3 and XLM-RoBERTa with tokenizers of their real kinds, built offline.

Registered in ``dicenlp.models.backbone.TINY_BUILDERS`` as ``tiny-roberta``, ``tiny-deberta-v3`` and
``tiny-xlm-roberta``: the smoke-scale stand-ins (``model.tiny``) of ``roberta-*``, ``deberta-v3-*`` and
``xlm-roberta-large``. Each writes a normal Hugging Face model directory, so the test path is the one of the real
encoder: the same model class (2 layers, hidden 32) and the same tokenizer class and special tokens:

* ``tiny-roberta``: byte-level BPE (``RobertaTokenizer``) over the 256 byte symbols, no merges: every character
  is one to four pieces; ``<s> … </s></s> … </s>`` pairs; one token type (type_vocab_size 1), pad id 1.
  Pre-tokenised words need ``add_prefix_space=True`` (configs/model/roberta-base.yaml), as with the real one.
* ``tiny-deberta-v3``: SentencePiece-style Unigram (``DebertaV2Tokenizer``, ``[CLS] … [SEP] … [SEP]``) and no
  token-type embeddings (type_vocab_size 0: the encoder ignores token_type_ids), as deberta-v3-base/large.
* ``tiny-xlm-roberta``: Unigram (``XLMRobertaTokenizer``, RoBERTa's special tokens), with the CJK block for the
  Chinese tasks; one token type.

The Unigram vocabularies reuse tiny-xlnet's hand-written English pieces (``dicenlp.models.tiny_xlnet``).
"""

from __future__ import annotations

from pathlib import Path

from dicenlp.models.tiny_xlnet import XLNET_SPECIALS, tiny_xlnet_vocab

_SIZE = dict(hidden_size=32, num_hidden_layers=2, num_attention_heads=2, intermediate_size=64)


def _unigram_pieces(cjk: bool = False) -> list[tuple[str, float]]:
    """tiny-xlnet's word pieces without its special tokens (+ every CJK character as ``▁c`` and ``c``)."""
    pieces = [(p, s) for p, s in tiny_xlnet_vocab() if p not in XLNET_SPECIALS]
    if cjk:
        pieces += [(prefix + chr(c), -12.0) for c in range(0x4E00, 0xA000) for prefix in ("▁", "")]
    return pieces


def _save(target: Path, tokenizer, model) -> None:
    tokenizer.save_pretrained(target)
    model.save_pretrained(target)


def build_tiny_roberta(target: Path) -> None:
    import torch
    from tokenizers import pre_tokenizers
    from transformers import RobertaConfig, RobertaModel, RobertaTokenizer

    specials = ["<s>", "<pad>", "</s>", "<unk>"]  # RoBERTa's ids 0-3; <mask> last, as in roberta-base
    symbols = sorted(pre_tokenizers.ByteLevel.alphabet())
    vocab = {token: i for i, token in enumerate(specials + symbols + ["<mask>"])}
    tokenizer = RobertaTokenizer(vocab=vocab, merges=[], model_max_length=512)
    config = RobertaConfig(vocab_size=len(vocab), max_position_embeddings=514, type_vocab_size=1,
                           pad_token_id=tokenizer.pad_token_id, bos_token_id=0, eos_token_id=2, **_SIZE)
    torch.manual_seed(0)  # the same "random" tiny model on every machine
    _save(target, tokenizer, RobertaModel(config))


def build_tiny_deberta_v3(target: Path) -> None:
    import torch
    from transformers import DebertaV2Config, DebertaV2Model, DebertaV2Tokenizer

    specials = [("[PAD]", 0.0), ("[CLS]", 0.0), ("[SEP]", 0.0), ("[UNK]", 0.0), ("[MASK]", 0.0)]  # deberta-v3's ids
    tokenizer = DebertaV2Tokenizer(vocab=specials + _unigram_pieces(), unk_id=3, model_max_length=512)
    config = DebertaV2Config(vocab_size=len(tokenizer), max_position_embeddings=512, type_vocab_size=0,
                             relative_attention=True, position_buckets=256, pos_att_type=["p2c", "c2p"],
                             position_biased_input=False, norm_rel_ebd="layer_norm", share_att_key=True,
                             pad_token_id=tokenizer.pad_token_id, **_SIZE)
    torch.manual_seed(0)
    _save(target, tokenizer, DebertaV2Model(config))


def build_tiny_xlm_roberta(target: Path) -> None:
    import torch
    from transformers import XLMRobertaConfig, XLMRobertaModel, XLMRobertaTokenizer

    specials = [("<s>", 0.0), ("<pad>", 0.0), ("</s>", 0.0), ("<unk>", 0.0)]  # XLM-R's ids 0-3
    tokenizer = XLMRobertaTokenizer(vocab=specials + _unigram_pieces(cjk=True) + [("<mask>", 0.0)],
                                    model_max_length=512)
    config = XLMRobertaConfig(vocab_size=len(tokenizer), max_position_embeddings=514, type_vocab_size=1,
                              pad_token_id=tokenizer.pad_token_id, bos_token_id=0, eos_token_id=2, **_SIZE)
    torch.manual_seed(0)
    _save(target, tokenizer, XLMRobertaModel(config))
