"""dicenlp.losses: the public API (builder, configs, shapes, masking, errors)."""

import shutil
from pathlib import Path

import pytest
import torch
from omegaconf import OmegaConf

from dicenlp.losses import (
    LOSSES,
    PRESETS,
    CrossEntropyLoss,
    DiceLoss,
    FocalLoss,
    SelfAdjustingDiceLoss,
    TverskyLoss,
    WeightedCrossEntropyLoss,
    build_loss,
    count_labels,
    wce_class_weights,
)

NAMES = ["ce", "wce", "fl", "dl", "tl", "dsc"]
CONFIG_DIR = Path(__file__).resolve().parents[1] / "configs" / "loss"


def make(name, num_classes=3, **kw):
    """build_loss(name); wce gets label counts for ``num_classes`` classes (2 for binary problems)."""
    if name == "wce" and "class_weights" not in kw and "label_counts" not in kw:
        kw["label_counts"] = [30, 10, 5, 3][:num_classes]
    return build_loss(name, **kw)


def test_registry_names_and_classes():
    assert set(LOSSES) == set(NAMES)
    assert LOSSES["ce"] is CrossEntropyLoss and LOSSES["wce"] is WeightedCrossEntropyLoss
    assert LOSSES["fl"] is FocalLoss and LOSSES["dl"] is DiceLoss
    assert LOSSES["tl"] is TverskyLoss and LOSSES["dsc"] is SelfAdjustingDiceLoss


def composed_loss(compose_config, name):
    """The loss block of ``python train.py loss=<name>``, composed (loss files may extend one another)."""
    return OmegaConf.to_container(compose_config(f"loss={name}").loss, resolve=True)


@pytest.mark.parametrize("name", sorted(p.stem for p in CONFIG_DIR.glob("*.yaml")))
def test_every_config_file_builds_its_formula_and_keeps_its_name(name, compose_config):
    cfg = composed_loss(compose_config, name)
    assert cfg["name"] == name  # the variant a run records (CONTRACT §4); `kind` is the formula
    loss = build_loss(cfg, label_counts=lambda: [30, 10])
    assert isinstance(loss, LOSSES[PRESETS[cfg["kind"]][0] if cfg["kind"] in PRESETS else cfg["kind"]])
    assert loss.name == name


def test_official_preset_matches_config_and_official_scripts(compose_config):
    loss = build_loss("dsc_official")
    assert isinstance(loss, SelfAdjustingDiceLoss)
    assert (loss.alpha, loss.smooth, loss.square_denominator, loss.reduction, loss.ohem_ratio) == (
        0.01, 1.0, True, "batch", 0.0)
    for name in ("dsc_official", "dsc_paper"):  # configs/loss/<name>.yaml, composed (they extend dsc.yaml)
        cfg = composed_loss(compose_config, name)
        assert (cfg["name"], cfg["kind"]) == (name, "dsc")
        assert {k: v for k, v in cfg.items() if k not in ("name", "kind")} == PRESETS[name][1]
    # explicit keywords override a preset
    assert build_loss("dsc_official", ohem_ratio=0.3).ohem_ratio == 0.3


def test_build_from_dict_and_omegaconf_and_overrides():
    assert build_loss({"name": "tl", "alpha": 0.3, "beta": 0.7}).beta == 0.7
    node = OmegaConf.create({"name": "dsc", "alpha": 0.1, "smooth": 1.0})
    loss = build_loss(node, smooth=2.0)
    assert (loss.alpha, loss.smooth) == (0.1, 2.0)
    assert build_loss("DSC").alpha == 0.01  # case-insensitive names


def test_kind_chooses_the_formula_and_name_is_kept_for_recording():
    """CONTRACT §4: a loss config's `kind` is the formula, its `name` the variant the run chose."""
    loss = build_loss({"name": "my_dice", "kind": "dsc", "alpha": 0.2})
    assert isinstance(loss, SelfAdjustingDiceLoss) and loss.alpha == 0.2 and loss.name == "my_dice"
    paper = build_loss(OmegaConf.create({"name": "dsc_paper", "kind": "dsc", **PRESETS["dsc_paper"][1]}))
    assert paper.name == "dsc_paper" and (paper.alpha, paper.reduction) == (1.0, "mean")
    assert build_loss({"name": "strict", "kind": "dsc_paper"}).reduction == "mean"  # a kind may be a preset
    assert build_loss("dsc_official").name == "dsc_official" and build_loss({"kind": "fl"}).name == "fl"


def test_each_loss_states_the_head_it_needs():
    """Tasks and models ask the loss object (CONTRACT §4): the dice family scores a binary decision with one
    sigmoid logit, CE/WCE/FL with a 2-way softmax; a span head is a softmax over positions for CE only."""
    heads = {name: (make(name, 2).binary_head, make(name, 2).span_head) for name in NAMES}
    assert heads == {"ce": ("softmax", "positions"), "wce": ("softmax", "softmax"), "fl": ("softmax", "softmax"),
                     "dl": ("sigmoid", "sigmoid"), "tl": ("sigmoid", "sigmoid"), "dsc": ("sigmoid", "sigmoid")}
    assert CrossEntropyLoss(class_weights=[1.0, 2.0]).span_head == "softmax"  # class weights need fixed classes


def test_tversky_beta_none_is_one_minus_alpha():
    """Table 10's convention: beta = 1 - alpha."""
    x, y = torch.randn(20, dtype=torch.float64), torch.randint(0, 2, (20,))
    for alpha in (0.1, 0.3, 0.9):
        loss = build_loss({"name": "tl", "alpha": alpha, "beta": None})
        assert loss.beta == pytest.approx(1 - alpha)
        torch.testing.assert_close(loss(x, y), TverskyLoss(alpha=alpha, beta=1 - alpha)(x, y))


def test_label_counts_reach_only_the_loss_that_uses_them():
    calls = []

    def counts():
        calls.append(1)
        return [80, 15, 5]

    assert isinstance(build_loss("ce", label_counts=counts), CrossEntropyLoss) and not calls
    torch.testing.assert_close(build_loss("wce", label_counts=counts, K=2.0).class_weights,
                               wce_class_weights([80, 15, 5], K=2.0))
    assert len(calls) == 1
    given = build_loss("wce", class_weights=[1.0, 2.0, 3.0], label_counts=counts)  # explicit weights win
    assert given.class_weights.tolist() == [1.0, 2.0, 3.0] and len(calls) == 1


def test_builder_errors_are_clear():
    with pytest.raises(ValueError, match="unknown loss"):
        build_loss("dice")
    with pytest.raises(TypeError, match="accepted"):
        build_loss("dl", smoth=1.0)  # typo must not silently fall back to the default
    with pytest.raises(ValueError, match="kind"):
        build_loss({"alpha": 1.0})
    with pytest.raises(ValueError, match="label_counts"):
        build_loss("wce")
    with pytest.raises(ValueError, match="reduction"):
        build_loss("dl", reduction="sum")


@pytest.mark.parametrize("name", NAMES)
def test_shapes_binary_multiclass_and_scalar(name):
    torch.manual_seed(0)
    loss = make(name, 2)
    out = loss(torch.randn(2, 5), torch.randint(0, 2, (2, 5)))  # binary
    assert out.dim() == 0 and torch.isfinite(out)
    out = make(name, 3)(torch.randn(2, 5, 3), torch.randint(0, 3, (2, 5)))  # multi-class
    assert out.dim() == 0 and torch.isfinite(out)
    # [..., 1] logits with [...] targets are binary too (the official code's .view(-1, 1) habit)
    x = torch.randn(6, 1)
    y = torch.randint(0, 2, (6,))
    torch.testing.assert_close(loss(x, y), loss(x.squeeze(-1), y))


@pytest.mark.parametrize("name", NAMES)
def test_ignored_positions_have_zero_grad_and_no_effect(name):
    torch.manual_seed(1)
    for shape, classes in [((3, 6), None), ((3, 6, 3), 3)]:
        loss = make(name, classes or 2)
        x = torch.randn(*shape, requires_grad=True)
        y = torch.randint(0, classes or 2, shape[:2])
        y[0, 0] = -100
        mask = torch.ones(shape[:2], dtype=torch.bool)
        mask[1, 2:] = False
        out = loss(x, y, mask)
        out.backward()
        assert x.grad[0, 0].abs().sum() == 0 and x.grad[1, 2:].abs().sum() == 0
        assert x.grad.abs().sum() > 0
        # garbage (NaN / inf) at ignored positions changes nothing
        x2 = x.detach().clone()
        x2[0, 0] = float("nan")
        x2[1, 2:] = float("inf")
        x2.requires_grad_(True)
        out2 = loss(x2, y, mask)
        out2.backward()
        torch.testing.assert_close(out2, out)
        assert torch.isfinite(x2.grad).all()
        torch.testing.assert_close(x2.grad, x.grad)


@pytest.mark.parametrize("name", NAMES)
@pytest.mark.parametrize("multiclass", [False, True])
def test_all_masked_gives_zero_loss_and_zero_grad(name, multiclass):
    loss = make(name, 3 if multiclass else 2)
    shape = (4, 3) if multiclass else (4,)
    x = torch.randn(*shape, requires_grad=True)
    y = torch.full((4,), -100)
    for mask in (None, torch.zeros(4)):
        x.grad = None
        yy = y if mask is None else torch.zeros(4, dtype=torch.long)
        out = loss(x, yy, mask)
        out.backward()
        assert out.item() == 0.0
        assert torch.equal(x.grad, torch.zeros_like(x))


def test_shape_and_value_errors():
    loss = build_loss("dl")
    with pytest.raises(ValueError, match="do not match"):
        loss(torch.randn(4, 3), torch.zeros(5, dtype=torch.long))
    with pytest.raises(ValueError, match="mask must have"):
        loss(torch.randn(4), torch.zeros(4), mask=torch.ones(4, 1))
    with pytest.raises(ValueError, match="outside"):
        loss(torch.randn(4, 3), torch.tensor([0, 1, 2, 3]))
    with pytest.raises(ValueError, match=r"\[0, 1\]"):
        loss(torch.randn(4), torch.tensor([0, 1, 2, 0]))
    with pytest.raises(TypeError, match="integer class ids"):
        loss(torch.randn(4, 3), torch.zeros(4))


def test_wce_weights_and_label_counts():
    counts = count_labels(torch.tensor([[0, 0, 0, 1], [2, 0, -100, 1]]), num_classes=4)
    assert counts.tolist() == [4, 2, 1, 0]
    w = wce_class_weights([80, 15, 5], K=1.0)
    n = 100
    expected = [torch.log10(torch.tensor((n - c) / c + 1.0, dtype=torch.float64)) for c in (80, 15, 5)]
    torch.testing.assert_close(w, torch.stack(expected), rtol=0, atol=1e-12)
    assert w[0] < w[1] < w[2]  # rarer classes weigh more
    assert wce_class_weights([10, 0, 5])[1] == 0.0  # absent class: weight 0, not inf
    with pytest.raises(ValueError, match="K"):
        wce_class_weights([90, 10], K=0.0)  # lg(10/90) < 0
    loss = WeightedCrossEntropyLoss(label_counts=[80, 15, 5], K=2.0)
    torch.testing.assert_close(loss.class_weights, wce_class_weights([80, 15, 5], K=2.0))
    with pytest.raises(ValueError, match="3 class weights for 2"):
        loss(torch.randn(4, 2), torch.zeros(4, dtype=torch.long))


def test_module_moves_and_has_no_parameters():
    loss = make("wce")
    assert list(loss.parameters()) == []
    assert loss.to(torch.float32).class_weights is not None


COMPILED = [("ce", {}), ("wce", {}), ("fl", dict(gamma=2.0)), ("fl", dict(gamma=0.5, class_weights="auto")),
            ("dl", {}), ("dl", dict(reduction="mean", smooth=0.0)), ("tl", dict(alpha=0.3, beta=None)),
            ("dsc", {}), ("dsc", dict(alpha=1.0, reduction="mean", square_denominator=False)),
            ("dsc", dict(ohem_ratio=0.3))]


def compiled_and_eager(loss, x, t, mask, backend):
    """(loss, gradient) of ``loss(tanh(x) * 3, t, mask)`` compiled as ONE graph (``fullgraph=True`` raises on
    any graph break) and eagerly."""
    def f(v):
        return loss(torch.tanh(v) * 3.0, t, mask)

    torch._dynamo.reset()
    results = []
    for fn in (torch.compile(f, fullgraph=True, backend=backend), f):
        leaf = x.clone().requires_grad_(True)
        out = fn(leaf)
        results.append((out.detach(), torch.autograd.grad(out, leaf)[0]))
    return results


@pytest.mark.parametrize("name,prm", COMPILED, ids=[f"{n}-{i}" for i, (n, _) in enumerate(COMPILED)])
@pytest.mark.parametrize("multiclass", [False, True])
def test_every_loss_compiles_to_one_graph_and_agrees(name, prm, multiclass):
    """torch.compile(fullgraph=True) traces forward and backward (AOT autograd, eager kernels) with masks, -100
    and OHEM: no graph break, no host sync, the eager loss and gradient."""
    g = torch.Generator().manual_seed(5)
    C = 4 if multiclass else 2
    x = torch.randn(40, C, generator=g) if multiclass else torch.randn(40, generator=g)
    t = torch.randint(0, C, (40,), generator=g)
    t[3] = -100
    mask = torch.rand(40, generator=g) > 0.2
    prm = dict(prm, class_weights=[0.5, 2.0, 1.0, 3.0][:C]) if prm.get("class_weights") else prm
    (out_c, g_c), (out_e, g_e) = compiled_and_eager(make(name, C, **prm), x, t, mask, backend="aot_eager")
    torch.testing.assert_close(out_c, out_e)
    torch.testing.assert_close(g_c, g_e)
    assert g_e[3].abs().sum() == 0 and g_e[~mask].abs().sum() == 0


@pytest.mark.skipif(not any(shutil.which(c) for c in ("c++", "g++", "clang++")), reason="inductor needs a C++ compiler")
def test_dsc_compiles_with_inductor():
    """The default backend generates and runs its own kernels for the loss and its backward."""
    g = torch.Generator().manual_seed(6)
    x, t = torch.randn(64, 5, generator=g) * 4, torch.randint(0, 5, (64,), generator=g)
    (out_c, g_c), (out_e, g_e) = compiled_and_eager(build_loss("dsc"), x, t, None, backend="inductor")
    torch.testing.assert_close(out_c, out_e)
    torch.testing.assert_close(g_c, g_e)


def test_tasks_and_models_ask_the_loss_and_never_compare_its_name():
    """CONTRACT §4: no loss name as a string in the code of tasks/ and models/ (docstrings aside), and models/
    imports nothing from tasks/."""
    import ast

    src = Path(__file__).resolve().parents[1] / "src" / "dicenlp"
    for path in [*(src / "tasks").glob("*.py"), *(src / "models").glob("*.py")]:
        tree = ast.parse(path.read_text())
        docstrings = {id(node.body[0].value) for node in ast.walk(tree)
                      if isinstance(node, (ast.Module, ast.ClassDef, ast.FunctionDef)) and ast.get_docstring(node)}
        names = [node.value for node in ast.walk(tree) if isinstance(node, ast.Constant)
                 and id(node) not in docstrings and node.value in set(NAMES) | set(PRESETS)]
        assert not names, f"{path.name} names losses {names}: ask the loss object (binary_head, span_head)"
        if path.parent.name == "models":
            imported = [node.module for node in ast.walk(tree) if isinstance(node, ast.ImportFrom)]
            assert not [m for m in imported if m and m.startswith("dicenlp.tasks")], path.name
