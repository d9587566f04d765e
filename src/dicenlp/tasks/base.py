"""The Task protocol: everything that differs between tasks, and nothing the trainer needs to know.

One run is::

    task = SomeTask(data_dir=..., max_length=...)       # plain arguments, no Hydra
    task.read_data()                                      # read and validate every split (no model needed)
    task.setup(tokenizer)                                 # tokenise (batched, cached); reads first if needed
    model = task.build_model(encoder, loss_fn)            # encoder + task head; the head asks loss_fn.binary_head
    outputs = model(batch)                                # dict of logits
    loss = task.compute_loss(outputs, batch, loss_fn)     # the ONLY place a loss is computed
    out = task.eval_outputs(outputs, batch)               # dict of tensors [B, ...] to gather across ranks
    result = task.evaluate("dev", gathered)               # metrics (+ predictions to write)

The trainer (``dicenlp.trainer``) drives these calls for every task; it never looks at
``outputs.loss`` of a Hugging Face model, because swapping the loss is the point of this project.

Gathering contract (single process, ``accelerate launch`` and ``torchrun`` alike):
  * every feature carries an integer ``feature_index`` (its row in ``task.datasets[split]``), and
    ``eval_outputs`` must return it as ``out["feature_index"]`` ([B] long);
  * every tensor in ``eval_outputs`` has the batch on dim 0; tensors with a sequence dim (dim 1) may
    have different lengths per batch and per rank: the trainer pads dim 1 with ``EVAL_PAD_VALUE``
    (across ranks and across batches), drops the duplicates of the last distributed batch and hands
    ``evaluate`` numpy arrays in ``feature_index`` order. Use the features' own lengths/masks to ignore
    the padding; never rely on the padded values.
"""

from __future__ import annotations

import abc
from dataclasses import dataclass, field
from typing import Any, Mapping

import numpy as np
import torch
from torch import nn

from dicenlp.data.subsets import SPLITS, DataPlan
from dicenlp.errors import MissingDataError

#: Value the trainer pads eval tensors with along dim 1 (chosen to be an impossible label and a very
#: negative logit at once).
EVAL_PAD_VALUE = -100

@dataclass
class EvalResult:
    """What ``Task.evaluate`` returns.

    metrics: flat ``{name: float}``; must contain the task's ``primary_metric``. Values are percentages
        where the paper reports percentages (F1 93.33, not 0.9333).
    predictions: JSON-serialisable predictions, written to ``<run>/predictions_<split>.json``.
    extra_files: additional JSON files to write into the run directory, ``{filename: object}``
        (e.g. SQuAD's ``nbest_predictions.json``, ``null_odds.json``).
    """

    metrics: dict[str, float]
    predictions: Any = None
    extra_files: dict[str, Any] = field(default_factory=dict)


class Task(abc.ABC):
    """Base class of every task. Subclasses take plain constructor arguments (no Hydra objects).

    Attributes set by subclasses:
        name: short task name, e.g. ``"wsj"`` or ``"conll03"`` (as in the paper's tables).
        primary_metric: key of ``EvalResult.metrics`` that selects the best checkpoint (higher is better).
        datasets: after ``setup``, ``{split: torch Dataset}`` of features (``"train"``, ``"dev"``, and
            ``"test"`` when the dataset has one), each item a dict with a ``feature_index``.
        data_sizes: after ``setup``, the number of *examples* (sentences, questions, pairs) used per split,
            after split-offs and caps (``results.json: data``); split_from: ``{split: source}`` of split-offs.

    Every task takes the data-plan params ``max_examples``, ``split_off`` and ``split_seed``
    (``dicenlp.data.subsets``) and applies them with ``plan_splits`` right after reading its splits.
    """

    name: str = "task"
    primary_metric: str = "f1"

    def __init__(self, max_examples: Mapping[str, int] | None = None, split_off: Mapping[str, Any] | None = None,
                 split_seed: int = 42) -> None:
        self.datasets: dict[str, Any] = {}
        self.data_plan = DataPlan.from_params(max_examples, split_off, split_seed)
        self.data_sizes: dict[str, int] = {}
        self.split_from: dict[str, str] = {}
        #: repairs made while reading, ``{file: {...}}`` (e.g. ill-formed BIO tags read as conlleval does); a run
        #: records them in results.json as ``data_repairs``
        self.data_repairs: dict[str, Any] = {}
        self._lengths: dict[str, tuple[Any, np.ndarray]] = {}  # split → (its dataset, feature lengths)

    def plan_splits(self, splits: dict[str, Any], group_keys=None) -> dict[str, Any]:
        """Apply the split-offs and caps of ``self.data_plan`` to the splits as read and record the sizes used.
        ``group_keys(examples) -> [key per example]`` keeps examples that belong together in one split."""
        splits, self.split_from = self.data_plan.apply(splits, group_keys, self.name)
        missing = [s for s in ("train", "dev") if s not in splits]
        if missing:
            raise MissingDataError(f"no {' and no '.join(missing)} file for task {self.name!r}",
                                   where=str(getattr(self, "data_dir", None) or "task.params"),
                                   expected="the file, or task.params.split_off to split one off another split "
                                            "(docs/reproduction.md)")
        self.data_sizes = {s: len(splits[s]) for s in SPLITS if s in splits}
        return splits

    # ----------------------------------------------------------------- data
    def check_data(self) -> None:
        """Raise ``FileNotFoundError`` naming the files to obtain and where to put them, if the data is
        missing. Called before any model is loaded (and by ``make reproduce-*`` before a grid starts)."""

    def read_data(self) -> None:
        """Read and validate every split without a tokenizer, so that a data mistake is reported (file:line)
        before any model is loaded. Idempotent; ``setup`` calls it when it has not run yet."""

    @abc.abstractmethod
    def setup(self, tokenizer) -> None:
        """Tokenise the splits read by ``read_data`` (called first if needed) into ``self.datasets``."""

    @abc.abstractmethod
    def collate(self, features: list[Mapping[str, Any]]) -> dict[str, torch.Tensor]:
        """Pad a list of features into a batch of tensors (dynamic padding to the longest)."""

    def lengths(self, split: str) -> np.ndarray:
        """``[len(datasets[split])]`` int64: the tokens of each feature (its ``input_ids``), what ``collate``
        pads to. The trainer orders evaluation by it (longest first, so batches hold features of equal length)
        and groups training batches by it (``trainer.group_by_length``). Computed once per split; a task whose
        features are composed on access overrides ``feature_lengths`` with a vectorised count."""
        dataset = self.datasets[split]
        cached = self._lengths.get(split)
        if cached is None or cached[0] is not dataset:  # a new setup() made new features
            lengths = np.asarray(self.feature_lengths(split), dtype=np.int64)
            if lengths.shape != (len(dataset),):
                raise RuntimeError(f"task {self.name!r}: {lengths.shape[0]} lengths for the {len(dataset)} "
                                   f"features of {split!r}")
            self._lengths[split] = cached = (dataset, lengths)
        return cached[1]

    def feature_lengths(self, split: str) -> np.ndarray:
        """The ``input_ids`` length of every feature of ``split`` (``lengths`` caches it). An Arrow dataset
        (``datasets.Dataset``) is read from its column without decoding the features; features without
        ``input_ids`` have length 0 (they keep their order)."""
        dataset = self.datasets[split]
        column = getattr(dataset, "data", None)
        if column is not None and "input_ids" in getattr(dataset, "column_names", ()):
            import pyarrow.compute as pc

            return pc.list_value_length(column.column("input_ids")).to_numpy(zero_copy_only=False)
        return np.array([len(f["input_ids"]) if "input_ids" in f else 0 for f in dataset], dtype=np.int64)

    def label_counts(self) -> torch.Tensor:
        """Training-label counts per class (for WCE weights, PAPER.md §2.3). Optional."""
        raise NotImplementedError(f"task {self.name!r} does not provide label counts (needed by loss=wce)")

    # ----------------------------------------------------------------- model and loss
    @abc.abstractmethod
    def build_model(self, encoder: nn.Module, loss_fn: nn.Module) -> nn.Module:
        """Put the task head on ``encoder`` (any ``AutoModel``). The head may depend on the loss, which says what
        it needs (``loss_fn.binary_head``: ``"sigmoid"``, one logit per binary decision, for the dice family;
        ``"softmax"``, two logits, for ce/wce/fl; ``loss_fn.span_head`` for start/end heads; see
        ``dicenlp.losses.base.Loss``). Multi-class decisions always get a C-way softmax (the dice family is then
        one-vs-rest per class inside the loss). ``model(batch)`` returns a dict of logits."""

    @abc.abstractmethod
    def compute_loss(self, outputs: Mapping[str, torch.Tensor], batch: Mapping[str, torch.Tensor],
                     loss_fn: nn.Module) -> torch.Tensor:
        """The training objective from the model's logits and the configured loss function."""

    # ----------------------------------------------------------------- evaluation
    @abc.abstractmethod
    def eval_outputs(self, outputs: Mapping[str, torch.Tensor],
                     batch: Mapping[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        """Tensors to gather for evaluation (batch on dim 0, must include ``feature_index``).
        Keep them small: decoded predictions where possible, logits only where post-processing needs them."""

    @abc.abstractmethod
    def evaluate(self, split: str, gathered: Mapping[str, np.ndarray]) -> EvalResult:
        """Metrics for ``split`` from the gathered ``eval_outputs`` (in ``feature_index`` order, every
        feature exactly once), computed against the dataset's original gold annotation."""
