"""Reproducible split-offs and caps of a dataset's splits, one implementation for every task kind.

Task params (``configs/task/*.yaml: params``, or a scale's overrides)::

    split_off: {test: {from: dev, size: 0.5}}          # a split the files lack, taken out of another split
    max_examples: {train: 1000, dev: 500, test: 500}   # keep at most N examples of a split
    split_seed: 42                                      # fixed, independent of the training seed

* **Split-offs come first**, on the full splits as read, and only create a split the files do not have (a file
  set that has the split keeps it; the plan's ``split_off`` entry is then unused and logged). ``size`` is a count
  (``500``) or a fraction of the source (``0.5``); the source keeps the rest. Use them for file sets without a
  dev or test part (CoNLL-2003 train_2k + valid, MRPC train + dev, MSRA train + test, one SQuAD file).
* **Caps** then keep ``max_examples[split]`` examples of a split.
* **Which examples.** Both take the first N examples of a seeded random permutation of the split (seed
  ``split_seed`` mixed with the split's name) and keep them in file order. A random sample rather than the
  first N lines, because files are often ordered (by document, topic or label); a permutation prefix rather
  than a fresh sample per N, so that a smaller cap is a subset of a larger one.
* **Groups.** A task may say which examples belong together (QA: the questions of one paragraph). Whole groups
  are then taken in the permuted order until N is reached, so that no paragraph sits in two splits; the
  last group may carry the count a little past N. The sizes actually used go into ``results.json: data``.
"""

from __future__ import annotations

import logging
import zlib
from dataclasses import dataclass, field
from typing import Any, Callable, Hashable, Mapping, Sequence, TypeVar

import numpy as np

log = logging.getLogger(__name__)

SPLITS = ("train", "dev", "test")
S = TypeVar("S")  # a split's examples: a list, or an object with len() and .select(indices) (glue.Examples)


def seeded_order(n: int, seed: int, salt: str, groups: Sequence[Hashable] | None = None) -> list[np.ndarray]:
    """The ``n`` example indices as a seeded random order of whole groups: one index array per group.

    ``groups[i]`` is example i's group key (None: each example is its own group). Groups keep their examples'
    file order inside; the order of the groups is a permutation seeded by ``(seed, crc32(salt))``.
    """
    keys = range(n) if groups is None else groups
    members: dict[Hashable, list[int]] = {}
    for i, key in enumerate(keys):
        members.setdefault(key, []).append(i)
    blocks = [np.asarray(m, dtype=np.int64) for m in members.values()]
    rng = np.random.default_rng([seed, zlib.crc32(salt.encode())])
    return [blocks[k] for k in rng.permutation(len(blocks))]


def first_n(order: list[np.ndarray], n: int) -> np.ndarray:
    """Indices of the leading groups of ``order`` up to at least ``n`` examples, sorted (file order)."""
    sizes = np.cumsum([len(b) for b in order])
    k = int(np.searchsorted(sizes, n)) + 1  # groups needed to reach n
    return np.sort(np.concatenate(order[:k])) if order else np.zeros(0, np.int64)


def take(examples: S, indices: np.ndarray) -> S:
    if hasattr(examples, "select"):
        return examples.select(indices)
    return [examples[int(i)] for i in indices]


@dataclass(frozen=True)
class DataPlan:
    """What to split off and cap (see the module docstring); empty = the splits as read."""

    split_off: dict[str, tuple[str, float]] = field(default_factory=dict)  # target -> (source, size)
    max_examples: dict[str, int] = field(default_factory=dict)
    seed: int = 42

    @classmethod
    def from_params(cls, max_examples: Mapping[str, int | None] | None = None,
                    split_off: Mapping[str, Mapping[str, Any]] | None = None, split_seed: int = 42) -> "DataPlan":
        """Validated plan from the task params (messages name the param, for a user's config mistake)."""
        caps = {}
        for split, n in (max_examples or {}).items():
            if split not in SPLITS:
                raise ValueError(f"task.params.max_examples: unknown split {split!r}; expected {', '.join(SPLITS)}")
            if n is not None:
                if int(n) < 1:
                    raise ValueError(f"task.params.max_examples.{split} must be a positive count, got {n}")
                caps[split] = int(n)
        offs = {}
        for target, spec in (split_off or {}).items():
            if spec is None:
                continue
            source, size = (spec or {}).get("from"), (spec or {}).get("size")
            if target not in SPLITS or source not in SPLITS or source == target:
                raise ValueError(f"task.params.split_off.{target}: expected {{from: <train|dev|test>, size: N}} with "
                                 f"two different splits out of {', '.join(SPLITS)}, got {dict(spec or {})}")
            if size is None or not (size >= 1 or 0 < size < 1):
                raise ValueError(f"task.params.split_off.{target}.size must be a count >= 1 or a fraction in (0, 1), "
                                 f"got {size}")
            offs[target] = (source, float(size))
        return cls(split_off=offs, max_examples=caps, seed=int(split_seed))

    def apply(self, splits: dict[str, S], group_keys: Callable[[S], Sequence[Hashable]] | None = None,
              name: str = "task") -> tuple[dict[str, S], dict[str, str]]:
        """``(splits after split-offs and caps, {created split: its source})``."""
        splits = dict(splits)
        created = {}
        for target, (source, size) in self.split_off.items():
            if target in splits:
                log.info("%s: the files have a %s split; split_off.%s is not used", name, target, target)
                continue
            if source not in splits:
                raise ValueError(f"{name}: cannot split {target} off {source}: there is no {source} split")
            n_source = len(splits[source])
            n = max(1, round(size * n_source)) if size < 1 else int(size)
            order = seeded_order(n_source, self.seed, target, group_keys(splits[source]) if group_keys else None)
            moved = first_n(order, n)
            if len(moved) >= n_source:
                raise ValueError(f"{name}: splitting {n} examples off the {n_source} of {source} leaves none for "
                                 f"{source}; lower split_off.{target}.size")
            kept = np.setdiff1d(np.arange(n_source), moved)
            splits[target], splits[source] = take(splits[source], moved), take(splits[source], kept)
            created[target] = source
            log.info("%s: %s = %d examples split off %s (seed %d), %d left there", name, target, len(moved), source,
                     self.seed, len(kept))
        for split, cap in self.max_examples.items():
            if split in splits and len(splits[split]) > cap:
                order = seeded_order(len(splits[split]), self.seed, split,
                                     group_keys(splits[split]) if group_keys else None)
                splits[split] = take(splits[split], first_n(order, cap))
                log.info("%s: %s capped to %d examples (seed %d)", name, split, len(splits[split]), self.seed)
        return splits, created


__all__ = ["DataPlan", "first_n", "seeded_order", "take"]
