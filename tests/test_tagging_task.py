"""TaggingTask (BERT-Tagger POS): features/labels alignment, truncation and unseen labels counted as misses,
char-level Chinese, cached tokenisation, bad input. Real tiny-bert tokenizer, real ``datasets``."""

from __future__ import annotations

import warnings
from pathlib import Path

import numpy as np
import pytest
import torch

from dicenlp.data.conll import ColumnFormatError
from dicenlp.tasks import build_task
from dicenlp.tasks.tagging import TaggingTask

REPO = Path(__file__).resolve().parents[1]
SAMPLES = REPO / "data" / "samples"
SHARED = REPO.parent / "shared" / "data"


@pytest.fixture(scope="module")
def tiny():
    from dicenlp.models.backbone import load_backbone

    return load_backbone("tiny-bert")


@pytest.fixture
def tokenizer(tiny):
    return tiny[0]


def make_task(tmp_path, **kw) -> TaggingTask:
    kw.setdefault("cache_dir", str(tmp_path / "cache"))
    return TaggingTask(**kw)


def oracle(task: TaggingTask, split: str, wrong_for_unseen: int = 0) -> dict[str, np.ndarray]:
    """Gathered eval outputs of a model that predicts every gold label it can (first sub-tokens), padded as
    the trainer pads (-100). Units whose gold label is unseen in training get label ``wrong_for_unseen``."""
    ds = task.datasets[split]
    rows = []
    for feat in ds:
        labels = np.asarray(feat["labels"])
        first = np.asarray(feat["word_index"]) >= 0
        pred = np.where(first & (labels < 0), wrong_for_unseen, labels)
        rows.append(pred)
    width = max(len(r) for r in rows) + 3  # extra trainer padding must be ignored
    out = np.full((len(rows), width), -100)
    for i, r in enumerate(rows):
        out[i, :len(r)] = r
    return {"predictions": out, "feature_index": np.arange(len(rows))}


def write(path: Path, text: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text, encoding="utf-8")
    return path


# --------------------------------------------------------------------------------------------- word level
def test_sample_pos_first_subtoken_alignment(tmp_path, tokenizer):
    task = make_task(tmp_path, name="sample_pos", data_dir=str(SAMPLES / "pos"), sep="\t", max_length=128)
    task.setup(tokenizer)
    assert set(task.datasets) == {"train", "dev", "test"}
    assert task.labels == sorted(task.labels) and {"NN", "VBZ", "DT", "."} <= set(task.labels)
    for split in ("train", "dev"):
        for i in (0, 7, len(task.datasets[split]) - 1):
            feat = task.datasets[split][i]
            words, tags = task.units[split][i], task.unit_tags[split][i]
            tokens = tokenizer.convert_ids_to_tokens(feat["input_ids"])
            assert tokens[0] == "[CLS]" and tokens[-1] == "[SEP]"
            first = [j for j, w in enumerate(feat["word_index"]) if w >= 0]
            assert [feat["word_index"][j] for j in first] == list(range(len(words)))
            assert [task.labels[feat["labels"][j]] for j in first] == tags
            # the labelled sub-token is the word's first piece (tiny-bert spells words in characters)
            assert [tokens[j] for j in first] == [w[0] for w in words]
            assert all(feat["labels"][j] == -100 for j in range(len(tokens)) if j not in first)
            assert feat["feature_index"] == i


def test_collate_pads_and_label_counts(tmp_path, tokenizer):
    task = make_task(tmp_path, name="s", data_dir=str(SAMPLES / "pos"), sep="\t")
    task.setup(tokenizer)
    feats = [task.datasets["train"][i] for i in range(5)]
    batch = task.collate(feats)
    L = max(len(f["input_ids"]) for f in feats)
    assert batch["input_ids"].shape == (5, L) and batch["labels"].shape == (5, L)
    short = min(range(5), key=lambda i: len(feats[i]["input_ids"]))
    n = len(feats[short]["input_ids"])
    assert (batch["input_ids"][short, n:] == tokenizer.pad_token_id).all()
    assert (batch["attention_mask"][short, n:] == 0).all() and (batch["labels"][short, n:] == -100).all()
    assert batch["feature_index"].tolist() == [0, 1, 2, 3, 4]
    counts = task.label_counts()
    assert counts.shape == (len(task.labels),)
    assert int(counts.sum()) == sum(len(u) for u in task.units["train"])
    assert int(counts[task.label_to_id["EX"]]) == sum(t == "EX" for tags in task.unit_tags["train"] for t in tags)


def test_oracle_scores_100_and_model_shapes(tmp_path, tiny):
    tokenizer, encoder = tiny
    task = make_task(tmp_path, name="s", data_dir=str(SAMPLES / "pos"), sep="\t")
    task.setup(tokenizer)
    result = task.evaluate("dev", oracle(task, "dev"))
    assert result.metrics["f1"] == pytest.approx(100.0) and result.metrics["accuracy"] == pytest.approx(100.0)
    assert result.predictions[0]["pred"] == result.predictions[0]["gold"]

    from dicenlp.losses import build_loss

    model = task.build_model(encoder, build_loss("dsc"))
    batch = task.collate([task.datasets["train"][i] for i in range(3)])
    out = model(batch)
    assert out["logits"].shape == (*batch["input_ids"].shape, len(task.labels))
    for name in ("ce", "fl", "dl", "dsc"):
        loss = task.compute_loss(out, batch, build_loss(name))
        assert loss.ndim == 0 and torch.isfinite(loss)
    eo = task.eval_outputs(out, batch)
    assert eo["predictions"].shape == batch["input_ids"].shape
    assert (eo["predictions"][batch["attention_mask"] == 0] == -100).all()


def test_truncated_units_count_as_misses(tmp_path, tokenizer):
    # max_length 8 = [CLS] + 6 sub-tokens + [SEP]: "t ##h ##e d ##o ##g" fills it, "barks loud ." are cut
    write(tmp_path / "d" / "train.tsv", "a\tDT\nb\tNN\n\nthe\tDT\ndog\tNN\nbarks\tVBZ\nloud\tRB\n.\t.\n\n")
    write(tmp_path / "d" / "dev.tsv", "a\tDT\nb\tNN\n\nthe\tDT\ndog\tNN\nbarks\tVBZ\nloud\tRB\n.\t.\n\n")
    task = make_task(tmp_path, name="t", data_dir=str(tmp_path / "d"), files={"train": "train.tsv", "dev": "dev.tsv"},
                     sep="\t", max_length=8)
    with pytest.warns(UserWarning, match=r"1 dev sentence\(s\) lose 3 unit\(s\) to truncation"):
        task.setup(tokenizer)
    covered = [int((w >= 0).sum()) for w in task._word_index["dev"]]
    assert covered == [2, 2]
    m = task.evaluate("dev", oracle(task, "dev")).metrics
    assert m["precision"] == pytest.approx(100.0)              # every prediction made is right
    assert m["recall"] == pytest.approx(100.0 * 4 / 7)         # 3 of 7 gold words cut off
    assert m["accuracy"] == pytest.approx(100.0 * 4 / 7)
    assert m["truncated_sentences"] == 1.0


def test_unseen_dev_labels_are_reported_and_missed(tmp_path, tokenizer):
    write(tmp_path / "d" / "train.tsv", "the\tDT\ndog\tNN\n\n")
    write(tmp_path / "d" / "dev.tsv", "the\tDT\ndog\tNN\nbarks\tVBZ\n\nwow\tUH\n\n")
    task = make_task(tmp_path, name="u", data_dir=str(tmp_path / "d"), files={"train": "train.tsv", "dev": "dev.tsv"},
                     sep="\t")
    with pytest.warns(UserWarning, match=r"dev has 2 unit\(s\) with label\(s\) never seen in training: UH \(1x\), VBZ \(1x\)"):
        task.setup(tokenizer)
    assert task.unseen_labels["dev"] == {"UH": 1, "VBZ": 1}
    assert task.labels == ["DT", "NN"]
    m = task.evaluate("dev", oracle(task, "dev", wrong_for_unseen=0)).metrics
    # 4 gold words, 4 predictions (unseen ones predicted as DT: wrong), 2 right
    assert m["precision"] == pytest.approx(50.0) and m["recall"] == pytest.approx(50.0)


def test_bad_input_names_file_and_line(tmp_path, tokenizer):
    write(tmp_path / "d" / "train.tsv", "the\tDT\ndog\tNN\tEXTRA\n")
    write(tmp_path / "d" / "dev.tsv", "the\tDT\n")
    task = make_task(tmp_path, name="b", data_dir=str(tmp_path / "d"), files={"train": "train.tsv", "dev": "dev.tsv"},
                     sep="\t")
    with pytest.raises(ColumnFormatError, match=r"train\.tsv:2: expected 2 columns \(as on line 1\), found 3"):
        task.setup(tokenizer)
    write(tmp_path / "d" / "train.tsv", "\n\n")
    with pytest.raises(ColumnFormatError, match=r"train\.tsv: no sentences found"):
        task.setup(tokenizer)


def test_missing_files_say_what_to_put_where(tmp_path):
    task = build_task("tagging", name="wsj", data_dir=str(tmp_path / "wsj"), data_help="Get WSJ from the LDC.")
    with pytest.raises(FileNotFoundError, match=r"(?s)wsj/train\.tsv.*wsj/dev\.tsv.*Get WSJ from the LDC"):
        task.check_data()
    with pytest.raises(ValueError, match="unknown tagging data format"):
        TaggingTask(format="xml")


# --------------------------------------------------------------------------------------------- char level
def test_ctb_sample_char_level(tmp_path, tokenizer):
    task = make_task(tmp_path, name="ctb", data_dir=str(SAMPLES / "ctb"), char_level=True, format="word_pos",
                     files={"train": "train.txt", "dev": "dev.txt", "test": "test.txt"})
    task.setup(tokenizer)
    sent = task.sentences["dev"][0]
    assert task.units["dev"][0] == list("".join(sent.tokens))
    assert all(t[:2] in {"B-", "I-", "E-", "S-"} for t in task.labels)
    assert {"B-NN", "E-NN", "S-PU"} <= set(task.labels)
    # every character is its own tiny-bert token, so every unit is labelled
    assert all((w >= 0).sum() == len(u) for w, u in zip(task._word_index["dev"], task.units["dev"]))
    result = task.evaluate("dev", oracle(task, "dev"))
    assert result.metrics["f1"] == pytest.approx(100.0)
    assert result.predictions[0]["pred_words"] == [[w, t] for w, t in zip(sent.tokens, sent.tags)]
    # one wrong boundary: predict the first two words as ONE NN word → 2 gold words missed, 1 wrong prediction
    gathered = oracle(task, "dev")
    feat = task.datasets["dev"][0]
    first = [j for j, w in enumerate(feat["word_index"]) if w >= 0]
    n = len(sent.tokens[0]) + len(sent.tokens[1])
    merged = ["B-NN"] + ["I-NN"] * (n - 2) + ["E-NN"]
    for k, tag in enumerate(merged):
        gathered["predictions"][0, first[k]] = task.label_to_id[tag]
    n_gold = sum(len(s.tokens) for s in task.sentences["dev"])
    m = task.evaluate("dev", gathered).metrics
    assert m["recall"] == pytest.approx(100.0 * (n_gold - 2) / n_gold)
    assert m["precision"] == pytest.approx(100.0 * (n_gold - 2) / (n_gold - 1))


def test_ud_conllu_char_level_matches_ctb_layout(tmp_path, tokenizer):
    kw = dict(cache_dir=str(tmp_path / "cache"), char_level=True)
    ud = TaggingTask(name="ud", data_dir=str(SAMPLES / "ud_zh"), format="conllu", conllu_tag="xpos",
                     files={"train": "zh-ud-train.conllu", "dev": "zh-ud-dev.conllu"}, **kw)
    ctb = TaggingTask(name="ctb", data_dir=str(SAMPLES / "ctb"), format="word_pos",
                      files={"train": "train.txt", "dev": "dev.txt"}, **kw)
    ud.setup(tokenizer)
    ctb.setup(tokenizer)
    assert ud.units == ctb.units and ud.unit_tags == ctb.unit_tags and ud.labels == ctb.labels


# --------------------------------------------------------------------------------------------- caching
def test_tokenisation_is_cached_and_keyed(tmp_path, tokenizer):
    kw = dict(name="s", data_dir=str(SAMPLES / "pos"), sep="\t", cache_dir=str(tmp_path / "cache"))
    first = TaggingTask(max_length=128, **kw)
    first.setup(tokenizer)
    files = {s: Path(first.datasets[s].cache_files[0]["filename"]) for s in first.datasets}
    assert all(p.parent == tmp_path / "cache" / "tagging" for p in files.values())
    mtimes = {s: p.stat().st_mtime_ns for s, p in files.items()}

    calls = []
    original = tokenizer.__class__.__call__

    def counting_call(self, *args, **kwargs):
        calls.append(1)
        return original(self, *args, **kwargs)

    second = TaggingTask(max_length=128, **kw)
    tokenizer.__class__.__call__ = counting_call
    try:
        second.setup(tokenizer)
    finally:
        tokenizer.__class__.__call__ = original
    assert calls == [], "the second setup must read the cache, not re-tokenise"
    assert {s: Path(second.datasets[s].cache_files[0]["filename"]) for s in second.datasets} == files
    assert {s: p.stat().st_mtime_ns for s, p in files.items()} == mtimes
    assert second.datasets["dev"][3] == first.datasets["dev"][3]

    # a new process loads a fresh tokenizer (no truncation state yet): the same cache files
    from dicenlp.models.backbone import load_tokenizer

    fresh = TaggingTask(max_length=128, **kw)
    fresh.setup(load_tokenizer("tiny-bert"))
    assert {s: Path(fresh.datasets[s].cache_files[0]["filename"]) for s in fresh.datasets} == files

    other = TaggingTask(max_length=64, **kw)  # another max_length → another cache file
    other.setup(tokenizer)
    assert Path(other.datasets["train"].cache_files[0]["filename"]) != files["train"]


# --------------------------------------------------------------------------------------------- real slices
@pytest.mark.skipif(not (SHARED / "ud").is_dir(), reason="../shared/data absent")
def test_real_chinese_ud_char_level(tmp_path, tokenizer):
    ud = SHARED / "ud"
    task = make_task(tmp_path, name="zh_gsd", data_dir=str(ud), format="conllu", char_level=True, max_length=512,
                     files={"train": "zh_gsd-ud-dev.conllu", "dev": "zh_gsd-ud-dev.conllu"})
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        task.setup(tokenizer)
    n_words = sum(len(s.tokens) for s in task.sentences["dev"])
    m = task.evaluate("dev", oracle(task, "dev")).metrics
    # characters the tokenizer cannot represent at all (e.g. none in GSD dev) would count as misses
    missing = sum(len(u) - int((w >= 0).sum()) for u, w in zip(task.units["dev"], task._word_index["dev"]))
    assert missing == 0 and m["f1"] == pytest.approx(100.0)
    assert m["precision"] == pytest.approx(100.0) and len(task.sentences["dev"]) == 500 and n_words > 10000


@pytest.mark.skipif(not (SHARED / "conll03").is_dir(), reason="../shared/data absent")
def test_real_conll03_as_pos_columns(tmp_path, tokenizer):
    c = SHARED / "conll03"
    task = make_task(tmp_path, name="conll03_pos", data_dir=str(c), tag_col=1, max_length=64,
                     files={"train": "train_2k.txt", "dev": "valid.txt"})
    with warnings.catch_warnings(record=True):
        warnings.simplefilter("always")
        task.setup(tokenizer)
    assert task.sentences["dev"][0].tokens[:2] == ["CRICKET", "-"]
    m = task.evaluate("dev", oracle(task, "dev")).metrics
    n_gold = sum(len(u) for u in task.units["dev"])
    n_pred = sum(int((w >= 0).sum()) for w in task._word_index["dev"])
    n_right = sum(int((np.asarray(f["labels"]) >= 0).sum()) for f in task.datasets["dev"])
    assert n_pred < n_gold  # char-level tiny-bert pieces: long sentences exceed 64 sub-tokens
    assert m["recall"] == pytest.approx(100.0 * n_right / n_gold)
    assert m["precision"] == pytest.approx(100.0 * n_right / n_pred)


# --------------------------------------------------------------------------------------------- Hub layout
def test_hub_loading_with_classlabel_tags(tmp_path, tokenizer):
    """``hub_name`` goes through ``datasets.load_dataset``; a local folder of parquet files with a ClassLabel
    tag column (the layout of Hub copies such as strombergnlp/twitter_pos) exercises the same code offline."""
    from datasets import ClassLabel, Dataset, Features, Sequence, Value

    names = ["DT", "NN", "VBZ", "USR"]
    features = Features({"id": Value("string"), "tokens": Sequence(Value("string")),
                         "pos_tags": Sequence(ClassLabel(names=names))})
    rows = {"train": [(["@bob", "the", "dog", "barks"], [3, 0, 1, 2]), (["a", "cat"], [0, 1])],
            "validation": [(["the", "cat", "barks"], [0, 1, 2])], "test": [(["@amy"], [3])]}
    hub = tmp_path / "hub"
    hub.mkdir()
    for split, data in rows.items():
        Dataset.from_dict({"id": [str(i) for i in range(len(data))], "tokens": [t for t, _ in data],
                           "pos_tags": [p for _, p in data]}, features=features).to_parquet(hub / f"{split}.parquet")
    task = make_task(tmp_path, name="tweets", hub_name=str(hub))
    task.check_data()  # nothing to check locally for Hub data
    task.setup(tokenizer)
    assert task.sentences["train"][0].tokens == ["@bob", "the", "dog", "barks"]
    assert task.unit_tags["dev"] == [["DT", "NN", "VBZ"]] and task.unit_tags["test"] == [["USR"]]
    assert task.evaluate("dev", oracle(task, "dev")).metrics["f1"] == pytest.approx(100.0)


def test_tweets_sample_twitter_tags(tmp_path, tokenizer):
    """Ritter-style tweets: whitespace-separated word/tag columns with USR, HT, URL, RT tags."""
    task = make_task(tmp_path, name="tweets", data_dir=str(SAMPLES / "tweets"), sep=None)
    task.setup(tokenizer)
    assert {"USR", "HT", "URL", "RT", "UH"} <= set(task.labels)
    urls = [w for s in task.sentences["train"] for w, t in zip(s.tokens, s.tags) if t == "URL"]
    assert urls and all(u.startswith("http://") for u in urls)
    assert task.evaluate("test", oracle(task, "test")).metrics["f1"] == pytest.approx(100.0)
