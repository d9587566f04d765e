"""BERT-MRC NER decoding to entities: the flat rule, nested data kept nested, span scores in the predictions,
the metric (truncated entities are misses), the BIO export and its equality with seqeval on flat predictions
(bundled fixtures and, when present, the real CoNLL-2003 dev slice)."""

import itertools
import json
import logging
import random
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import yaml
from seqeval.metrics import classification_report, f1_score, precision_score, recall_score

from conftest import REPO_ROOT, shared_data
from dicenlp.data.mrc_ner import read_tagged_file
from dicenlp.export_ner import ExportError, export_run, predictions_to_columns
from dicenlp.models.backbone import load_backbone
from dicenlp.tasks.flat_spans import flat_select, overlap_mask
from dicenlp.tasks.mrc_ner import MrcNerTask

SAMPLES = REPO_ROOT / "data" / "samples"
SURE = 8.0  # a margin (logit) far above every threshold


def _queries(task):
    return yaml.safe_load((REPO_ROOT / "configs" / "task" / f"{task}.yaml").read_text())["task"]["params"]["queries"]


@pytest.fixture(scope="module")
def tokenizer():
    return load_backbone("tiny-bert")[0]


def _task(tokenizer, data_dir, decoding="flat", **kw):
    task = MrcNerTask(queries=_queries("conll03"), data_dir=str(data_dir), decoding=decoding, **kw)
    task.setup(tokenizer)
    return task


@pytest.fixture(scope="module")
def conll_task(tokenizer):
    return _task(tokenizer, SAMPLES / "conll03")


def gathered_from_words(task, split, spans):
    """What the trainer gathers from ``eval_outputs``, built from word-level spans
    ``(sentence, type, start, end, (start margin, end margin, match margin))``: token span = first sub-token of
    the start word … last sub-token of the end word, after the query."""
    feats = task.datasets[split]
    rows = {}
    for s, typ, a, b, margins in spans:
        t = feats.type_index[typ]
        off = feats.context_offset(t)
        rows.setdefault(s * feats.n_types + t, []).append(
            (off + feats.first_tok[s][a], off + feats.last_tok[s][b], margins))
    width = max([1, *map(len, rows.values())])
    pred_spans = np.full((len(feats), width, 2), -100, np.int64)
    pred_margins = np.full((len(feats), width, 3), -100.0, np.float32)
    for f, row in rows.items():
        for p, (i, j, m) in enumerate(row):
            pred_spans[f, p], pred_margins[f, p] = (i, j), m
    return {"feature_index": np.arange(len(feats)), "pred_spans": pred_spans, "pred_margins": pred_margins}


def gold_predictable(task, split):
    """Gold entities that fit next to their query (``max_length``): ``(sentence, type, start, end)``."""
    feats = task.datasets[split]
    return [(s, t, a, b) for s, sent in enumerate(task.sentences[split]) for a, b, t in sent.entities
            if b < feats.kept_words(s, feats.type_index[t])]


def noisy_candidates(task, split, seed=0):
    """Gold with every error BERT-MRC makes on flat data: missed entities, wrong boundaries, wrong types, and
    bogus spans from one entity's start to a later entity's end (issue 16), scored above or below the gold."""
    rng = random.Random(seed)
    feats = task.datasets[split]
    types = task.types
    out = []
    by_sentence = {}
    for s, t, a, b in gold_predictable(task, split):
        by_sentence.setdefault(s, []).append((a, b, t))
        r = rng.random()
        margins = (rng.uniform(1, SURE), rng.uniform(1, SURE), rng.uniform(0.1, SURE))
        if r < 0.1:
            continue  # missed
        if r < 0.2 and b > a:
            b = a  # wrong end
        elif r < 0.3:
            t = rng.choice([x for x in types if x != t])  # wrong type
        out.append((s, t, a, b, margins))
        if rng.random() < 0.3:  # the same words as another type, scored lower
            out.append((s, rng.choice([x for x in types if x != t]), a, b, tuple(m - 0.5 for m in margins)))
    for s, ents in by_sentence.items():
        for (a, _, t), (_, b, _) in itertools.combinations(sorted(ents), 2):
            if b < feats.kept_words(s, feats.type_index[t]) and rng.random() < 0.5:
                out.append((s, t, a, b, (rng.uniform(1, SURE), rng.uniform(1, SURE), rng.uniform(0.1, SURE))))
    return out


def spans_of(items):
    return [tuple(x["span"]) for x in items]


def seqeval_scores(bio_text):
    """seqeval's micro P/R/F1 (%) and per-type report from ``token gold pred`` columns."""
    gold, pred = [[]], [[]]
    for line in bio_text.splitlines():
        if not line:
            gold.append([])
            pred.append([])
            continue
        _, g, p = line.split(" ")
        gold[-1].append(g)
        pred[-1].append(p)
    gold, pred = [g for g in gold if g], [p for p in pred if p]
    return ({"precision": 100 * precision_score(gold, pred), "recall": 100 * recall_score(gold, pred),
             "f1": 100 * f1_score(gold, pred)}, classification_report(gold, pred, output_dict=True))


def assert_equals_seqeval(result):
    """The run's span P/R/F1 (micro and per type) = seqeval's on the exported BIO columns."""
    micro, report = seqeval_scores(predictions_to_columns(result.predictions))
    for key in ("precision", "recall", "f1"):
        assert result.metrics[key] == pytest.approx(micro[key], abs=1e-9)
    for typ, row in result.extra_files["span_f1.json"]["per_type"].items():
        if row["support"]:
            assert row["f1"] == pytest.approx(100 * report[typ]["f1-score"], abs=1e-9)


# ----------------------------------------------------------------------------- the flat rule


def test_flat_rule_keeps_the_most_probable_non_overlapping_set():
    # "But China saw ... newcomers Uzbekistan ." (issue 16): [1,1], [1,23], [23,23], all LOC
    s, a, b = [0, 0, 0], [1, 1, 23], [1, 23, 23]
    log = np.log
    assert flat_select(s, a, b, log([0.9, 0.6, 0.8])).tolist() == [True, False, True]
    # the long span wins only when it is more probable than the two short ones together (greedy by score
    # would keep it as soon as it beats each of them)
    assert flat_select(s, a, b, log([0.4, 0.7, 0.5])).tolist() == [True, False, True]
    assert flat_select(s, a, b, log([0.4, 0.95, 0.5])).tolist() == [False, True, False]
    # across types, and a chain: A–B–C overlapping in a row, A + C beat B
    assert flat_select([0, 0, 0], [0, 2, 4], [2, 4, 6], log([0.5, 0.9, 0.5]), tiebreak=[0, 1, 2]).tolist() == \
        [True, False, True]
    # sentences are independent; spans that merely touch do not overlap
    assert flat_select([0, 1, 1], [0, 0, 3], [3, 2, 5], [0, 0, 0]).tolist() == [True, True, True]
    assert flat_select([], [], [], []).tolist() == []
    with pytest.raises(ValueError, match="NaN"):
        flat_select([0], [0], [0], [float("nan")])


def test_flat_rule_breaks_ties_deterministically():
    # equal totals: the earlier-ending span, then the shorter one, then the lower tiebreak (type order)
    assert flat_select([0, 0], [2, 1], [3, 2], [-1.0, -1.0]).tolist() == [False, True]
    assert flat_select([0, 0], [1, 2], [3, 3], [-1.0, -1.0]).tolist() == [False, True]
    assert flat_select([0, 0], [1, 1], [2, 2], [-1.0, -1.0], tiebreak=[3, 1]).tolist() == [False, True]
    # saturated probabilities (all 1): the most spans, [1,1] + [23,23] over [1,23]
    assert flat_select([0, 0, 0], [1, 1, 23], [1, 23, 23], [0.0, 0.0, 0.0]).tolist() == [True, False, True]
    # whatever the input order
    rng = np.random.default_rng(0)
    rows = np.unique(np.stack([rng.integers(0, 5, 300), rng.integers(0, 10, 300), rng.integers(0, 4, 300),
                               rng.integers(-3, 0, 300), rng.integers(0, 4, 300)], axis=1), axis=0)
    s, a, length, score, tie = rows.T
    keep = flat_select(s, a, a + length, score.astype(float), tie)
    perm = rng.permutation(len(rows))
    assert np.array_equal(flat_select(s[perm], a[perm], a[perm] + length[perm], score[perm].astype(float), tie[perm]),
                          keep[perm])


def test_flat_rule_is_the_best_subset_by_brute_force():
    rng = np.random.default_rng(1)
    for _ in range(60):
        n = int(rng.integers(1, 11))
        a = rng.integers(0, 8, n)
        b, p = a + rng.integers(0, 3, n), rng.uniform(0.05, 1.0, n)
        keep = flat_select(np.zeros(n, int), a, b, np.log(p))
        best = max((sum(p[list(c)]) for r in range(n + 1) for c in itertools.combinations(range(n), r)
                    if not overlap_mask(np.zeros(r, int), a[list(c)], b[list(c)]).any()))
        assert not overlap_mask(np.zeros(keep.sum(), int), a[keep], b[keep]).any()
        assert p[keep].sum() == pytest.approx(best, rel=1e-12)


def test_overlap_mask_matches_brute_force():
    rng = np.random.default_rng(2)
    s, a = rng.integers(0, 20, 300), rng.integers(0, 30, 300)
    b = a + rng.integers(0, 5, 300)
    want = [any(j != k and s[j] == s[k] and a[j] <= b[k] and a[k] <= b[j] for j in range(300)) for k in range(300)]
    assert overlap_mask(s, a, b).tolist() == want
    assert overlap_mask([0], [0], [0]).tolist() == [False]


# ----------------------------------------------------------------------------- the task: flat vs nested


def test_flat_and_nested_decoding_of_the_same_outputs(tokenizer, conll_task):
    """Same gathered outputs: nested keeps every candidate; flat keeps a non-overlapping subset to which no
    dropped span could be added (each overlaps a kept one); nested = flat pred ∪ dropped."""
    nested_task = _task(tokenizer, SAMPLES / "conll03", decoding="nested")
    gathered = gathered_from_words(conll_task, "dev", noisy_candidates(conll_task, "dev"))
    flat, nested = conll_task.evaluate("dev", gathered), nested_task.evaluate("dev", gathered)
    n_dropped = 0
    for f, n in zip(flat.predictions, nested.predictions):
        kept, dropped = spans_of(f["pred"]), spans_of(f["dropped"])
        assert sorted(kept + dropped) == sorted(spans_of(n["pred"])) and "dropped" not in n
        if kept:
            assert not overlap_mask([0] * len(kept), *zip(*[(a, b) for a, b, _ in kept])).any()
        for a, b, _ in dropped:
            assert any(ka <= b and a <= kb for ka, kb, _ in kept)
        n_dropped += len(dropped)
    assert n_dropped > 0
    assert flat.extra_files["span_f1.json"]["dropped"] == n_dropped
    assert flat.extra_files["span_f1.json"]["decoding"] == "flat"
    assert flat.metrics["precision"] > nested.metrics["precision"]  # the dropped spans were mostly wrong


def test_nested_data_is_kept_nested(tokenizer, caplog):
    """The nested fixture: decoding=nested predicts every nested gold entity; flat decoding cannot, and the
    task says so when it reads the data."""
    nested = _task(tokenizer, SAMPLES / "mrc_ner", decoding="nested")
    oracle = [(*e, (SURE, SURE, SURE)) for e in gold_predictable(nested, "dev")]
    result = nested.evaluate("dev", gathered_from_words(nested, "dev", oracle))
    assert result.metrics["f1"] == pytest.approx(100.0)
    row = [p for p in result.predictions if p["tokens"][:3] == ["He", "studied", "at"]][0]
    assert spans_of(row["pred"]) == [tuple(g) for g in row["gold"]] == [(4, 6, "ORG"), (4, 8, "ORG"), (6, 6, "LOC")]
    with caplog.at_level(logging.WARNING, logger="dicenlp.tasks.mrc_ner"):
        flat = _task(tokenizer, SAMPLES / "mrc_ner", decoding="flat")
    assert "overlap another one (nested data)" in caplog.text and "decoding=nested" in caplog.text
    assert flat.evaluate("dev", gathered_from_words(flat, "dev", oracle)).metrics["f1"] < 100.0


def test_decoding_must_be_flat_or_nested():
    with pytest.raises(ValueError, match="'flat' .* or 'nested'"):
        MrcNerTask(queries={"PER": "q"}, decoding="greedy")


def test_flat_decoding_is_the_default_of_the_flat_datasets(compose_config):
    for task in ("conll03", "ontonotes5", "msra", "ontonotes4"):
        assert compose_config(f"task={task}", "loss=dsc").task.params.decoding == "flat"


def test_predictions_carry_the_span_scores(conll_task):
    margins = (2.0, 1.0, -0.5)  # the span-match probability 0.38 is below the 0.5 threshold: not a prediction
    s, t, a, b = gold_predictable(conll_task, "dev")[0]  # decode_spans drops it; here the task must score it
    result = conll_task.evaluate("dev", gathered_from_words(conll_task, "dev", [(s, t, a, b, margins)]))
    entry = result.predictions[s]["pred"][0]
    p = 1 / (1 + np.exp(-np.array(margins)))
    assert entry["span"] == [a, b, t]
    assert [entry["p_start"], entry["p_end"], entry["p_match"]] == pytest.approx(p.tolist(), rel=1e-5)
    assert entry["score"] == pytest.approx(float(np.log(p.prod())), rel=1e-5)
    # saturated probabilities keep distinct scores (log space), readable where p rounds to 1
    sure = conll_task.evaluate("dev", gathered_from_words(conll_task, "dev", [(s, t, a, b, (30.0, 30.0, 20.0))]))
    best = sure.predictions[s]["pred"][0]
    assert best["p_match"] == 1.0 and best["score"] == pytest.approx(-(2 * np.exp(-30.0) + np.exp(-20.0)), rel=1e-5)


def test_metric_counts_truncated_entities_as_misses(conll_task):
    feats = conll_task.datasets["test"]
    oracle = [(*e, (SURE, SURE, SURE)) for e in gold_predictable(conll_task, "test")]
    result = conll_task.evaluate("test", gathered_from_words(conll_task, "test", oracle))
    n_gold = sum(len(s.entities) for s in conll_task.sentences["test"])
    assert len(oracle) < n_gold  # the long sentence loses entities to max_length
    assert len(oracle) == sum(len(feats[k]["gold_spans"]) for k in range(len(feats)))
    assert result.metrics["precision"] == pytest.approx(100.0)
    assert result.metrics["recall"] == pytest.approx(100.0 * len(oracle) / n_gold)
    assert set(result.extra_files["span_f1.json"]["per_type"]) == {"LOC", "MISC", "ORG", "PER"}
    assert "f1_PER" in result.metrics
    smith = [p for p in result.predictions if p["tokens"][:3] == ["Smith", "told", "Jones"]][0]
    assert spans_of(smith["pred"]) == [tuple(g) for g in smith["gold"]] == \
        [(0, 0, "PER"), (2, 2, "PER"), (4, 4, "PER"), (7, 8, "ORG")]


# ----------------------------------------------------------------------------- BIO export and seqeval


def test_bio_export_round_trip_and_seqeval_on_flat_predictions(conll_task, tmp_path):
    result = conll_task.evaluate("dev", gathered_from_words(conll_task, "dev", noisy_candidates(conll_task, "dev")))
    assert 0 < result.metrics["f1"] < 100
    assert_equals_seqeval(result)
    (tmp_path / "predictions_dev.json").write_text(json.dumps(result.predictions))
    [path] = export_run(tmp_path)
    assert path == tmp_path / "predictions_dev.bio"
    # the columns read back (this project's column reader, as any NER input file) give the same spans
    gold = read_tagged_file(path, scheme="BIO", tag_col=1)
    pred = read_tagged_file(path, scheme="BIO", tag_col=-1)
    for row, g, p in zip(result.predictions, gold, pred, strict=True):
        assert g.tokens == p.tokens == row["tokens"]
        assert g.entities == [tuple(x) for x in row["gold"]]
        assert p.entities == sorted(spans_of(row["pred"]))
    # other schemes hold the same spans
    for scheme in ("IOB1", "BIOES"):
        (tmp_path / scheme).mkdir()
        (tmp_path / scheme / "predictions_dev.json").write_text(json.dumps(result.predictions))
        [path] = export_run(tmp_path / scheme, scheme=scheme)
        assert [s.entities for s in read_tagged_file(path, scheme=scheme, tag_col=-1)] == [s.entities for s in pred]


def test_export_refuses_nested_predictions(tokenizer, tmp_path):
    nested = _task(tokenizer, SAMPLES / "mrc_ner", decoding="nested")
    oracle = [(*e, (SURE, SURE, SURE)) for e in gold_predictable(nested, "dev")]
    rows = nested.evaluate("dev", gathered_from_words(nested, "dev", oracle)).predictions
    with pytest.raises(ExportError, match=r"sentence \d+: the gold spans cannot be written as BIO.*decoding=flat"):
        predictions_to_columns(rows, where="x")
    with pytest.raises(FileNotFoundError, match="no predictions_<split>.json"):
        export_run(tmp_path)


def test_seqeval_equality_on_the_real_conll03_dev_slice(tokenizer):
    """CoNLL-2003 dev (3,250 sentences, 5,942 entities): noisy candidates → flat decoding → span metric =
    seqeval on the exported BIO columns; and the flat decoder is cheap there."""
    path = shared_data("conll03", "valid.txt")
    task = MrcNerTask(queries=_queries("conll03"), data_dir=str(path.parent), max_length=512,
                      files={"train": path.name, "dev": path.name})
    task.setup(tokenizer)
    cand = noisy_candidates(task, "dev", seed=3)
    result = task.evaluate("dev", gathered_from_words(task, "dev", cand))
    report = result.extra_files["span_f1.json"]
    assert report["micro"]["support"] == 5942 and report["candidates"] == len(cand) and report["dropped"] > 1000
    assert 50 < result.metrics["f1"] < 95
    assert_equals_seqeval(result)


def test_export_command_after_a_run(run_train):
    """What a user types: train (flat decoding by default), then ``python -m dicenlp.export_ner <run_dir>``
    and ``python scripts/ner_decoding_study.py <run_dir>`` (docs/ner.md)."""
    results = run_train("task=conll03", "loss=dsc", "task.params.data_dir=data/samples/conll03", "trainer.eval_every=4")
    run_dir = Path(results["output_dir"])
    proc = subprocess.run([sys.executable, "-m", "dicenlp.export_ner", str(run_dir)], capture_output=True, text=True,
                          cwd=REPO_ROOT, timeout=120)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.split() == [str(run_dir / "predictions_dev.bio"), str(run_dir / "predictions_test.bio")]
    for split in ("dev", "test"):
        rows = json.loads((run_dir / f"predictions_{split}.json").read_text())
        assert all("dropped" in r and all({"span", "score", "p_start", "p_end", "p_match"} <= set(p) for p in r["pred"])
                   for r in rows)
        micro, _ = seqeval_scores((run_dir / f"predictions_{split}.bio").read_text())
        assert micro["f1"] == pytest.approx(results[split]["f1"], abs=1e-9)
    study = subprocess.run([sys.executable, "scripts/ner_decoding_study.py", str(run_dir), "--split", "dev"],
                           capture_output=True, text=True, cwd=REPO_ROOT, timeout=120)
    assert study.returncode == 0, study.stderr
    f1 = {line.split(" | ")[0][2:]: float(line.split(" | ")[-1].strip(" |")) for line in study.stdout.splitlines()
          if line.startswith("| nested") or line.startswith("| flat")}
    assert f1["flat, max Σp (ours)"] == pytest.approx(results["dev"]["f1"], abs=0.005)
    assert len(f1) == 4
    bad = subprocess.run([sys.executable, "-m", "dicenlp.export_ner", str(run_dir / "nope")], capture_output=True,
                         text=True, cwd=REPO_ROOT, timeout=120)
    assert bad.returncode == 2 and bad.stderr.startswith("error: run directory not found")
    assert "Traceback" not in bad.stderr
