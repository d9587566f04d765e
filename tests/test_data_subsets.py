"""Split-offs and caps (dicenlp.data.subsets): reproducible, nested, whole groups, the same for every task kind."""

from __future__ import annotations

import numpy as np
import pytest

from conftest import REPO_ROOT
from dicenlp.data.subsets import DataPlan, first_n, seeded_order
from dicenlp.tasks import build_task

SAMPLES = REPO_ROOT / "data" / "samples"


def test_caps_are_seeded_samples_in_file_order_and_a_smaller_cap_is_a_subset():
    splits = {"train": list(range(100)), "dev": list(range(100, 150))}
    plan = DataPlan.from_params(max_examples={"train": 30, "dev": 10})
    out, created = plan.apply(splits)
    assert created == {} and len(out["train"]) == 30 and len(out["dev"]) == 10
    assert out["train"] == sorted(out["train"]) and out["train"] != list(range(30))  # a sample, in file order
    assert plan.apply(splits)[0] == out  # reproducible
    smaller = DataPlan.from_params(max_examples={"train": 12}).apply(splits)[0]["train"]
    assert set(smaller) <= set(out["train"])
    other_seed = DataPlan.from_params(max_examples={"train": 30}, split_seed=7).apply(splits)[0]["train"]
    assert other_seed != out["train"]
    assert DataPlan.from_params(max_examples={"train": 1000}).apply(splits)[0]["train"] == splits["train"]


def test_split_off_creates_only_a_missing_split_and_the_source_keeps_the_rest():
    splits = {"train": list(range(40)), "dev": list(range(40, 60))}
    plan = DataPlan.from_params(split_off={"test": {"from": "dev", "size": 0.5}, "dev": {"from": "train", "size": 5}},
                                max_examples={"test": 4})
    out, created = plan.apply(splits)
    assert created == {"test": "dev"}  # dev exists in the files: not split off train
    assert len(out["dev"]) == 10 and len(out["test"]) == 4 and out["train"] == splits["train"]
    assert not set(out["dev"]) & set(out["test"]) and set(out["test"]) <= set(range(40, 60))
    with pytest.raises(ValueError, match="no test split"):
        DataPlan.from_params(split_off={"dev": {"from": "test", "size": 2}}).apply({"train": [1, 2, 3]})
    with pytest.raises(ValueError, match="leaves none"):
        DataPlan.from_params(split_off={"dev": {"from": "train", "size": 3}}).apply({"train": [1, 2, 3]})


@pytest.mark.parametrize("params, message", [
    ({"max_examples": {"valid": 3}}, "unknown split"),
    ({"max_examples": {"train": 0}}, "positive"),
    ({"split_off": {"test": {"from": "test", "size": 3}}}, "two different splits"),
    ({"split_off": {"test": {"from": "dev", "size": -1}}}, "count >= 1 or a fraction"),
])
def test_a_wrong_plan_is_named_in_the_message(params, message):
    with pytest.raises(ValueError, match=message):
        DataPlan.from_params(**params)


def test_groups_stay_whole():
    groups = [i // 5 for i in range(50)]  # 10 groups of 5 (e.g. the questions of one paragraph)
    order = seeded_order(50, 42, "dev", groups)
    taken = first_n(order, 12)
    assert len(taken) == 15 and len({groups[i] for i in taken}) == 3
    assert np.array_equal(np.sort(np.concatenate(order)), np.arange(50))


def _tokenizer():
    from dicenlp.models.backbone import load_backbone

    return load_backbone("tiny-bert")[0]


def test_tagging_task_splits_off_test_and_caps_train():
    task = build_task("tagging", name="pos", data_dir=str(SAMPLES / "pos"), files={"train": "train.tsv", "dev": "dev.tsv"},
                      max_examples={"train": 40}, split_off={"test": {"from": "dev", "size": 0.5}})
    task.setup(_tokenizer())
    assert task.data_sizes["train"] == 40 and set(task.datasets) == {"train", "dev", "test"}
    assert abs(task.data_sizes["dev"] - task.data_sizes["test"]) <= 1 and task.split_from == {"test": "dev"}


def test_mrc_ner_dev_ratio_is_a_split_off_of_train():
    queries = {"PER": "person", "LOC": "location", "ORG": "organization"}
    kwargs = dict(queries=queries, data_dir=str(SAMPLES / "msra"), language="zh", name="msra",
                  label_map={"NR": "PER", "NS": "LOC", "NT": "ORG"})
    by_ratio = build_task("mrc_ner", dev_ratio=0.1, **kwargs)
    by_plan = build_task("mrc_ner", split_off={"dev": {"from": "train", "size": 0.1}}, max_examples={"test": 7},
                         **kwargs)
    tokenizer = _tokenizer()
    by_ratio.setup(tokenizer)
    by_plan.setup(tokenizer)
    assert by_ratio.sentences["dev"] == by_plan.sentences["dev"] and by_plan.split_from == {"dev": "train"}
    assert by_plan.data_sizes["test"] == 7 and by_ratio.data_sizes["test"] > 7
    with pytest.raises(FileNotFoundError, match="split_off"):
        build_task("mrc_ner", **kwargs).setup(tokenizer)


def test_qa_task_splits_a_single_file_by_paragraph():
    task = build_task("qa", name="squad", data_dir=str(SAMPLES / "squad" / "v1.1"), train_file="train-v1.1.json",
                      dev_file=None, max_length=64, doc_stride=32, max_query_length=16,
                      split_off={"dev": {"from": "train", "size": 0.3}})
    task.setup(_tokenizer())
    contexts = {s: {ex["context"] for ex in task.examples[s]} for s in ("train", "dev")}
    assert task.data_sizes["dev"] >= 1 and not contexts["train"] & contexts["dev"]


def test_classification_task_caps_before_the_variant():
    task = build_task("classification", dataset="mrpc", data_dir=str(SAMPLES / "glue" / "MRPC"),
                      max_examples={"train": 8, "dev": 4})
    task.setup(_tokenizer())
    assert task.data_sizes == {"train": 8, "dev": 4, "test": len(task.examples["test"])}


def test_classification_files_without_dev_take_a_split_off_dev(tmp_path):
    """MRPC's train.tsv + GLUE dev as the labeled test set (the mini tables): the dev part comes off train."""
    for name, source in (("train.tsv", "train.tsv"), ("test.tsv", "dev.tsv")):
        (tmp_path / name).write_bytes((SAMPLES / "glue" / "MRPC" / source).read_bytes())
    without = build_task("classification", dataset="mrpc", data_dir=str(tmp_path), source="local", require_test=True)
    with pytest.raises(FileNotFoundError, match="dev"):
        without.check_data()
    task = build_task("classification", dataset="mrpc", data_dir=str(tmp_path), require_test=True,
                      split_off={"dev": {"from": "train", "size": 5}})
    task.check_data()
    task.read_data()
    assert task.data_sizes["dev"] == 5 and task.split_from == {"dev": "train"}
    assert task.data_sizes["test"] == len(build_task("classification", dataset="mrpc",
                                                     data_dir=str(SAMPLES / "glue" / "MRPC")).read_splits()["dev"])


def test_tagging_files_set_to_null_are_no_files():
    """`files={train: x, dev: null, test: null}` merges into a task's files: null drops a split's file."""
    task = build_task("tagging", name="ud_en", data_dir=str(SAMPLES / "ud_en"), format="conllu",
                      files={"train": "en_ewt-ud-dev.conllu", "dev": None, "test": None},
                      split_off={"test": {"from": "train", "size": 0.3}, "dev": {"from": "train", "size": 0.2}})
    task.read_data()
    assert task.split_from == {"test": "train", "dev": "train"} and set(task.sentences) == {"train", "dev", "test"}
