"""QA features: windows and answer positions round-trip to the answer text, for BERT and XLNet tokenizers
built offline (tiny-bert: [CLS] first, right padding; tiny-xlnet: <cls> last, left padding, context first);
batching; the feature cache (a second run does not tokenise again)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from conftest import REPO_ROOT, shared_data
from dicenlp.models.backbone import load_tokenizer
from dicenlp.tasks import build_task

SAMPLES = REPO_ROOT / "data" / "samples" / "squad"
TOKENIZERS = ["tiny-bert", "tiny-xlnet"]


@pytest.fixture(scope="module", params=TOKENIZERS)
def tokenizer(request):
    return load_tokenizer(request.param)


def make_task(tmp_path, version="v1.1", **params):
    files = {"v1.1": ("train-v1.1.json", "dev-v1.1.json", False), "v2.0": ("train-v2.0.json", "dev-v2.0.json", True),
             "quoref": ("quoref-train-v0.1.json", "quoref-dev-v0.1.json", False)}[version]
    settings = dict(max_length=96, doc_stride=24, max_query_length=24)
    settings.update(params)
    return build_task("qa", name=f"t{version}", data_dir=str(SAMPLES / version), train_file=files[0],
                      dev_file=files[1], version_2_with_negative=files[2], cache_dir=str(tmp_path / "cache"),
                      **settings)


def answer_spans(task, split):
    """Yield (feature row, example, decoded text or None) for every feature of a split."""
    features = task.features[split]
    for row in features:
        example = task.examples[split][row["example_index"]]
        s, e = row["start_positions"], row["end_positions"]
        text = None if s == row["cls_index"] else example["context"][row["offset_start"][s]:row["offset_end"][e]]
        yield row, example, text


@pytest.mark.parametrize("version", ["v1.1", "v2.0", "quoref"])
def test_answer_positions_round_trip_to_the_answer_text(tmp_path, tokenizer, version):
    task = make_task(tmp_path, version)
    task.setup(tokenizer)
    for split in ("train", "dev"):
        found = set()
        for row, example, text in answer_spans(task, split):
            assert len(row["input_ids"]) <= 96
            if text is not None:
                assert text == example["answers"]["text"][0], (example["id"], text)
                found.add(example["id"])
        answerable = {e["id"] for e in task.examples[split] if e["answers"]["text"]}
        assert found == answerable, "every answer lies entirely inside at least one window"


def test_layout_is_read_from_the_tokenizer(tmp_path, tokenizer):
    task = make_task(tmp_path)
    task.setup(tokenizer)
    xlnet = tokenizer.padding_side == "left"
    assert task.context_first == xlnet
    for row in task.features["train"]:
        ids = row["input_ids"]
        assert ids[row["cls_index"]] == tokenizer.cls_token_id
        assert row["cls_index"] == (len(ids) - 1 if xlnet else 0)
        context = np.flatnonzero(np.asarray(row["offset_start"]) >= 0)
        assert context.size == row["context_length"] > 0
        assert np.all(np.diff(context) == 1), "context tokens are contiguous"
        # XLNet: the context comes first (position 0); BERT: after [CLS] question [SEP]
        assert (context[0] == 0) == xlnet


def test_consecutive_windows_share_doc_stride_context_tokens(tmp_path, tokenizer):
    task = make_task(tmp_path, max_length=80, doc_stride=20)
    task.setup(tokenizer)
    rows = list(task.features["train"])
    pairs = 0
    for a, b in zip(rows, rows[1:]):
        if a["example_index"] != b["example_index"]:
            continue
        sa = [o for o in a["offset_start"] if o >= 0]
        sb = [o for o in b["offset_start"] if o >= 0]
        assert sa[-20:] == sb[:20], "the next window starts doc_stride tokens before this one ends"
        pairs += 1
    assert pairs > 0, "the sample has contexts longer than one window"


def test_long_questions_are_cut_to_max_query_length(tmp_path, tokenizer):
    task = make_task(tmp_path, max_query_length=5)
    task.setup(tokenizer)
    row = task.features["train"][0]
    question_tokens = len(row["input_ids"]) - row["context_length"] - tokenizer.num_special_tokens_to_add(pair=True)
    assert question_tokens == 5


def test_answers_outside_a_window_and_unanswerable_questions_point_at_the_null_position(tmp_path, tokenizer):
    task = make_task(tmp_path, "v2.0")
    task.setup(tokenizer)
    outside = 0
    for row, example, text in answer_spans(task, "train"):
        if not example["answers"]["text"]:
            assert row["start_positions"] == row["end_positions"] == row["cls_index"]
        elif text is None:
            assert row["start_positions"] == row["end_positions"] == row["cls_index"]
            start = example["answers"]["answer_start"][0]
            offsets = [o for o in row["offset_start"] if o >= 0]
            ends = [o for o in row["offset_end"] if o >= 0]
            assert start < offsets[0] or start + len(example["answers"]["text"][0]) > ends[-1]
            outside += 1
    assert outside > 0


def test_collate_pads_on_the_tokenizer_side_and_shifts_positions(tmp_path, tokenizer):
    task = make_task(tmp_path)
    task.setup(tokenizer)
    rows = [task.datasets["train"][i] for i in range(len(task.datasets["train"]))]
    rows = sorted(rows, key=lambda r: len(r["input_ids"]))[:2] + rows[-2:]  # mixed lengths
    batch = task.collate(rows)
    width = batch["input_ids"].shape[1]
    assert width == max(len(r["input_ids"]) for r in rows)
    for b, row in enumerate(rows):
        n = len(row["input_ids"])
        pad = width - n if tokenizer.padding_side == "left" else 0
        assert int(batch["pad_left"][b]) == pad
        assert batch["input_ids"][b, pad:pad + n].tolist() == row["input_ids"]
        assert int(batch["attention_mask"][b].sum()) == n
        assert int(batch["input_ids"][b, batch["cls_index"][b]]) == tokenizer.cls_token_id
        for which in ("start", "end"):
            pos = int(batch[f"{which}_positions"][b])
            assert int(batch["input_ids"][b, pos]) == row["input_ids"][row[f"{which}_positions"]]
        # the loss mask: context tokens + the null position, nothing else
        expected = torch.zeros(width, dtype=torch.bool)
        expected[pad:pad + n] = torch.as_tensor(row["offset_start"]) >= 0
        expected[int(batch["cls_index"][b])] = True
        assert torch.equal(batch["loss_mask"][b], expected)


def test_a_second_setup_reads_the_cache_instead_of_tokenising(tmp_path, tokenizer, monkeypatch):
    import dicenlp.tasks.qa as qa

    tokenizer = load_tokenizer(tokenizer.name_or_path)  # fresh: no truncation state from earlier calls
    first = make_task(tmp_path)
    first.setup(tokenizer)  # (tokenising changes the tokenizer's truncation state: the key must ignore it)
    cache_files = sorted(p.name for p in (tmp_path / "cache").glob("*.arrow"))
    assert len(cache_files) == 2  # train and dev

    def must_not_run(*args, **kwargs):
        raise AssertionError("features were tokenised again")

    monkeypatch.setattr(qa, "prepare_features", must_not_run)
    second = make_task(tmp_path)
    second.setup(tokenizer)
    assert second.features["train"]["input_ids"] == first.features["train"]["input_ids"]
    assert sorted(p.name for p in (tmp_path / "cache").glob("*.arrow")) == cache_files
    # a different window setting is a different cache entry: it must tokenise (and here it cannot)
    with pytest.raises(AssertionError, match="tokenised again"):
        make_task(tmp_path, doc_stride=16).setup(tokenizer)


def test_window_settings_are_checked(tmp_path, tokenizer):
    with pytest.raises(ValueError, match="doc_stride"):
        make_task(tmp_path, max_length=64, max_query_length=32, doc_stride=40).setup(tokenizer)


def test_real_squad2_slice_positions_round_trip(tmp_path, tokenizer):
    path = shared_data("squad2", "dev-v2.0-sample.json")
    task = build_task("qa", name="real", data_dir=str(path.parent), train_file=path.name, dev_file=path.name,
                      version_2_with_negative=True, cache_dir=str(tmp_path / "cache"), max_length=256,
                      doc_stride=64)
    task.setup(tokenizer)
    exact = total = 0
    for row, example, text in answer_spans(task, "dev"):
        if text is None:
            continue
        gold = example["answers"]["text"][0]
        assert gold in text, (gold, text)  # the tokens cover the answer
        exact += text == gold
        total += 1
    assert total > 90 and exact / total > 0.95  # tokens at word boundaries reproduce the answer exactly


def test_model_forward_shapes_follow_the_loss(tmp_path, tokenizer):
    from dicenlp.losses import build_loss
    from dicenlp.models.backbone import load_encoder

    task = make_task(tmp_path)
    task.setup(tokenizer)
    encoder = load_encoder("tiny-xlnet" if tokenizer.padding_side == "left" else "tiny-bert")
    batch = task.collate([task.datasets["train"][i] for i in range(3)])
    width = batch["input_ids"].shape[1]
    for loss, shape in (("ce", (3, width)), ("dsc", (3, width)), ("fl", (3, width, 2))):
        model = task.build_model(encoder, build_loss(loss))
        out = model(batch)
        assert tuple(out["start_logits"].shape) == shape and tuple(out["end_logits"].shape) == shape


def test_missing_files_are_named_and_hub_copies_are_read(tmp_path, tokenizer):
    """No local files: a clear error, or the Hub copy (here a local folder in the Hub's `squad` column layout,
    read through the same datasets.load_dataset call)."""
    import datasets

    task = make_task(tmp_path)
    task.data_dir = tmp_path / "nowhere"
    with pytest.raises(FileNotFoundError, match="train-v1.1.json.*docs/mrc.md"):
        task.check_data()
    hub = tmp_path / "hub"
    hub.mkdir()
    from dicenlp.data.squad import read_squad_json

    for split, name in (("train", "train-v1.1.json"), ("validation", "dev-v1.1.json")):
        rows = read_squad_json(SAMPLES / "v1.1" / name)
        datasets.Dataset.from_list([{k: r[k] for k in ("id", "title", "context", "question", "answers")}
                                    for r in rows]).to_parquet(str(hub / f"{split}.parquet"))
    from_hub = build_task("qa", name="hub", data_dir=str(tmp_path / "nowhere"), hub_name=str(hub),
                          cache_dir=str(tmp_path / "cache"), max_length=96, doc_stride=24, max_query_length=24)
    from_hub.setup(tokenizer)
    local = make_task(tmp_path)
    local.setup(tokenizer)
    assert from_hub.examples["dev"] == local.examples["dev"]
    assert from_hub.features["train"]["input_ids"] == local.features["train"]["input_ids"]
