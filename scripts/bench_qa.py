"""Benchmark of the QA data path: feature preparation (features/s) and post-processing (examples/s).

    python scripts/bench_qa.py                                  # 10k synthetic questions, tiny-bert + tiny-xlnet
    python scripts/bench_qa.py --tokenizer google-bert/bert-base-uncased --questions 10000

Synthetic set: SQuAD-sized paragraphs (~120 words, 5 questions each) of words drawn with a fixed seed, every
answer a span of its paragraph. Preparation = ``QuestionAnsweringTask.setup`` into an empty feature cache
(tokenise, windows, answer positions, Arrow write), then again from the cache. Post-processing =
``postprocess_qa`` (n-best 20, max answer 30) + the official v1.1 / v2.0 scoring on random scores, compared with
the Hugging Face ``utils_qa.py``-style Python double loop over the top-20 starts and ends of every feature.
Prints a Markdown table (docs/mrc.md records the figures). Not a test.
"""

from __future__ import annotations

import argparse
import json
import random
import tempfile
import time
from pathlib import Path

import numpy as np

WORDS = ("the of and to in a is that for it as was with be by on not he this are or his from at which but have an "
         "they you were had her she there one been all their has would when if will what more so no who them some "
         "out can about into than other these then its only also new after first two over time may most such well "
         "where any both those how through years later while before however during between under since until many "
         "three century war city state world university school people government river church king north south "
         "east west french english german british london paris france england germany europe country name known "
         "called used became began following including against around population area part number several early "
         "large long high small great old year day water land music film series album song team season game league "
         "club player normans normandy rollo denmark iceland norway viking duke william conquest battle army").split()
NAMES = ["Kessling", "Vollen", "Brekstad", "Orvo", "Tarnholm", "Dessaway", "Quillon", "Marrowby", "Zeltrin", "Ashgrove"]


def synthetic_squad(n_questions: int, seed: int = 0, version_2: bool = False) -> dict:
    """A SQuAD-layout object with ``n_questions`` questions (5 per ~120-word paragraph)."""
    rng = random.Random(seed)
    paragraphs, made = [], 0
    while made < n_questions:
        words = [rng.choice(NAMES) if rng.random() < 0.08 else rng.choice(WORDS) for _ in range(rng.randint(90, 150))]
        words[0] = words[0].capitalize()
        context = " ".join(words) + "."
        starts = np.cumsum([0] + [len(w) + 1 for w in words[:-1]])
        qas = []
        for _ in range(min(5, n_questions - made)):
            i = rng.randrange(len(words) - 4)
            j = i + rng.randint(0, 3)
            text = " ".join(words[i:j + 1])
            question = " ".join(rng.choice(WORDS) for _ in range(rng.randint(6, 14))) + "?"
            impossible = version_2 and rng.random() < 0.33
            qa = {"id": f"q{made}", "question": question,
                  "answers": [] if impossible else [{"text": text, "answer_start": int(starts[i])}]}
            if version_2:
                qa["is_impossible"] = impossible
            qas.append(qa)
            made += 1
        paragraphs.append({"context": context, "qas": qas})
    return {"version": "v2.0" if version_2 else "1.1", "data": [{"title": "synthetic", "paragraphs": paragraphs}]}


def hf_style_postprocess(examples, example_index, offset_start, offset_end, start, end, n_best=20, max_len=30):
    """The Hugging Face ``utils_qa.postprocess_qa_predictions`` loop (v1.1 path), for comparison only."""
    by_example: dict[int, list[int]] = {}
    for f, e in enumerate(example_index):
        by_example.setdefault(int(e), []).append(f)
    out = {}
    for e, example in enumerate(examples):
        best, best_text = -np.inf, ""
        for f in by_example.get(e, []):
            starts = np.argsort(start[f])[-1:-n_best - 1:-1].tolist()
            ends = np.argsort(end[f])[-1:-n_best - 1:-1].tolist()
            for s in starts:
                for t in ends:
                    if offset_start[f, s] < 0 or offset_start[f, t] < 0 or t < s or t - s + 1 > max_len:
                        continue
                    score = start[f, s] + end[f, t]
                    if score > best:
                        best, best_text = score, example["context"][offset_start[f, s]:offset_end[f, t]]
        out[example["id"]] = best_text
    return out


def bench_prepare(tokenizer_name: str, data_dir: Path, n: int, args) -> dict:
    from dicenlp.models.backbone import load_tokenizer
    from dicenlp.tasks import build_task

    tokenizer = load_tokenizer(tokenizer_name)
    with tempfile.TemporaryDirectory() as cache:
        def make():
            return build_task("qa", name="bench", data_dir=str(data_dir), train_file="train.json",
                              dev_file="dev.json", max_length=args.max_length, doc_stride=args.doc_stride,
                              max_query_length=args.max_query_length, cache_dir=cache)

        task = make()
        t0 = time.perf_counter()
        task.setup(tokenizer)
        cold = time.perf_counter() - t0
        t0 = time.perf_counter()
        make().setup(tokenizer)
        warm = time.perf_counter() - t0
    n_features = sum(len(task.features[s]) for s in task.features)
    return {"tokenizer": tokenizer_name, "questions": 2 * n, "features": n_features, "cold_s": cold,
            "features_per_s": n_features / cold, "cached_s": warm}, task


def bench_postprocess(task, args) -> dict:
    from dicenlp.tasks.qa import evaluate_qa
    from dicenlp.tasks.qa_postprocess import postprocess_qa

    arrays = task._arrays("dev")
    examples = task.examples["dev"]
    rng = np.random.default_rng(0)
    start = rng.normal(size=arrays["offset_start"].shape).astype(np.float32)
    end = rng.normal(size=arrays["offset_start"].shape).astype(np.float32)
    t0 = time.perf_counter()
    postprocess_qa(examples, arrays["example_index"], arrays["offset_start"], arrays["offset_end"], start, end,
                   arrays["cls_index"])
    ours = time.perf_counter() - t0
    t0 = time.perf_counter()
    evaluate_qa(examples, arrays, start, end, version_2=False)
    with_metric = time.perf_counter() - t0
    t0 = time.perf_counter()
    evaluate_qa(examples, arrays, start, end, version_2=True)
    with_v2 = time.perf_counter() - t0
    t0 = time.perf_counter()
    hf_style_postprocess(examples, arrays["example_index"], arrays["offset_start"], arrays["offset_end"], start, end)
    loop = time.perf_counter() - t0
    n = len(examples)
    return {"examples": n, "features": len(arrays["cls_index"]), "postprocess_per_s": n / ours,
            "v1_eval_per_s": n / with_metric, "v2_eval_per_s": n / with_v2, "hf_loop_per_s": n / loop}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--questions", type=int, default=10000, help="questions per split (train and dev)")
    parser.add_argument("--tokenizer", nargs="+", default=["tiny-bert", "tiny-xlnet"])
    parser.add_argument("--max-length", type=int, default=384)
    parser.add_argument("--doc-stride", type=int, default=128)
    parser.add_argument("--max-query-length", type=int, default=64)
    args = parser.parse_args()

    with tempfile.TemporaryDirectory() as data:
        data_dir = Path(data)
        (data_dir / "train.json").write_text(json.dumps(synthetic_squad(args.questions, seed=0)))
        (data_dir / "dev.json").write_text(json.dumps(synthetic_squad(args.questions, seed=1)))
        print(f"| tokenizer | questions | features | prepare (s) | features/s | from cache (s) | "
              f"post-process ex/s | + v1.1 metric ex/s | + v2.0 metric & threshold ex/s | HF-style loop ex/s |")
        print("|---|---|---|---|---|---|---|---|---|---|")
        for name in args.tokenizer:
            prep, task = bench_prepare(name, data_dir, args.questions, args)
            post = bench_postprocess(task, args)
            print(f"| {name} | {prep['questions']} | {prep['features']} | {prep['cold_s']:.1f} | "
                  f"{prep['features_per_s']:.0f} | {prep['cached_s']:.2f} | {post['postprocess_per_s']:.0f} | "
                  f"{post['v1_eval_per_s']:.0f} | {post['v2_eval_per_s']:.0f} | {post['hf_loop_per_s']:.0f} |",
                  flush=True)


if __name__ == "__main__":
    main()
