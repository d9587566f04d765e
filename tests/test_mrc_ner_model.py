"""BERT-MRC model and task: candidate span head = the all-pairs MLP, masks, features, loss, span decoding
(decoding to entities, the metric and the BIO export: tests/test_mrc_ner_decoding.py)."""

import numpy as np
import pytest
import torch
import yaml

from conftest import REPO_ROOT
from dicenlp.losses import build_loss
from dicenlp.models.backbone import load_backbone
from dicenlp.models.mrc import (BertMrcNer, SpanMatchHead, band_pairs, band_to_index, decode_spans, gold_index,
                                logit_threshold, span_keys)
from dicenlp.tasks import build_task
from dicenlp.tasks.mrc_ner import MrcNerTask

SAMPLES = REPO_ROOT / "data" / "samples"
LOSSES = ["ce", "wce", "fl", "dl", "tl", "dsc"]


def _queries(task):
    return yaml.safe_load((REPO_ROOT / "configs" / "task" / f"{task}.yaml").read_text())["task"]["params"]["queries"]


@pytest.fixture(scope="module")
def tiny():
    return load_backbone("tiny-bert")


@pytest.fixture(scope="module")
def conll_task(tiny):
    task = MrcNerTask(queries=_queries("conll03"), data_dir=str(SAMPLES / "conll03"), max_length=256,
                      span_sample_ratio=0.1)
    task.setup(tiny[0])
    return task


# ----------------------------------------------------------------------------- span head


def test_candidate_scores_equal_the_all_pairs_concat_mlp():
    torch.manual_seed(0)
    head = SpanMatchHead(hidden=16, out=2, dropout=0.0, activation="gelu").double()
    h = torch.randn(3, 7, 16, dtype=torch.float64)
    full = head.all_pairs_logits(h)  # [B, L, L, 2] from the [B, L, L, 2H] concatenation
    assert full.shape == (3, 7, 7, 2)
    index = torch.tensor([[0, 0, 0], [0, 2, 5], [1, 6, 6], [2, 1, 3], [2, 4, 4]])
    p_s, p_e = head.project(h)
    got = head.score(p_s, p_e, index)
    torch.testing.assert_close(got, full[index[:, 0], index[:, 1], index[:, 2]])


def test_band_pairs_match_brute_force():
    torch.manual_seed(1)
    s, e = torch.rand(2, 9) < 0.5, torch.rand(2, 9) < 0.5
    band = band_pairs(s, e, 3)
    got = {tuple(r) for r in band_to_index(band).tolist()}
    want = {(b, i, j) for b in range(2) for i in range(9) for j in range(i, min(9, i + 3)) if s[b, i] and e[b, j]}
    assert got == want
    assert band_pairs(s, e, 100).shape == (2, 9, 9)  # K is capped at L


def test_decode_spans_orders_caps_and_pads():
    index = torch.tensor([[0, 3, 4], [0, 1, 1], [2, 5, 6], [0, 2, 2], [2, 0, 0]])
    logits = torch.tensor([2.0, 5.0, -1.0, 0.5, 3.0])  # sigmoid form; threshold 0.5 = logit 0
    out, margins = decode_spans(index, logits, "sigmoid", 0.0, batch_size=3, max_spans=2)
    assert out.tolist() == [[[1, 1], [3, 4]], [[-100, -100], [-100, -100]], [[0, 0], [-100, -100]]]
    inf = float("-inf")
    assert margins.tolist() == [[5.0, 2.0], [inf, inf], [3.0, inf]]
    two = torch.stack([torch.zeros(5), logits], dim=1)  # softmax form: margin = logit_1 - logit_0
    out2, margins2 = decode_spans(index, two, "softmax", 0.0, 3, 2)
    assert torch.equal(out2, out) and torch.equal(margins2, margins)
    empty, none = decode_spans(index[:0], logits[:0], "sigmoid", 0.0, 2, 5)
    assert empty.shape == (2, 1, 2) and (empty == -100).all() and none.shape == (2, 1) and (none == inf).all()
    assert logit_threshold(0.5) == 0.0 and logit_threshold(0.9) == pytest.approx(np.log(9))


# ----------------------------------------------------------------------------- features


def test_features_put_starts_on_first_and_ends_on_last_subtoken(conll_task, tiny):
    tokenizer = tiny[0]
    feats = conll_task.datasets["train"]
    f = feats[1]  # sentence 0 ("Smith told Jones that Smith would leave Acme Corp ."), type ORG
    sent = conll_task.sentences["train"][0]
    tokens = tokenizer.convert_ids_to_tokens(f["input_ids"])
    off = feats.context_offset(1)
    assert tokens[0] == "[CLS]" and tokens[off - 1] == "[SEP]" and tokens[-1] == "[SEP]"
    assert f["token_type_ids"][off - 1] == 0 and f["token_type_ids"][off] == 1
    (start, end), = f["gold_spans"].tolist()  # "Acme Corp"
    assert "".join(t.lstrip("#") for t in tokens[start:end + 1]) == "AcmeCorp"
    assert tokens[start] == "A" and tokens[end] == "##p"  # first sub-token of Acme, last of Corp
    assert f["start_labels"][start] == 1 and f["end_labels"][end] == 1
    # exactly one start and one end decision per word of the context; none on query/special tokens
    n_words = len(sent.tokens)
    assert (f["start_labels"] != -100).sum() == n_words == (f["end_labels"] != -100).sum()
    assert (f["start_labels"][:off] == -100).all() and f["start_labels"][-1] == -100
    assert set(f["start_labels"][f["start_labels"] != -100].tolist()) == {0, 1}


def test_truncation_cuts_whole_words_and_keeps_gold_inside(conll_task):
    feats = conll_task.datasets["train"]
    s = next(k for k, sent in enumerate(conll_task.sentences["train"]) if sent.tokens[:3] == ["In", "a", "statement"])
    t = feats.type_index["LOC"]
    f = feats[s * feats.n_types + t]
    assert len(f["input_ids"]) <= 256
    kept = feats.kept_words(s, t)
    sent = conll_task.sentences["train"][s]
    assert 0 < kept < len(sent.tokens)
    off = feats.context_offset(t)
    assert len(f["input_ids"]) == off + feats.last_tok[s][kept - 1] + 1 + 1  # whole words + final [SEP]
    n_gold = sum(1 for a, b, typ in sent.entities if typ == "LOC" and b < kept)
    assert len(f["gold_spans"]) == n_gold < sum(1 for e in sent.entities if e[2] == "LOC")


def test_chinese_features_one_decision_per_character(tiny):
    task = MrcNerTask(queries=_queries("msra"), data_dir=str(SAMPLES / "msra"), language="zh", dev_ratio=0.1,
                      label_map={"NR": "PER", "NS": "LOC", "NT": "ORG"})
    task.setup(tiny[0])
    feats = task.datasets["test"]
    for k in range(12):
        f = feats[k]
        sent = feats.sentences[k // feats.n_types]
        assert (f["start_labels"] != -100).sum() == len(sent.tokens)
        for (a, b), (i, j) in zip([(a, b) for a, b, t in sent.entities if t == feats.types[k % feats.n_types]],
                                  f["gold_spans"].tolist()):
            off = feats.context_offset(k % feats.n_types)
            assert (i - off, j - off) == (a, b)  # one sub-token per character


def test_task_registry_and_label_counts(conll_task):
    task = build_task("mrc_ner", queries={"PER": "people"}, data_dir=str(SAMPLES / "conll03"))
    assert isinstance(task, MrcNerTask)
    neg, pos = conll_task.label_counts().tolist()
    feats = [conll_task.datasets["train"][k] for k in range(len(conll_task.datasets["train"]))]
    assert pos == sum(int((f["start_labels"] == 1).sum() + (f["end_labels"] == 1).sum()) for f in feats)
    assert neg == sum(int((f["start_labels"] == 0).sum() + (f["end_labels"] == 0).sum()) for f in feats)
    assert neg > 5 * pos


def test_unknown_type_is_an_error(tiny):
    task = MrcNerTask(queries={"PER": "people"}, data_dir=str(SAMPLES / "conll03"))
    with pytest.raises(ValueError, match=r"conll03/train.txt:10: entity type 'ORG' has no query; "
                                         r"expected one of \['PER'\]"):
        task.read_data()


def test_check_data_names_the_files(tmp_path):
    task = MrcNerTask(queries={"PER": "q"}, data_dir=str(tmp_path), data_help="Get it from X.")
    with pytest.raises(FileNotFoundError, match=r"(?s)mrc-ner.train.*train.txt.*Get it from X"):
        task.check_data()
    MrcNerTask(queries={"PER": "q"}, data_dir=str(SAMPLES / "conll03")).check_data()
    offline = MrcNerTask(queries={"PER": "q"}, data_dir=str(tmp_path), hub_name=["no-such-user/no-such-ner"])
    with pytest.raises(FileNotFoundError, match="Hub copy could not be reached"):
        offline.check_data()  # HF_HUB_OFFLINE=1 in tests (conftest): fails fast, with the reason


# ----------------------------------------------------------------------------- model, masks and loss


@pytest.mark.parametrize("loss_name", LOSSES)
def test_only_context_decisions_receive_gradient(conll_task, tiny, loss_name):
    torch.manual_seed(0)
    loss_fn = build_loss(loss_name, label_counts=conll_task.label_counts)
    model = conll_task.build_model(tiny[1], loss_fn)
    assert model.form == ("sigmoid" if loss_name in {"dl", "tl", "dsc"} else "softmax")
    batch = conll_task.collate([conll_task.datasets["train"][k] for k in range(6)])
    model.train()
    out = model(batch)
    B, L = batch["input_ids"].shape
    assert out["start_logits"].shape == ((B, L) if model.form == "sigmoid" else (B, L, 2))
    for key in ("start_logits", "end_logits"):
        out[key].retain_grad()
    loss = conll_task.compute_loss(out, batch, loss_fn)
    assert torch.isfinite(loss)
    loss.backward()
    for key, mask in (("start_logits", batch["start_mask"]), ("end_logits", batch["end_mask"])):
        grad = out[key].grad
        grad = grad if grad.dim() == 2 else grad.abs().sum(-1)
        assert (grad[~mask] == 0).all(), "query, special, padding and inner sub-tokens must get no gradient"
        assert (grad[mask] != 0).any()
    # candidates are inside the context band and include every gold pair
    idx = out["span_index"]
    assert batch["start_mask"][idx[:, 0], idx[:, 1]].all() and batch["end_mask"][idx[:, 0], idx[:, 2]].all()
    assert (idx[:, 2] >= idx[:, 1]).all()
    gold = gold_index(batch["gold_spans"])
    assert torch.isin(span_keys(gold, L), span_keys(idx, L)).all()


def test_total_loss_is_the_weighted_sum(conll_task, tiny):
    torch.manual_seed(0)
    loss_fn = build_loss("dsc")
    model = conll_task.build_model(tiny[1], loss_fn).eval()  # eval: no dropout → deterministic outputs
    batch = conll_task.collate([conll_task.datasets["train"][k] for k in range(8)])
    with torch.no_grad():
        out = model(batch)
    # put gold pairs among the candidates so that the span term is present
    L = batch["input_ids"].shape[1]
    gold = gold_index(batch["gold_spans"])
    index = torch.cat([gold, out["span_index"][~torch.isin(span_keys(out["span_index"], L), span_keys(gold, L))]])
    h = model.encode(batch)
    with torch.no_grad():
        span_logits = model.span_head.score(*model.span_head.project(h), index).squeeze(-1)
    out = {**out, "span_index": index, "span_logits": span_logits}
    target = torch.zeros(len(index))
    target[:len(gold)] = 1
    want = (1.0 * loss_fn(out["start_logits"], batch["start_labels"]) + 1.0 * loss_fn(out["end_logits"], batch["end_labels"])
            + 0.3 * loss_fn(span_logits, target))
    torch.testing.assert_close(conll_task.compute_loss(out, batch, loss_fn), want)


def test_candidate_cap_keeps_gold(conll_task, tiny):
    torch.manual_seed(0)
    model = BertMrcNer(tiny[1], form="sigmoid", max_span_len=8, span_sample_ratio=1.0, max_span_candidates=5)
    model.train()
    batch = conll_task.collate([conll_task.datasets["train"][k] for k in range(4)])
    out = model(batch)
    gold = gold_index(batch["gold_spans"])
    assert len(out["span_index"]) == max(5, len(gold))
    L = batch["input_ids"].shape[1]
    assert torch.isin(span_keys(gold, L), span_keys(out["span_index"], L)).all()
    model.eval()
    with torch.no_grad():
        ev = model(batch)
    # evaluation: predicted pairs only (no gold leaks into the candidates)
    band = model.predicted_band(ev["start_logits"], ev["end_logits"], batch)
    assert torch.equal(ev["span_index"], band_to_index(band))
