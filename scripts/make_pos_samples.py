#!/usr/bin/env python
"""Regenerate the POS fixtures in data/samples/ (written for this project; no real corpus text).

    python scripts/make_pos_samples.py          # rewrites the files below, deterministically (seeded)

* ``data/samples/pos/{train,dev,test}.tsv``: English, ``word<TAB>PTB-tag``, blank line between sentences
  (the WSJ layout). Sentences come from a small grammar with lexical ambiguity (``book`` NN/VB,
  ``watches`` NNS/VBZ, ``that`` DT/IN/WDT, ``can`` MD/NN ...) and rare tags (EX, POS, RP, UH, WDT), so a
  tagger must use context and the tag distribution is imbalanced, as in real POS data.
* ``data/samples/tweets/{train,dev,test}.tsv``: the same grammar wrapped in tweet material, with the
  Twitter tags of Ritter et al. (2011): ``USR`` (@user), ``HT`` (#hashtag), ``URL``, ``RT``, ``UH``.
* ``data/samples/ctb/{train,dev,test}.txt``: Chinese, one sentence per line of ``word_TAG`` items (CTB tags),
  words of 1–3 characters with segmentation and tag ambiguity (发展 NN/VV, 的 DEG/DEC).
* ``data/samples/ud_zh/zh-ud-{train,dev,test}.conllu``: the Chinese sentences in CoNLL-U (UPOS + CTB XPOS), with
  a flat dependency tree (every word attached to the first verb): a format fixture, not a treebank. The file
  names are UD 1.4's (task ud14).
* ``data/samples/ud_en/en_ewt-ud-{train,dev,test}.conllu``: the English sentences in CoNLL-U (UPOS + PTB XPOS),
  the same flat tree, under UD English-EWT's file names (task ud_en).
"""

from __future__ import annotations

import random
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1] / "data" / "samples"

# ----------------------------------------------------------------------------- English grammar

DT = ["the", "a", "this", "that", "every", "no"]
DT_PL = ["the", "these", "those", "some", "many", "all"]
JJ = ["big", "old", "red", "quiet", "fast", "light", "new", "happy", "back", "cold"]
NN = ["dog", "cat", "book", "man", "city", "fly", "duck", "can", "light", "plan", "saw", "run", "walk", "park",
      "table", "letter", "river", "car", "teacher", "window"]
NNS = ["dogs", "cats", "books", "men", "cities", "watches", "plans", "walks", "ducks", "flies", "cars", "letters",
       "teachers", "windows", "runs"]
NNP = ["John", "Mary", "London", "Paris", "Smith", "Acme", "Alice", "Berlin"]
PRP = ["he", "she", "it"]
PRP_PL = ["they", "we", "you", "I"]
VBZ = ["likes", "watches", "plans", "walks", "books", "sees", "runs", "flies", "reads", "opens", "wants"]
VBP = ["like", "watch", "plan", "walk", "book", "see", "run", "fly", "read", "open", "want"]
VBD = ["saw", "liked", "watched", "planned", "walked", "booked", "opened", "read", "ran", "wanted"]
VB = ["see", "like", "watch", "book", "fly", "run", "read", "open", "duck", "light"]
VBG = ["reading", "watching", "running", "planning", "walking"]
RB = ["quickly", "often", "never", "fast", "back", "there", "today", "always"]
IN = ["in", "near", "with", "like", "after", "on", "for"]
CD = ["two", "three", "ten", "42", "1999"]
RP = ["up", "out", "down"]
UH = ["oh", "well", "yes", "wow"]


def np_sg(r: random.Random) -> list[tuple[str, str]]:
    k = r.random()
    if k < 0.25:
        return [(r.choice(NNP), "NNP")]
    if k < 0.32:
        # possessive: "John 's dog"
        return [(r.choice(NNP), "NNP"), ("'s", "POS"), (r.choice(NN), "NN")]
    out = [(r.choice(DT), "DT")]
    if r.random() < 0.4:
        out.append((r.choice(JJ), "JJ"))
    out.append((r.choice(NN), "NN"))
    return out


def np_pl(r: random.Random) -> list[tuple[str, str]]:
    k = r.random()
    if k < 0.2:
        return [(r.choice(CD), "CD"), (r.choice(NNS), "NNS")]
    out = [(r.choice(DT_PL), "DT")] if k < 0.75 else []
    if r.random() < 0.35:
        out.append((r.choice(JJ), "JJ"))
    out.append((r.choice(NNS), "NNS"))
    return out


def obj(r: random.Random) -> list[tuple[str, str]]:
    return np_sg(r) if r.random() < 0.6 else np_pl(r)


def pp(r: random.Random) -> list[tuple[str, str]]:
    return [(r.choice(IN), "IN")] + obj(r)


def relative(r: random.Random) -> list[tuple[str, str]]:
    # "that/which" + VBZ + obj  (that as WDT)
    return [(r.choice(["that", "which"]), "WDT"), (r.choice(VBZ), "VBZ")] + obj(r)


def vp(r: random.Random, plural: bool) -> list[tuple[str, str]]:
    k = r.random()
    if k < 0.3:
        v = [(r.choice(VBD), "VBD")]
    elif k < 0.45:
        v = [("can" if r.random() < 0.5 else r.choice(["will", "must", "should"]), "MD"), (r.choice(VB), "VB")]
    elif k < 0.52:
        v = [(r.choice(VBP if plural else VBZ), "VBP" if plural else "VBZ"), ("to", "TO"), (r.choice(VB), "VB")]
    elif k < 0.58:
        v = [(("are" if plural else "is"), "VBP" if plural else "VBZ"), (r.choice(VBG), "VBG")]
    else:
        v = [(r.choice(VBP), "VBP")] if plural else [(r.choice(VBZ), "VBZ")]
    tail = r.random()
    if tail < 0.08:
        return v + [(r.choice(RP), "RP")] + obj(r)
    if tail < 0.55:
        v = v + obj(r)
        if r.random() < 0.12:
            v += relative(r)
    elif tail < 0.75:
        v = v + pp(r)
    else:
        v = v + [(r.choice(RB), "RB")]
    if r.random() < 0.25:
        v += pp(r)
    return v


def english_sentence(r: random.Random) -> list[tuple[str, str]]:
    k = r.random()
    lead: list[tuple[str, str]] = []
    if k < 0.06:
        lead = [(r.choice(UH), "UH"), (",", ",")]
    if r.random() < 0.08:
        s = [("there" if r.random() < 0.5 else "There", "EX"), ("is", "VBZ")] + np_sg(r) + pp(r)
    else:
        c = r.random()
        if c < 0.4:
            s = np_sg(r) + vp(r, plural=False)
        elif c < 0.65:
            s = np_pl(r) + vp(r, plural=True)
        elif c < 0.82:
            s = [(r.choice(PRP), "PRP")] + vp(r, plural=False)
        else:
            s = [(r.choice(PRP_PL), "PRP")] + vp(r, plural=True)
        if r.random() < 0.12:
            s += [("and", "CC")] + ([(r.choice(PRP_PL), "PRP")] + vp(r, plural=True))
    s = lead + s
    if s[0][1] not in {"NNP"} and s[0][0][0].islower():
        s[0] = (s[0][0][0].upper() + s[0][0][1:], s[0][1])
    return s + [(".", ".")]


def tweet(r: random.Random) -> list[tuple[str, str]]:
    s: list[tuple[str, str]] = []
    if r.random() < 0.25:
        s += [("RT", "RT"), ("@" + r.choice(["bob", "news24", "amy_k", "dice"]), "USR"), (":", ":")]
    elif r.random() < 0.2:
        s += [("@" + r.choice(["tom", "mia", "zoe"]), "USR")]
    body = english_sentence(r)[:-1]
    body[0] = (body[0][0].lower() if body[0][1] != "NNP" else body[0][0], body[0][1])
    s += body
    if r.random() < 0.5:
        s += [("#" + r.choice(["monday", "fail", "win", "nlp", "love"]), "HT")]
    if r.random() < 0.3:
        s += [("http://t.co/" + r.choice(["a1b2", "xyz9", "q7w8"]), "URL")]
    if r.random() < 0.3:
        s += [(r.choice([":)", "lol", "haha", ":("]), "UH")]
    return s


# ----------------------------------------------------------------------------- Chinese grammar (CTB tags)

ZH = {
    "NR": ["上海", "北京", "浦东", "中国", "香港", "张三", "浦东新区", "联合国"],
    "NN": ["经济", "企业", "市场", "工程", "银行", "学生", "问题", "政策", "技术", "发展", "建设", "投资", "开发区",
           "研究所", "基础设施"],
    "VV": ["发展", "建设", "进入", "开发", "支持", "提高", "投资", "完成", "研究"],
    "VA": ["大", "好", "快", "重要"],
    "VC": ["是"],
    "AD": ["也", "已经", "不", "都", "正在"],
    "P": ["在", "对", "从", "向"],
    "CD": ["三", "十", "一百", "两"],
    "M": ["个", "家", "项"],
    "NT": ["今年", "去年", "目前"],
    "JJ": ["新", "主要", "大型"],
    "LC": ["中", "上", "以来"],
    "AS": ["了", "过"],
    "CC": ["和", "与"],
    "DEG": ["的"],
    "DEC": ["的"],
    "PN": ["他们", "我们", "它"],
}


def zh_np(r: random.Random) -> list[tuple[str, str]]:
    k = r.random()
    if k < 0.25:
        return [(r.choice(ZH["NR"]), "NR")]
    if k < 0.4:
        return [(r.choice(ZH["CD"]), "CD"), (r.choice(ZH["M"]), "M"), (r.choice(ZH["NN"]), "NN")]
    if k < 0.55:
        return [(r.choice(ZH["NR"]), "NR"), ("的", "DEG"), (r.choice(ZH["NN"]), "NN")]
    if k < 0.65:
        return [(r.choice(ZH["JJ"]), "JJ"), (r.choice(ZH["NN"]), "NN")]
    if k < 0.72:
        # relative clause: VV NN 的 NN (的 as DEC)
        return [(r.choice(ZH["VV"]), "VV"), (r.choice(ZH["NN"]), "NN"), ("的", "DEC"), (r.choice(ZH["NN"]), "NN")]
    return [(r.choice(ZH["NN"]), "NN")] + ([(r.choice(ZH["NN"]), "NN")] if r.random() < 0.3 else [])


def zh_sentence(r: random.Random) -> list[tuple[str, str]]:
    s: list[tuple[str, str]] = []
    if r.random() < 0.3:
        s += [(r.choice(ZH["NT"]), "NT")]
    s += zh_np(r) if r.random() < 0.8 else [(r.choice(ZH["PN"]), "PN")]
    if r.random() < 0.15:
        s += [(r.choice(ZH["CC"]), "CC")] + zh_np(r)
    if r.random() < 0.3:
        s += [(r.choice(ZH["AD"]), "AD")]
    if r.random() < 0.25:
        s += [(r.choice(ZH["P"]), "P")] + zh_np(r) + ([(r.choice(ZH["LC"]), "LC")] if r.random() < 0.5 else [])
    k = r.random()
    if k < 0.6:
        s += [(r.choice(ZH["VV"]), "VV")]
        if r.random() < 0.3:
            s += [(r.choice(ZH["AS"]), "AS")]
        s += zh_np(r)
    elif k < 0.8:
        s += [("是", "VC")] + zh_np(r)
    else:
        s += [(r.choice(ZH["VA"]), "VA")]
    if r.random() < 0.2:
        s += [("，", "PU")] + [(r.choice(ZH["AD"]), "AD"), (r.choice(ZH["VV"]), "VV")] + zh_np(r)
    return s + [("。", "PU")]


#: PTB → UPOS for the tags of the English grammar (the UD English conversion's mapping).
UPOS_EN = {"DT": "DET", "JJ": "ADJ", "NN": "NOUN", "NNS": "NOUN", "NNP": "PROPN", "PRP": "PRON", "VBZ": "VERB",
           "VBP": "VERB", "VBD": "VERB", "VB": "VERB", "VBG": "VERB", "MD": "AUX", "IN": "ADP", "RB": "ADV",
           "CD": "NUM", "CC": "CCONJ", "EX": "PRON", "POS": "PART", "RP": "ADP", "TO": "PART", "UH": "INTJ",
           "WDT": "PRON", ".": "PUNCT", ",": "PUNCT"}

UPOS = {"NR": "PROPN", "NN": "NOUN", "NT": "NOUN", "VV": "VERB", "VA": "ADJ", "VC": "AUX", "AD": "ADV",
        "P": "ADP", "CD": "NUM", "M": "NOUN", "JJ": "ADJ", "LC": "ADP", "AS": "AUX", "CC": "CCONJ",
        "DEG": "PART", "DEC": "PART", "PN": "PRON", "PU": "PUNCT"}


# ----------------------------------------------------------------------------- writers


def _write(path: Path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_text(text, encoding="utf-8")
    tmp.replace(path)


def columns_text(sents) -> str:
    return "".join("".join(f"{w}\t{t}\n" for w, t in s) + "\n" for s in sents)


def word_pos_text(sents) -> str:
    return "".join(" ".join(f"{w}_{t}" for w, t in s) + "\n" for s in sents)


def conllu_text(sents, split: str, upos=UPOS, verbs=("VV", "VC", "VA"), space: str = "") -> str:
    """CoNLL-U of (word, XPOS) sentences; UPOS from ``upos``, a flat tree rooted at the first verb."""
    out = []
    misc = "_" if space else "SpaceAfter=No"
    for i, s in enumerate(sents, start=1):
        root = next((j for j, (_, t) in enumerate(s, start=1) if t in verbs), 1)
        out.append(f"# sent_id = {split}-{i}\n# text = {space.join(w for w, _ in s)}\n")
        for j, (w, t) in enumerate(s, start=1):
            head, rel = (0, "root") if j == root else (root, "dep")
            out.append(f"{j}\t{w}\t{w}\t{upos[t]}\t{t}\t_\t{head}\t{rel}\t_\t{misc}\n")
        out.append("\n")
    return "".join(out)


def main() -> None:
    # English: 1,000 training sentences is what a random 2-layer char-level tiny BERT needs to generalise
    # (with 300 it memorises the training set and stays near 60 dev F1); the others stay small.
    sizes = {"train": (1000, 100, 150), "dev": (100, 20, 30), "test": (100, 20, 30)}  # English, tweets, Chinese
    for seed, (split, (n_en, n_tw, n_zh)) in enumerate(sizes.items()):
        r = random.Random(1000 + seed)
        en = [english_sentence(r) for _ in range(n_en)]
        _write(ROOT / "pos" / f"{split}.tsv", columns_text(en))
        _write(ROOT / "ud_en" / f"en_ewt-ud-{split}.conllu",  # UD English: a fifth of the English sentences
               conllu_text(en[: n_en // 5], split, UPOS_EN, ("VBZ", "VBP", "VBD", "VB", "MD"), space=" "))
        r = random.Random(2000 + seed)
        _write(ROOT / "tweets" / f"{split}.tsv", columns_text([tweet(r) for _ in range(n_tw)]))
        r = random.Random(3000 + seed)
        zh = [zh_sentence(r) for _ in range(n_zh)]
        _write(ROOT / "ctb" / f"{split}.txt", word_pos_text(zh))
        _write(ROOT / "ud_zh" / f"zh-ud-{split}.conllu", conllu_text(zh, split))
    print(f"wrote POS samples under {ROOT}")


if __name__ == "__main__":
    main()
