"""The encoders beside the paper's BERT and XLNet (configs/model/roberta-*, deberta-v3-*, xlm-roberta-large) and the
English UD task (configs/task/ud_en.yaml), end to end through the real configs on tiny random models of the same
architecture (scale=smoke: models/tiny_encoders.py), offline."""

from __future__ import annotations

import numpy as np
import pytest
from omegaconf import OmegaConf

from conftest import REPO_ROOT, shared_data

#: encoder config → (its tiny stand-in, a word-level tagging task, a classification task) run end to end
ENCODERS = {
    "roberta-base": ("tiny-roberta", "ud_en", "mrpc"),
    "deberta-v3-base": ("tiny-deberta-v3", "wsj", "sst5"),
    "xlm-roberta-large": ("tiny-xlm-roberta", "ud14", "mrpc"),  # its use: the Chinese sets (characters)
}
FAST = ["trainer.max_steps=2", "trainer.eval_every=2", "logger=none"]


@pytest.mark.parametrize("model", sorted(ENCODERS))
def test_encoder_trains_tagging_and_classification_end_to_end(model, run_train):
    tiny, tagging, classification = ENCODERS[model]
    for task in (tagging, classification):
        results = run_train(f"task={task}", "loss=dsc", f"model={model}", "scale=smoke", *FAST, tiny=False)
        assert results["model"] == tiny and results["task"] == task
        metric = results["primary_metric"]
        split = "test" if results["test"] else "dev"
        assert 0.0 <= results[split][metric] <= 100.0 and results["total_steps"] == 2


@pytest.mark.parametrize("model", sorted(ENCODERS))
def test_first_sub_token_of_every_word_carries_its_label(model, compose_config, tmp_path):
    """Word-level tagging with each tokenizer kind: pre-tokenised words are tokenised as in running text (RoBERTa:
    thanks to add_prefix_space, set by configs/model/roberta-base.yaml), and each word has one labelled position,
    its first sub-token."""
    from dicenlp.models.backbone import load_tokenizer
    from dicenlp.run import resolve_data_dir
    from dicenlp.tasks.tagging import TaggingTask

    cfg = OmegaConf.to_container(compose_config("task=ud_en", f"model={model}", "scale=smoke"), resolve=True)
    tokenizer = load_tokenizer(cfg["model"]["name_or_path"], **(cfg["model"].get("tokenizer") or {}))
    task = TaggingTask(**{**resolve_data_dir(cfg["task"]["params"]), "cache_dir": str(tmp_path)})
    task.setup(tokenizer)
    for words in task.read_split("dev")[:10]:
        as_words = tokenizer(words.tokens, is_split_into_words=True)["input_ids"]
        assert as_words == tokenizer(" ".join(words.tokens))["input_ids"], words.tokens
    for feature, words in zip(task.datasets["dev"], task.read_split("dev")):
        labels, word_index = np.asarray(feature["labels"]), np.asarray(feature["word_index"])
        assert (labels >= 0).sum() == len(words.tokens) == (word_index >= 0).sum()
        assert np.array_equal(labels >= 0, word_index >= 0)


def test_ud_en_reads_the_real_english_ewt_file(tmp_path):
    """The ud_en reader on UD English-EWT dev (../shared/data/ud; skipped when absent): every sentence, UPOS."""
    from hydra import compose, initialize_config_dir

    from conftest import CONFIG_DIR
    from dicenlp.tasks.tagging import TaggingTask

    folder = shared_data("ud")
    shared_data("ud", "en_ewt-ud-dev.conllu")
    with initialize_config_dir(version_base="1.3", config_dir=str(CONFIG_DIR)):
        params = OmegaConf.to_container(compose("train", overrides=["task=ud_en", "output_dir=x"]).task.params,
                                        resolve=True)
    params.update(data_dir=str(folder), cache_dir=str(tmp_path),
                  files={"train": "en_ewt-ud-dev.conllu", "dev": "en_ewt-ud-dev.conllu"})
    sentences = TaggingTask(**params).read_split("dev")
    assert len(sentences) == 2001  # shared/data/README.md
    tags = {t for s in sentences for t in s.tags}
    upos = {"ADJ", "ADP", "ADV", "AUX", "CCONJ", "DET", "INTJ", "NOUN", "NUM", "PART", "PRON", "PROPN", "PUNCT",
            "SCONJ", "SYM", "VERB", "X"}
    assert tags == upos
    # multi-word tokens are read as their syntactic words: "don't" → do + n't
    assert any(s.tokens[i:i + 2] == ["do", "n't"] for s in sentences for i in range(len(s.tokens) - 1))


def test_ud_en_sample_uses_the_treebank_file_names():
    names = {p.name for p in (REPO_ROOT / "data" / "samples" / "ud_en").iterdir()}
    assert names == {f"en_ewt-ud-{split}.conllu" for split in ("train", "dev", "test")}
