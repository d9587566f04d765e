"""Tokenizer + encoder loading: any Hugging Face model name or local directory, or a tiny offline model.

``load_backbone("bert-base-cased")`` and ``load_backbone("/path/to/model_dir")`` use
``AutoTokenizer``/``AutoModel`` (the Hub when reachable, the local cache or directory otherwise).
Names starting with ``tiny-`` build a small *random* model from a config in this repository, with a
tokenizer built from a vocabulary generated here, so every command and test runs offline on a CPU:

* ``tiny-bert``: 2-layer BERT, hidden 32, a WordPiece vocabulary of special tokens, ASCII characters
  (whole and ``##`` continuation), common punctuation and the CJK Unified Ideographs block, i.e. every
  English word is spelled in characters and every Chinese character is its own token.
* ``tiny-xlnet`` (``dicenlp.models.tiny_xlnet``), ``tiny-roberta``, ``tiny-deberta-v3`` and ``tiny-xlm-roberta``
  (``dicenlp.models.tiny_encoders``): the same size, with the model and tokenizer classes of the real encoders.

More tiny builders can be registered in ``TINY_BUILDERS`` (``name -> (cache_dir) -> model_dir``); each
builder writes a normal Hugging Face model directory once (cached under ``~/.cache/dicenlp``) so that the
rest of the code path (``from_pretrained``) is exactly the one used for real models.
"""

from __future__ import annotations

import tempfile
from pathlib import Path
from typing import Callable

from transformers import AutoModel, AutoTokenizer, PreTrainedModel, PreTrainedTokenizerBase

from dicenlp.data.cache import CACHE_ROOT

TINY_CACHE = CACHE_ROOT / "tiny-models"

#: Dropout keys of the common encoder configs; ``load_backbone(dropout=...)`` sets whichever exist.
_DROPOUT_KEYS = ("hidden_dropout_prob", "attention_probs_dropout_prob", "dropout")


def _tiny_bert_vocab() -> list[str]:
    specials = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"]
    ascii_chars = [chr(c) for c in range(33, 127)]
    punct = list("，。、；：？！“”‘’（）《》【】—…·")
    cjk = [chr(c) for c in range(0x4E00, 0xA000)]
    pieces = ascii_chars + punct
    return specials + pieces + ["##" + p for p in ascii_chars] + cjk


def _build_tiny_bert(target: Path) -> None:
    from transformers import BertConfig, BertModel, BertTokenizerFast

    vocab = {token: i for i, token in enumerate(_tiny_bert_vocab())}
    tokenizer = BertTokenizerFast(vocab=vocab, do_lower_case=False, tokenize_chinese_chars=True,
                                  model_max_length=512)
    config = BertConfig(vocab_size=len(tokenizer), hidden_size=32, num_hidden_layers=2, num_attention_heads=2,
                        intermediate_size=64, max_position_embeddings=512, type_vocab_size=2)
    import torch

    torch.manual_seed(0)  # the same "random" tiny model on every machine
    model = BertModel(config)
    tokenizer.save_pretrained(target)
    model.save_pretrained(target)


from dicenlp.models.tiny_encoders import (build_tiny_deberta_v3, build_tiny_roberta,  # noqa: E402
                                          build_tiny_xlm_roberta)
from dicenlp.models.tiny_xlnet import build_tiny_xlnet  # noqa: E402  (tiny XLNet for the QA task, issue 5)

TINY_BUILDERS: dict[str, Callable[[Path], None]] = {
    "tiny-bert": _build_tiny_bert, "tiny-xlnet": build_tiny_xlnet, "tiny-roberta": build_tiny_roberta,
    "tiny-deberta-v3": build_tiny_deberta_v3, "tiny-xlm-roberta": build_tiny_xlm_roberta,
}


def tiny_model_dir(name: str) -> Path:
    """Directory of the tiny model ``name``, built on first use (atomically: temp dir, then rename)."""
    if name not in TINY_BUILDERS:
        raise ValueError(f"unknown tiny model {name!r}; known: {sorted(TINY_BUILDERS)}")
    target = TINY_CACHE / name
    if not (target / "config.json").exists():
        TINY_CACHE.mkdir(parents=True, exist_ok=True)
        tmp = Path(tempfile.mkdtemp(prefix=f".{name}-", dir=TINY_CACHE))
        TINY_BUILDERS[name](tmp)
        try:
            tmp.rename(target)
        except OSError:  # another process won the race: keep its copy
            import shutil

            shutil.rmtree(tmp, ignore_errors=True)
    return target


def resolve_name_or_path(name_or_path: str) -> str:
    """``tiny-*`` names become the built directory; anything else is passed to ``from_pretrained``."""
    return str(tiny_model_dir(name_or_path)) if name_or_path.startswith("tiny-") else name_or_path


def load_tokenizer(name_or_path: str, **kwargs) -> PreTrainedTokenizerBase:
    """A fast tokenizer (offsets are needed by every task)."""
    path = resolve_name_or_path(name_or_path)
    try:
        tokenizer = AutoTokenizer.from_pretrained(path, use_fast=True, **kwargs)
    except OSError as err:
        raise OSError(f"could not load the tokenizer of {name_or_path!r}: give a Hugging Face model name "
                      f"(needs network or a filled HF cache) or a local model directory. ({err})") from err
    if not tokenizer.is_fast:
        raise ValueError(f"{name_or_path!r} has no fast tokenizer; dicenlp needs offsets (use_fast=True)")
    return tokenizer


def load_encoder(name_or_path: str, dropout: float | None = None, **kwargs) -> PreTrainedModel:
    """``AutoModel`` encoder (no task head). ``dropout`` overrides the config's dropout probabilities."""
    path = resolve_name_or_path(name_or_path)
    overrides = {}
    if dropout is not None:
        from transformers import AutoConfig

        config = AutoConfig.from_pretrained(path)
        overrides = {k: dropout for k in _DROPOUT_KEYS if hasattr(config, k)}
    try:
        return AutoModel.from_pretrained(path, **overrides, **kwargs)
    except OSError as err:
        raise OSError(f"could not load the model {name_or_path!r}: give a Hugging Face model name "
                      f"(needs network or a filled HF cache) or a local model directory. ({err})") from err


def load_backbone(name_or_path: str, dropout: float | None = None, tokenizer_options: dict | None = None):
    """``(tokenizer, encoder)`` for a model name, a local directory or a ``tiny-*`` name. ``tokenizer_options``
    go to ``from_pretrained`` of the tokenizer (e.g. ``{"add_prefix_space": True}`` for RoBERTa)."""
    return load_tokenizer(name_or_path, **(tokenizer_options or {})), load_encoder(name_or_path, dropout=dropout)
