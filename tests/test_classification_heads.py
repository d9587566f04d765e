"""The classification head as a property of task × loss, the summary vector per encoder family, batching."""

from __future__ import annotations

import itertools

import numpy as np
import pytest
import torch

from dicenlp.losses import build_loss
from dicenlp.models.backbone import load_backbone
from dicenlp.models.classifier import SequenceClassifier, last_token_index, pooling_for
from dicenlp.tasks.classification import ClassificationTask, decode, num_outputs

from conftest import REPO_ROOT

GLUE = REPO_ROOT / "data" / "samples" / "glue"
LOSSES = ("ce", "wce", "fl", "dl", "tl", "dsc")
TASKS = {"mrpc": ("MRPC", 2), "qqp": ("QQP", 2), "sst2": ("SST-2", 2), "sst5": ("SST-5", 5)}


def make_loss(name, num_labels):
    return build_loss(name, class_weights=[1.0] * num_labels) if name == "wce" else build_loss(name)


@pytest.mark.parametrize("dataset,loss", list(itertools.product(TASKS, LOSSES)))
def test_head_size_is_a_property_of_task_and_loss(dataset, loss):
    num_labels = TASKS[dataset][1]
    expected = 1 if (num_labels == 2 and loss in ("dl", "tl", "dsc")) else num_labels
    # the shared rule: a binary decision follows the loss's binary_head (the dice family: one sigmoid logit)
    assert num_outputs(num_labels, make_loss(loss, num_labels).binary_head) == expected


def test_head_rule_rejects_unknown_head_and_single_class():
    with pytest.raises(ValueError, match="unknown binary head"):
        num_outputs(2, "hinge")
    with pytest.raises(ValueError, match="at least 2 classes"):
        num_outputs(1, "softmax")


def test_a_loss_config_may_choose_the_binary_head():
    """``loss.binary_head`` overrides the formula's head; the task asks the loss (2 logits for dsc + softmax)."""
    assert build_loss("dsc").binary_head == "sigmoid"
    assert num_outputs(2, build_loss({"kind": "dsc", "binary_head": "softmax"}).binary_head) == 2
    assert num_outputs(2, build_loss("ce", binary_head="sigmoid").binary_head) == 1
    with pytest.raises(ValueError, match="binary_head must be"):
        build_loss("dsc", binary_head="linear")


def test_two_class_dsc_is_the_mean_of_the_dices_of_both_classes():
    """With a 2-logit head, set-level DSC = (dice of the paraphrases + dice of the non-paraphrases) / 2, each on
    the sigmoid of the logit difference: what the dice lag study's ``dsc_2class`` variant trains."""
    torch.manual_seed(0)
    logits = torch.randn(12, 2, dtype=torch.float64) * 3
    labels = torch.randint(0, 2, (12,))
    dsc = build_loss("dsc")
    z = logits[:, 1] - logits[:, 0]
    expected = (dsc(z, labels.double()) + dsc(-z, 1 - labels.double())) / 2
    assert dsc(logits, labels).item() == pytest.approx(expected.item(), rel=1e-12)


def test_decode():
    pred, score = decode(torch.tensor([[2.0], [-0.5], [0.0]]))
    assert pred.tolist() == [1, 0, 0]  # sigmoid > 0.5 strictly
    assert score.tolist() == pytest.approx(torch.sigmoid(torch.tensor([2.0, -0.5, 0.0])).tolist())
    pred, score = decode(torch.tensor([[0.0, 1.0], [3.0, 1.0]]))
    assert pred.tolist() == [1, 0] and score[0] == pytest.approx(torch.sigmoid(torch.tensor(1.0)).item())
    pred, score = decode(torch.tensor([[0.0, 1.0, 5.0, 0.0, 0.0]]))
    assert pred.tolist() == [2] and 0.9 < score.item() < 1


def test_last_token_index_left_and_right_padding():
    right = torch.tensor([[1, 1, 1, 0, 0], [1, 1, 1, 1, 1]])
    left = torch.tensor([[0, 0, 1, 1, 1], [1, 1, 1, 1, 1]])
    assert last_token_index(right).tolist() == [2, 4]
    assert last_token_index(left).tolist() == [4, 4]


@pytest.fixture(scope="module")
def tiny_bert():
    return load_backbone("tiny-bert")


@pytest.fixture(scope="module")
def tiny_xlnet():
    return load_backbone("tiny-xlnet")


def test_pooling_follows_the_encoder_family(tiny_bert, tiny_xlnet):
    assert pooling_for(tiny_bert[1]) == "pooler"  # BERT: pre-trained [CLS] pooler (BertForSequenceClassification)
    assert pooling_for(tiny_xlnet[1]) == "last"   # XLNet: <cls> is the last token (SequenceSummary "last")
    with pytest.raises(ValueError, match="needs an encoder with a pooler"):
        SequenceClassifier(tiny_xlnet[1], 2, pooling="pooler")


@pytest.mark.parametrize("backbone,dataset", [("tiny_bert", "mrpc"), ("tiny_bert", "sst5"), ("tiny_xlnet", "mrpc")])
def test_every_loss_trains_through_the_head(backbone, dataset, request, tmp_path):
    tokenizer, encoder = request.getfixturevalue(backbone)
    folder, num_labels = TASKS[dataset]
    task = ClassificationTask(dataset=dataset, data_dir=str(GLUE / folder), cache_dir=str(tmp_path))
    task.setup(tokenizer)
    batch = task.collate([task.datasets["train"][i] for i in range(6)])
    for loss in LOSSES:
        torch.manual_seed(0)
        loss_fn = make_loss(loss, num_labels)
        model = task.build_model(encoder, loss_fn)
        model.zero_grad()
        logits = model(batch)["logits"]
        assert logits.shape == (6, num_outputs(num_labels, loss_fn.binary_head))
        value = task.compute_loss({"logits": logits}, batch, loss_fn)
        assert value.ndim == 0 and torch.isfinite(value)
        value.backward()
        assert model.classifier.weight.grad.abs().sum() > 0, loss
        out = task.eval_outputs({"logits": logits}, batch)
        assert out["pred"].shape == (6,) and int(out["pred"].max()) < num_labels


def test_xlnet_pair_batch_is_left_padded_with_cls_last_and_segments(tiny_xlnet, tmp_path):
    tokenizer, encoder = tiny_xlnet
    task = ClassificationTask(dataset="qqp", data_dir=str(GLUE / "QQP"), cache_dir=str(tmp_path))
    task.setup(tokenizer)
    features = [task.datasets["train"][i] for i in range(5)]
    batch = task.collate(features)
    lengths = [len(f["input_ids"]) for f in features]
    assert min(lengths) < max(lengths)
    cls_id = tokenizer.convert_tokens_to_ids("<cls>")
    assert (batch["input_ids"][:, -1] == cls_id).all()  # left padding: <cls> is the last column for every row
    assert (batch["attention_mask"].sum(1) == torch.tensor(lengths)).all()
    assert (batch["token_type_ids"][:, -1] == 2).all() and (batch["token_type_ids"] == 1).any()
    short = int(np.argmin(lengths))
    assert batch["attention_mask"][short, 0] == 0 and batch["input_ids"][short, 0] == tokenizer.pad_token_id
    # The classifier reads the <cls> state: it equals the last-token summary computed by hand.
    model = SequenceClassifier(encoder, 1).eval()
    with torch.no_grad():
        hidden = encoder(input_ids=batch["input_ids"], attention_mask=batch["attention_mask"],
                         token_type_ids=batch["token_type_ids"]).last_hidden_state
        expected = torch.tanh(model.summary(hidden[:, -1]))
        assert torch.allclose(model.summarize(batch), expected, atol=1e-5)


def test_bert_batch_is_right_padded_and_uses_the_pooler(tiny_bert, tmp_path):
    tokenizer, encoder = tiny_bert
    task = ClassificationTask(dataset="mrpc", data_dir=str(GLUE / "MRPC"), cache_dir=str(tmp_path))
    task.setup(tokenizer)
    batch = task.collate([task.datasets["dev"][i] for i in range(4)])
    assert (batch["input_ids"][:, 0] == tokenizer.cls_token_id).all()
    assert batch["labels"].tolist() == task.examples["dev"].label[:4].tolist()
    model = SequenceClassifier(encoder, 2).eval()
    with torch.no_grad():
        pooled = encoder(**{k: batch[k] for k in ("input_ids", "attention_mask", "token_type_ids")}).pooler_output
        assert torch.allclose(model.summarize(batch), pooled)


def test_head_dropout_follows_the_encoder_config(tiny_bert):
    _, encoder = tiny_bert
    assert SequenceClassifier(encoder, 1).dropout.p == encoder.config.hidden_dropout_prob
    assert SequenceClassifier(encoder, 1, dropout=0.3).dropout.p == 0.3


def test_tokenised_features_are_cached_and_reused(tiny_bert, tmp_path):
    tokenizer, _ = tiny_bert
    first = ClassificationTask(dataset="mrpc", data_dir=str(GLUE / "MRPC"), cache_dir=str(tmp_path))
    first.setup(tokenizer)
    files = sorted(p.name for p in tmp_path.rglob("*.arrow"))
    assert len(files) == 3  # train, dev, test
    second = ClassificationTask(dataset="mrpc", data_dir=str(GLUE / "MRPC"), cache_dir=str(tmp_path))
    second.setup(tokenizer)  # the tokenizer now carries truncation state: the keys must not change
    assert sorted(p.name for p in tmp_path.rglob("*.arrow")) == files
    assert second.datasets["dev"][3]["input_ids"] == first.datasets["dev"][3]["input_ids"]
    other = ClassificationTask(dataset="mrpc", data_dir=str(GLUE / "MRPC"), cache_dir=str(tmp_path), max_length=16)
    other.setup(tokenizer)
    assert len(list(tmp_path.rglob("*.arrow"))) == 6
    assert max(len(x) for x in other.datasets["train"]["input_ids"]) == 16


def test_real_mrpc_slice_through_the_task(tiny_bert, tmp_path):
    from conftest import shared_data

    directory = shared_data("mrpc")
    task = ClassificationTask(dataset="mrpc", data_dir=str(directory), cache_dir=str(tmp_path), max_length=64)
    task.setup(tiny_bert[0])
    assert {k: len(v) for k, v in task.datasets.items()} == {"train": 3668, "dev": 408}
    counts = task.label_counts()
    assert int(counts.sum()) == 3668 and counts[1] > counts[0]  # ~68% paraphrases
    n = len(task.datasets["dev"])
    gold = task.examples["dev"].label
    result = task.evaluate("dev", {"pred": gold.copy(), "score": np.ones(n), "feature_index": np.arange(n)})
    assert result.metrics["f1"] == 100.0 and result.metrics["accuracy"] == 100.0
    always = task.evaluate("dev", {"pred": np.ones(n, dtype=int), "score": np.ones(n), "feature_index": np.arange(n)})
    share = gold.mean()
    assert always.metrics["f1"] == pytest.approx(100 * 2 * share / (1 + share))  # majority baseline F1
