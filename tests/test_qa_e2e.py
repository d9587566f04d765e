"""QA end to end: the loss forms and their masks, then a few real training steps (``dicenlp.run.run`` via the
``run_train`` fixture) with tiny BERT and tiny XLNet for every loss, on the bundled SQuAD 1.1 / 2.0 samples."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch

from conftest import REPO_ROOT
from dicenlp.losses import build_loss
from dicenlp.models.backbone import load_backbone
from dicenlp.tasks import build_task

LOSSES = ["ce", "wce", "fl", "dl", "tl", "dsc"]
MODELS = ["tiny-bert", "tiny-xlnet"]


@pytest.fixture(scope="module", autouse=True)
def one_torch_thread():
    """Tiny models gain nothing from intra-op threads, and on a shared 2-core machine spinning OpenMP threads
    make every step 10-20x slower (measured: a 4-step run 17 s with the default threads, 0.8 s with one)."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


@pytest.fixture(scope="module")
def cache_dir(tmp_path_factory):
    return tmp_path_factory.mktemp("qa-cache")


@pytest.fixture(scope="module", params=MODELS)
def task_and_encoder(request, cache_dir):
    tokenizer, encoder = load_backbone(request.param)
    task = build_task("qa", name="sample_squad2", data_dir=str(REPO_ROOT / "data/samples/squad/v2.0"),
                      train_file="train-v2.0.json", dev_file="dev-v2.0.json", version_2_with_negative=True,
                      max_length=96, doc_stride=24, max_query_length=24, cache_dir=str(cache_dir))
    task.setup(tokenizer)
    return task, encoder


@pytest.mark.parametrize("loss_name", LOSSES)
def test_loss_reaches_exactly_the_context_and_null_positions(task_and_encoder, loss_name):
    """Gradients of start/end logits: non-zero on context tokens + the null position, exactly 0 on question,
    special and padding tokens, for every loss form (softmax over positions, sigmoid, 2-way softmax)."""
    task, encoder = task_and_encoder
    torch.manual_seed(0)
    loss_fn = build_loss(loss_name, label_counts=task.label_counts)
    model = task.build_model(encoder, loss_fn)
    batch = task.collate([task.datasets["train"][i] for i in range(0, len(task.datasets["train"]), 3)])
    outputs = {k: v.detach().requires_grad_(True) for k, v in model(batch).items()}
    loss = task.compute_loss(outputs, batch, loss_fn)
    assert loss.dim() == 0 and torch.isfinite(loss)
    loss.backward()
    mask = batch["loss_mask"]
    for which in ("start", "end"):
        grad = outputs[f"{which}_logits"].grad
        grad = grad.abs().sum(-1) if grad.dim() == 3 else grad.abs()
        assert torch.all(grad[~mask] == 0), f"{which}: gradient leaks to masked positions"
        assert torch.all(grad[mask] > 0), f"{which}: every context/null position takes part"


def test_total_loss_is_the_mean_of_start_and_end(task_and_encoder):
    task, encoder = task_and_encoder
    model = task.build_model(encoder, build_loss("ce"))
    batch = task.collate([task.datasets["train"][i] for i in range(4)])
    out = model(batch)
    ce = torch.nn.CrossEntropyLoss()
    expected = []
    for which in ("start", "end"):
        logits = out[f"{which}_logits"].float().masked_fill(~batch["loss_mask"], float("-inf"))
        expected.append(ce(logits, batch[f"{which}_positions"]))
    got = task.compute_loss(out, batch, build_loss("ce"))
    assert torch.allclose(got, (expected[0] + expected[1]) / 2)


def test_label_counts_for_wce(task_and_encoder):
    task, _ = task_and_encoder
    counts = task.label_counts()
    n_features = len(task.features["train"])
    assert counts[1] == 2 * n_features  # one start and one end per window
    assert counts[0] == 2 * sum(task.features["train"]["context_length"])


# ----------------------------------------------------------------------------- real runs (Hydra → run)
def qa_run(run_train, cache_dir, task, model, loss, *extra):
    return run_train(f"task={task}", f"loss={loss}", f"model.name={model}", f"model.name_or_path={model}",
                     f"task.params.cache_dir={cache_dir}", *extra)


def grid(fast):
    """(model, loss) pairs: every pair runs; pairs outside ``fast`` are marked slow (the default test run stays
    short; the mask/gradient test above already covers every loss x model without a run)."""
    return [pytest.param(m, loss, marks=() if (m, loss) in fast else pytest.mark.slow) for m in MODELS for loss in LOSSES]


V1_FAST = {(m, loss) for m in MODELS for loss in LOSSES}  # every loss with both tiny models
V2_FAST = {("tiny-bert", "ce"), ("tiny-xlnet", "dsc"), ("tiny-bert", "fl"), ("tiny-xlnet", "tl")}


@pytest.mark.parametrize("model, loss", grid(V1_FAST))
def test_a_few_training_steps_squad_v1(run_train, cache_dir, model, loss):
    results = qa_run(run_train, cache_dir, "sample_squad", model, loss)
    dev = results["dev"]
    assert set(dev) == {"em", "f1", "total"} and dev["total"] == 7
    assert 0.0 <= dev["em"] <= dev["f1"] <= 100.0
    run_dir = Path(results["output_dir"])
    predictions = json.loads((run_dir / "dev" / "predictions.json").read_text())
    nbest = json.loads((run_dir / "dev" / "nbest_predictions.json").read_text())
    assert len(predictions) == 7 and set(nbest) == set(predictions)
    assert all(isinstance(v, str) and v for v in predictions.values())  # v1.1: never the null answer
    assert all(nbest[q][0]["text"] == predictions[q] for q in predictions)
    assert not (run_dir / "dev" / "null_odds.json").exists()


@pytest.mark.parametrize("model, loss", grid(V2_FAST))
def test_a_few_training_steps_squad_v2(run_train, cache_dir, model, loss):
    results = qa_run(run_train, cache_dir, "sample_squad2", model, loss)
    dev = results["dev"]
    for key in ("em", "f1", "best_f1", "best_f1_thresh", "null_threshold", "has_ans_f1", "no_ans_f1"):
        assert key in dev
    assert dev["has_ans_total"] == 3 and dev["no_ans_total"] == 3
    assert dev["f1"] == pytest.approx(dev["best_f1"])  # the applied threshold achieves the best F1
    run_dir = Path(results["output_dir"])
    predictions = json.loads((run_dir / "dev" / "predictions.json").read_text())
    odds = json.loads((run_dir / "dev" / "null_odds.json").read_text())
    assert set(odds) == set(predictions) and all(isinstance(v, float) for v in odds.values())
    threshold = dev["null_threshold"]
    assert all((predictions[q] == "") == (odds[q] > threshold) for q in odds)


@pytest.mark.slow
def test_tiny_bert_learns_the_training_answers(run_train, cache_dir):
    """Sanity of the whole path: ~150 steps on the v1.1 sample's training set, evaluated on that same set."""
    results = qa_run(run_train, cache_dir, "sample_squad", "tiny-bert", "ce", "task.params.dev_file=train-v1.1.json",
                     "trainer.max_steps=150", "trainer.lr=3e-3", "trainer.eval_every=50", "trainer.batch_size=16")
    assert results["dev"]["f1"] > 50.0


def test_quoref_sample_reports_the_quoref_metric(run_train, cache_dir):
    results = qa_run(run_train, cache_dir, "quoref", "tiny-bert", "dsc",
                     f"task.params.data_dir={REPO_ROOT / 'data/samples/squad/quoref'}", "task.params.max_length=128",
                     "task.params.doc_stride=32", "task.params.max_query_length=32")
    dev = results["dev"]
    assert set(dev) == {"em", "f1", "total", "squad_em", "squad_f1"} and dev["total"] == 4


def test_scores_do_not_depend_on_padding(task_and_encoder):
    """A window scored alone and inside a padded batch (left padding for XLNet) gets the same scores at its
    own positions: eval_outputs undoes the padding shift."""
    task, encoder = task_and_encoder
    model = task.build_model(encoder, build_loss("dsc")).eval()
    rows = sorted((task.datasets["dev"][i] for i in range(len(task.datasets["dev"]))), key=lambda r: len(r["input_ids"]))
    short, long = rows[0], rows[-1]
    assert len(short["input_ids"]) < len(long["input_ids"])
    with torch.no_grad():
        alone_batch = task.collate([short])
        alone = task.eval_outputs(model(alone_batch), alone_batch)
        mixed_batch = task.collate([long, short])
        mixed = task.eval_outputs(model(mixed_batch), mixed_batch)
    n = len(short["input_ids"])
    for which in ("start_scores", "end_scores"):
        assert torch.allclose(alone[which][0, :n], mixed[which][1, :n], atol=1e-5)
    assert mixed["feature_index"].tolist() == [long["feature_index"], short["feature_index"]]
