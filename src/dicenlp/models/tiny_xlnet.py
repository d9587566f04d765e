"""``tiny-xlnet``: a small random XLNet with an XLNet (Unigram / SentencePiece-style) tokenizer, built offline.

Registered in ``dicenlp.models.backbone.TINY_BUILDERS``; ``load_backbone("tiny-xlnet")`` builds it once into
``~/.cache/dicenlp/tiny-models/tiny-xlnet`` and loads it back with ``AutoTokenizer``/``AutoModel``, so tests
exercise exactly the code path of ``xlnet-large-cased``: ``XLNetTokenizer`` (``<cls>`` *last*,
``padding_side="left"``, segment id 2 for ``<cls>``) and ``XLNetModel``.

The vocabulary is written by hand instead of trained, which keeps it deterministic on every machine:

* the XLNet special pieces at the ids the real ``spiece.model`` uses (``<unk>`` 0, ``<s>`` 1, ``</s>`` 2,
  ``<cls>`` 3, ``<sep>`` 4, ``<pad>`` 5, ``<mask>`` 6, ``<eod>`` 7, ``<eop>`` 8);
* every printable ASCII character, as a word-initial piece (``▁c``) and as a continuation piece (``c``), so any
  ASCII text is tokenised without ``<unk>``;
* a few hundred frequent English words (``▁word``, cased as written here and capitalised) and common suffixes,
  with higher Unigram scores, so real words become one or a few pieces like with the real model.

Unigram picks the segmentation of maximal total log-probability, so ``▁the`` (score -4) wins over
``▁t h e`` (3 x -10).
"""

from __future__ import annotations

from pathlib import Path

XLNET_SPECIALS = ["<unk>", "<s>", "</s>", "<cls>", "<sep>", "<pad>", "<mask>", "<eod>", "<eop>"]

_WORDS = """
the of and to in a is that for it as was with be by on not he i this are or his from at which but have an they
you were had her she there one been all their has would when if will what more so no who them some out can about
into than other these then its only also new after first two over time may most such well where any both those
how through years later while before however during between under since until many three century war city state
world university school people government river church john king north south east west american french english
german british london paris france england germany europe country city name known called used became began
following including against around population area part number several early around large long high small great
old year day days world water air land music film series album song team season game league club player
question answer what when where why how who which whose whom did does do done made make makes
normans normandy norman rollo denmark iceland norway viking vikings duke dukes william conquest battle army
""".split()
_SUFFIXES = ["s", "es", "ed", "ing", "er", "ers", "ly", "tion", "ion", "al", "ic", "ity", "ment", "ness", "an", "ans"]


def tiny_xlnet_vocab() -> list[tuple[str, float]]:
    """``[(piece, score)]`` of the tiny XLNet Unigram model (deterministic; specials first)."""
    vocab: list[tuple[str, float]] = [(tok, 0.0) for tok in XLNET_SPECIALS]
    seen = {tok for tok, _ in vocab}

    def add(piece: str, score: float) -> None:
        if piece not in seen:
            seen.add(piece)
            vocab.append((piece, score))

    add("▁", -8.0)
    for word in _WORDS:
        add("▁" + word, -4.0)
        add("▁" + word[0].upper() + word[1:], -4.5)
    for suffix in _SUFFIXES:
        add(suffix, -6.0)
    for code in range(33, 127):
        add("▁" + chr(code), -10.0)
        add(chr(code), -10.0)
    return vocab


def build_tiny_xlnet(target: Path) -> None:
    """Write tokenizer + random ``XLNetModel`` (2 layers, d_model 32) into ``target``."""
    import torch
    from transformers import XLNetConfig, XLNetModel, XLNetTokenizer

    tokenizer = XLNetTokenizer(vocab=tiny_xlnet_vocab(), unk_id=0, do_lower_case=False, model_max_length=512)
    config = XLNetConfig(vocab_size=len(tokenizer), d_model=32, n_layer=2, n_head=2, d_inner=64,
                         pad_token_id=tokenizer.pad_token_id, bos_token_id=tokenizer.bos_token_id,
                         eos_token_id=tokenizer.eos_token_id)
    torch.manual_seed(0)  # the same "random" tiny model on every machine
    model = XLNetModel(config)
    tokenizer.save_pretrained(target)
    model.save_pretrained(target)
