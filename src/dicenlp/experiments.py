"""Paper tables as data: the cells of a table at a scale, and which cell a run is (CONTRACT §2).

A table file ``configs/experiment/<table>.yaml`` holds a ``table:`` block::

    table:
      name: table5
      split: test                      # the split the paper reports
      metrics: [precision, recall, f1] # printed columns; the last is the primary one
      grid: {task: [conll03, msra], loss: [ce, fl, dl, dsc]}   # cells = the product, keys in this order
      scales: {mini: {task: [conll03]}}                      # grid entries replaced at a scale (optional)
      labels: {conll03: "English CoNLL 2003", dsc: BERT-MRC+DSC}
      paper: {conll03: {ce: [92.33, 94.61, 93.04], ...}, ...}  # nested in grid-key order, leaves in metric order

The first grid key is the *dataset* dimension (one significance test per dataset); the other keys form the
row. A cell's name is its grid values joined by ``_`` (``conll03_dsc``, ``ontonotes4_0.3``); its overrides are
``key=value`` for ``train.py`` (``task=conll03 loss=dsc``).

Only this module and the scripts read table files; ``run.py`` asks ``cell_of(config)`` which cell a run is.
"""

from __future__ import annotations

import itertools
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Mapping, Sequence

REPO_ROOT = Path(__file__).resolve().parents[2]
EXPERIMENT_DIR = REPO_ROOT / "configs" / "experiment"
SCALES = ("paper", "mini", "smoke")

@dataclass(frozen=True)
class CellSpec:
    """One cell of a table: grid values, the ``train.py`` overrides that select it, the paper's numbers."""

    name: str
    overrides: tuple[str, ...]
    values: dict[str, str]
    dataset: str                          # the value of the table's first grid key, e.g. "conll03"
    row: str                              # label of the other grid values, e.g. "BERT-MRC+DSC"
    paper: dict[str, float | None] | None  # {metric: printed value}; None when the paper prints nothing


@dataclass
class TableSpec:
    name: str
    grid: dict[str, list[str]]
    metrics: list[str]
    split: str | None = None
    title: str = ""
    scales: dict[str, dict[str, list[str]]] = field(default_factory=dict)
    labels: dict[str, str] = field(default_factory=dict)
    paper: dict[str, Any] = field(default_factory=dict)

    @classmethod
    def from_block(cls, block: Mapping[str, Any]) -> "TableSpec":
        """From the ``table:`` block of a table file or of a composed config (plain containers)."""
        name = block.get("name") or "?"
        grid = block.get("grid") or {}
        if not grid or not block.get("metrics"):
            raise ValueError(f"table {name}: the table block needs a non-empty `grid` and `metrics`")

        def as_lists(g: Mapping[str, Any]) -> dict[str, list[str]]:
            return {str(k): [_text(v) for v in (vs if isinstance(vs, (list, tuple)) else [vs])] for k, vs in g.items()}

        return cls(name=name, grid=as_lists(grid), metrics=list(block["metrics"]), split=block.get("split"),
                   title=block.get("title") or "", labels={_text(k): str(v) for k, v in (block.get("labels") or {}).items()},
                   scales={s: as_lists(g or {}) for s, g in (block.get("scales") or {}).items()},
                   paper=_text_keys(block.get("paper") or {}))

    @property
    def primary(self) -> str:
        """The metric the deltas and the significance tests use (the last printed column)."""
        return self.metrics[-1]

    @property
    def dataset_key(self) -> str:
        return next(iter(self.grid))

    def label(self, value: str) -> str:
        return self.labels.get(value, value)

    def grid_at(self, scale: str | None = None) -> dict[str, list[str]]:
        """The grid with the scale's replacements (``scales: {mini: {task: [...]}}``)."""
        replaced = self.scales.get(scale or "", {})
        unknown = set(replaced) - set(self.grid)
        if unknown:
            raise ValueError(f"table {self.name}: scale {scale!r} replaces {sorted(unknown)}, which are not grid keys "
                             f"({list(self.grid)})")
        return {key: replaced.get(key, values) for key, values in self.grid.items()}

    def datasets(self, scale: str | None = None) -> list[str]:
        return self.grid_at(scale)[self.dataset_key]

    def cells(self, scale: str | None = None, datasets: Sequence[str] | None = None) -> list[CellSpec]:
        """Every cell at ``scale``, in grid order; ``datasets`` keeps only those values of the first grid key."""
        grid = self.grid_at(scale)
        if datasets:
            unknown = [d for d in datasets if d not in grid[self.dataset_key]]
            if unknown:
                raise ValueError(f"table {self.name} has no dataset {', '.join(unknown)} at scale {scale}: its "
                                 f"datasets are {', '.join(grid[self.dataset_key])}")
            grid = {**grid, self.dataset_key: [d for d in grid[self.dataset_key] if d in datasets]}
        return [self.cell(dict(zip(grid, combo))) for combo in itertools.product(*grid.values())]

    def cell(self, values: Mapping[str, Any]) -> CellSpec:
        """The cell of these grid values (any values, printed by the paper or not)."""
        values = {key: _text(values[key]) for key in self.grid}
        dataset, *rest = values.values()
        return CellSpec(name="_".join(values.values()), overrides=tuple(f"{k}={v}" for k, v in values.items()),
                        values=values, dataset=dataset, row=" ".join(self.label(v) for v in rest),
                        paper=self.paper_numbers(values))

    def paper_numbers(self, values: Mapping[str, str]) -> dict[str, float | None] | None:
        node: Any = self.paper
        for key in self.grid:
            if not isinstance(node, Mapping) or values[key] not in node:
                return None
            node = node[values[key]]
        if node is None:
            return None
        if not isinstance(node, (list, tuple)) or len(node) != len(self.metrics):
            raise ValueError(f"table {self.name}: paper numbers of {values} must be a list of {len(self.metrics)} "
                             f"values ({', '.join(self.metrics)}), got {node!r}")
        return dict(zip(self.metrics, node))


def _text(value: Any) -> str:
    """A grid value as written on the command line and in cell names (0.3 → "0.3", True → "true")."""
    return json.dumps(value) if isinstance(value, bool) else str(value)


def _text_keys(node: Any) -> Any:
    if isinstance(node, Mapping):
        return {_text(k): _text_keys(v) for k, v in node.items()}
    return node


def table_names() -> list[str]:
    """The tables that have a file in configs/experiment/, in numeric order (table3 … table10)."""
    names = [p.stem for p in EXPERIMENT_DIR.glob("*.yaml")]
    return sorted(names, key=lambda n: (len(n), n))


def load_table(name: str) -> TableSpec:
    """``configs/experiment/<name>.yaml`` → TableSpec (read with OmegaConf, no Hydra composition)."""
    from omegaconf import OmegaConf

    path = EXPERIMENT_DIR / f"{name}.yaml"
    if not path.is_file():
        raise ValueError(f"no table {name!r}: {path} does not exist (tables: {', '.join(table_names())})")
    block = OmegaConf.to_container(OmegaConf.load(path)).get("table")
    if not block:
        raise ValueError(f"{path} has no `table:` block")
    return TableSpec.from_block(block)


def cell_of(config: Mapping[str, Any]) -> tuple[TableSpec, CellSpec] | None:
    """Which table cell a composed, resolved config is: None without a ``table`` block.

    A group key ``g`` (``task``, ``loss``, ``model``) reads ``config[g]["name"]``; a dotted key
    (``loss.alpha``, ``task.params.variant``) reads that path.
    """
    block = config.get("table")
    if not block:
        return None
    table = TableSpec.from_block(block)
    values = {}
    for key in table.grid:
        node: Any = config
        for part in key.split(".") if "." in key else (key, "name"):
            if not isinstance(node, Mapping) or part not in node:
                raise ValueError(f"table {table.name}: grid key {key!r} is not in the config")
            node = node[part]
        values[key] = node
    return table, table.cell(values)


__all__ = ["CellSpec", "SCALES", "TableSpec", "cell_of", "load_table", "table_names"]
