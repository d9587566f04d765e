#!/usr/bin/env python
"""Regenerate the NER fixtures in data/samples/ (written for this project; no real corpus text).

    python scripts/make_ner_samples.py          # rewrites the files below, deterministically (seeded)

* ``data/samples/conll03/{train,dev,test}.txt``: English, CoNLL-2003 layout ``token POS chunk NER`` with
  ``-DOCSTART-`` lines and IOB2 (BIO) tags over PER/ORG/LOC/MISC; ``iob1/`` and ``bioes/`` hold the same
  sentences in IOB1 (the original CoNLL-2003 tagging) and BIOES. Hand-written sentences cover the cases the
  official code got wrong (a repeated mention in one sentence, sentence-final entities, adjacent entities of
  one type, a long sentence that gets truncated); the rest come from templates.
* ``data/samples/msra/{train,test}.txt``: Chinese, character level, ``char<TAB>tag`` BIO over NR/NS/NT
  (MSRA's person/location/organisation) and no dev file (MSRA has none: the task splits train 9:1);
  ``bmes/`` the same in BMES (the Lattice-LSTM / Glyce distributions of MSRA and OntoNotes 4) and
  ``sighan/`` in the SIGHAN-2006 ``word/tag`` line format (``nr ns nt o``).
* ``data/samples/mrc_ner/mrc-ner.{train,dev,test}``: the English sentences in the BERT-MRC JSON format
  (one object per sentence × type, queries of configs/task/conll03.yaml), plus sentences with nested
  entities of different types (MRC handles nesting; tags cannot).
* ``data/samples/ontonotes5/{train,dev,test}.txt``: a subset of the English sentences as ``token<TAB>tag`` BIO
  with OntoNotes 5 type names (PER → PERSON, LOC → GPE, MISC → NORP), the sample of ``task=ontonotes5 scale=smoke``.
* ``data/samples/ontonotes4/{train,dev,test}.txt``: the Chinese sentences as ``char<TAB>tag`` BMES with Chinese
  OntoNotes 4 types (NR → PER, NT → ORG, NS → GPE or LOC) and a dev file, the sample of ``task=ontonotes4
  scale=smoke``.
"""

from __future__ import annotations

import random
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "src"))

from dicenlp.data.mrc_ner import NerSentence, sentences_to_mrc, write_mrc_json  # noqa: E402
from dicenlp.data.schemes import spans_to_tags  # noqa: E402

ROOT = REPO / "data" / "samples"

# ----------------------------------------------------------------------------- English

PER = [["Anna", "Berg"], ["Tom", "Ray"], ["Li", "Wei"], ["Maria", "Lopez"], ["Karl", "Nes"], ["Smith"], ["Jones"],
       ["Peter", "van", "Dam"], ["Olga", "Ivanova"], ["Ahmed"]]
ORG = [["Acme", "Corp"], ["Nordic", "Bank"], ["United", "Nations"], ["Ajax"], ["Red", "Cross"], ["Reuters"],
       ["Green", "Party"], ["Globex", "Holdings", "Ltd"], ["City", "Council"]]
LOC = [["Oslo"], ["Bergen"], ["Madrid"], ["New", "York"], ["Lake", "Tana"], ["Paris"], ["Kenya"], ["Rio", "de", "Janeiro"],
       ["Berlin"], ["Alps"]]
MISC = [["Norwegian"], ["French"], ["Golden", "Cup"], ["World", "Series"], ["Olympic", "Games"], ["Christian"],
        ["Euro", "2000"], ["Nobel", "Prize"]]
POOLS = {"PER": PER, "ORG": ORG, "LOC": LOC, "MISC": MISC}

TEMPLATES = [
    "{PER} said on Monday that {ORG} would open an office in {LOC} .",
    "{ORG} shares fell 3 percent in {LOC} trading .",
    "{PER} of {ORG} won the {MISC} after a long race .",
    "The {MISC} delegation arrived in {LOC} late on Sunday .",
    "Police in {LOC} said {PER} was released without charge .",
    "{ORG} and {ORG} agreed to merge , {PER} told reporters .",
    "{PER} scored twice as {ORG} beat {ORG} 2-1 .",
    "Rain delayed the {MISC} match in {LOC} .",
    "{LOC} exports rose sharply last year , officials said .",
    "A spokesman for {ORG} declined to comment .",
    "{PER} ( {LOC} ) 1:02.45",
    "It was a quiet day on the market .",
    "{PER} , a {MISC} citizen , lives in {LOC}",
]

HANDWRITTEN = [  # entities as [words TYPE]
    # a repeated mention: both Smiths are gold (the official code mapped both to the first occurrence)
    "[Smith PER] told [Jones PER] that [Smith PER] would leave [Acme Corp ORG] .",
    # sentence-final entities (dropped by the official preprocessing)
    "Heavy rain hit [Oslo LOC] and [Bergen LOC]",
    "The winner was [Maria Lopez PER]",
    # adjacent entities of the same type (IOB1 writes B- on the second one)
    "[Norway LOC] : [Ola Berg PER] [Per Dahl PER] , [Kari Nes PER] .",
    "[Brazil LOC] [Argentina LOC] 2 1",
    # a long sentence: with a small max_length its last entities are truncated away (and must count as misses)
    "In a statement issued in [Geneva LOC] on Friday , the [Red Cross ORG] said that aid convoys from [Kenya LOC] "
    "and [Uganda LOC] had reached the camps near [Lake Tana LOC] , where [Anna Berg PER] of the [United Nations ORG] "
    "had warned of shortages of food , water and medicine for the [Olympic Games MISC] volunteers from "
    "[Madrid LOC] .",
]


def _from_handwritten(line: str) -> NerSentence:
    tokens, entities, open_at = [], [], None
    for item in line.split():
        if item.startswith("["):
            open_at, item = len(tokens), item[1:]
        if item.endswith("]"):
            entities.append((open_at, len(tokens) - 1, item[:-1]))
            open_at = None
            continue
        tokens.append(item)
    return NerSentence(tokens=tokens, entities=entities)


def _pos(token: str, in_entity: bool) -> str:
    if in_entity:
        return "NNP"
    if token in {".", ",", ":", "(", ")"}:
        return token
    if token[0].isdigit():
        return "CD"
    return "NN"


def _from_template(rng: random.Random, template: str) -> NerSentence:
    tokens, entities = [], []
    for item in template.split():
        if item.startswith("{") and item.endswith("}"):
            typ = item[1:-1]
            name = rng.choice(POOLS[typ])
            entities.append((len(tokens), len(tokens) + len(name) - 1, typ))
            tokens.extend(name)
        else:
            tokens.append(item)
    return NerSentence(tokens=tokens, entities=entities)


def _write_conll(path: Path, docs: list[list[NerSentence]], scheme: str) -> None:
    lines = []
    for doc in docs:
        lines += ["-DOCSTART- -X- -X- O", ""]
        for sent in doc:
            tags = spans_to_tags(sent.entities, len(sent.tokens), scheme)
            for tok, tag in zip(sent.tokens, tags):
                in_entity = tag != "O"
                lines.append(f"{tok} {_pos(tok, in_entity)} {'I-NP' if in_entity else 'O'} {tag}")
            lines.append("")
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("\n".join(lines), encoding="utf-8")


def english(rng: random.Random) -> dict[str, list[NerSentence]]:
    hand = [_from_handwritten(line) for line in HANDWRITTEN]
    sizes = {"train": 60, "dev": 16, "test": 16}
    splits = {}
    for split, n in sizes.items():
        sents = [_from_template(rng, rng.choice(TEMPLATES)) for _ in range(n)]
        splits[split] = sents
    # every split gets the hand-written cases (dev/test also check the metric on them)
    splits["train"] = hand + splits["train"]
    splits["dev"] = hand[:3] + splits["dev"] + hand[3:]
    splits["test"] = hand[3:] + splits["test"] + hand[:3]
    return splits


# ----------------------------------------------------------------------------- Chinese (MSRA-like)

NR = ["张伟", "李娜", "王芳", "刘洋", "陈静", "欧阳明", "赵小红"]
NS = ["北京", "上海", "广州", "杭州", "西湖", "长江", "新疆", "香港"]
NT = ["北京大学", "中国银行", "新华社", "国务院", "红十字会", "上海交通大学", "联合国"]
ZH_POOLS = {"NR": NR, "NS": NS, "NT": NT}
ZH_TEMPLATES = [
    "{NR}在{NT}工作了三年。",
    "{NR}昨天访问了{NS}和{NS}。",
    "{NT}今天发布了关于{NS}经济的报告。",
    "据{NT}报道，{NS}的气温明显下降。",
    "{NR}说，{NS}的风景很美。",
    "我们明天去{NS}",
    "今天天气很好。",
    "{NT}与{NT}签署了合作协议，{NR}出席了仪式。",
    "记者{NR}从{NS}发回报道",
]


def _zh_sentence(rng: random.Random, template: str) -> NerSentence:
    chars, entities = [], []
    rest = template
    while rest:
        if rest.startswith("{"):
            typ, rest = rest[1:3], rest[4:]
            name = rng.choice(ZH_POOLS[typ])
            entities.append((len(chars), len(chars) + len(name) - 1, typ))
            chars.extend(name)
        else:
            chars.append(rest[0])
            rest = rest[1:]
    return NerSentence(tokens=chars, entities=entities)


def _write_chars(path: Path, sentences: list[NerSentence], scheme: str) -> None:
    lines = []
    for s in sentences:
        lines += [f"{c}\t{t}" for c, t in zip(s.tokens, spans_to_tags(s.entities, len(s.tokens), scheme))]
        lines.append("")
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("\n".join(lines), encoding="utf-8")


def _write_sighan(path: Path, sentences: list[NerSentence]) -> None:
    lines = []
    for s in sentences:
        items, pos = [], 0
        for start, end, typ in s.entities:
            if start > pos:  # outside text as one-character words, as MSRA segments it roughly
                items += [f"{c}/o" for c in s.tokens[pos:start]]
            items.append("".join(s.tokens[start:end + 1]) + f"/{typ.lower()}")
            pos = end + 1
        items += [f"{c}/o" for c in s.tokens[pos:]]
        lines.append(" ".join(items))
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")


def chinese(rng: random.Random) -> dict[str, list[NerSentence]]:
    return {"train": [_zh_sentence(rng, rng.choice(ZH_TEMPLATES)) for _ in range(50)],
            "test": [_zh_sentence(rng, t) for t in ZH_TEMPLATES] + [_zh_sentence(rng, rng.choice(ZH_TEMPLATES))
                                                                    for _ in range(6)]}


# ----------------------------------------------------------------------------- nested (MRC JSON only)

NESTED = [
    NerSentence(tokens="Profits at Bank of China rose in the third quarter .".split(),
                entities=[(2, 4, "ORG"), (4, 4, "LOC")]),
    NerSentence(tokens="He studied at the University of Oslo Medical School".split(),
                entities=[(4, 8, "ORG"), (4, 6, "ORG"), (6, 6, "LOC")]),
]


ONTONOTES5_TYPES = {"PER": "PERSON", "ORG": "ORG", "LOC": "GPE", "MISC": "NORP"}
ONTONOTES4_LOC = {"西湖", "长江"}  # natural locations; the other NS names are places with a government (GPE)


def _renamed(sentences: list[NerSentence], rename) -> list[NerSentence]:
    return [NerSentence(tokens=s.tokens, entities=[(a, b, rename(s.tokens[a:b + 1], t)) for a, b, t in s.entities])
            for s in sentences]


def ontonotes(en: dict[str, list[NerSentence]], zh: dict[str, list[NerSentence]]) -> None:
    """The OntoNotes samples: the sentences above under the OntoNotes type names (no new text)."""
    for split, sents in en.items():
        _write_chars(ROOT / "ontonotes5" / f"{split}.txt",
                     _renamed(sents[:24], lambda _, t: ONTONOTES5_TYPES[t]), "BIO")
    zh_types = {"NR": "PER", "NT": "ORG"}
    zh4 = {"train": zh["train"][:40], "dev": zh["train"][40:], "test": zh["test"]}
    for split, sents in zh4.items():
        _write_chars(ROOT / "ontonotes4" / f"{split}.txt", _renamed(
            sents, lambda chars, t: zh_types.get(t) or ("LOC" if "".join(chars) in ONTONOTES4_LOC else "GPE")), "BMES")


def main() -> None:
    import yaml  # PyYAML ships with Hydra

    rng = random.Random(2020)
    en = english(rng)
    for split, sents in en.items():
        docs = [sents[: len(sents) // 2], sents[len(sents) // 2:]]
        _write_conll(ROOT / "conll03" / f"{split}.txt", docs, "BIO")
        _write_conll(ROOT / "conll03" / "iob1" / f"{split}.txt", docs, "IOB1")
        _write_conll(ROOT / "conll03" / "bioes" / f"{split}.txt", docs, "BIOES")

    zh = chinese(rng)
    for split, sents in zh.items():
        _write_chars(ROOT / "msra" / f"{split}.txt", sents, "BIO")
        _write_chars(ROOT / "msra" / "bmes" / f"{split}.txt", sents, "BMES")
        _write_sighan(ROOT / "msra" / "sighan" / f"{split}.txt", sents)

    ontonotes(en, zh)

    queries = yaml.safe_load((REPO / "configs" / "task" / "conll03.yaml").read_text())["task"]["params"]["queries"]
    for split, sents in en.items():  # a subset keeps the JSON fixture small
        extra = NESTED if split != "train" else NESTED[:1]
        subset = sents[:36] if split == "train" else sents[:12]
        write_mrc_json(ROOT / "mrc_ner" / f"mrc-ner.{split}", sentences_to_mrc(subset + extra, queries, "en"))


if __name__ == "__main__":
    main()
