"""dicenlp.losses: the public API (builder, configs, shapes, masking, errors)."""

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
    """The loss block of ``python train.py loss=<name>`` as build_loss takes it: ``kind`` (the formula) as its name."""
    cfg = OmegaConf.to_container(compose_config(f"loss={name}").loss, resolve=True)
    return cfg, {**{k: v for k, v in cfg.items() if k != "kind"}, "name": cfg["kind"]}


@pytest.mark.parametrize("name", NAMES)
def test_every_config_file_builds(name, compose_config):
    cfg, params = composed_loss(compose_config, name)
    assert cfg["name"] == cfg["kind"] == name
    extra = {"label_counts": [30, 10]} if name == "wce" else {}
    loss = build_loss(params, **extra)
    assert isinstance(loss, LOSSES[name])


def test_official_preset_matches_config_and_official_scripts(compose_config):
    loss = build_loss("dsc_official")
    assert isinstance(loss, SelfAdjustingDiceLoss)
    assert (loss.alpha, loss.smooth, loss.square_denominator, loss.reduction, loss.ohem_ratio) == (
        0.01, 1.0, True, "batch", 0.0)
    for name in ("dsc_official", "dsc_paper"):  # configs/loss/<name>.yaml, composed (they extend dsc.yaml)
        cfg, params = composed_loss(compose_config, name)
        assert (cfg["name"], params.pop("name")) == (name, "dsc")
        assert params == PRESETS[name][1]
    # explicit keywords override a preset
    assert build_loss("dsc_official", ohem_ratio=0.3).ohem_ratio == 0.3


def test_build_from_dict_and_omegaconf_and_overrides():
    assert build_loss({"name": "tl", "alpha": 0.3, "beta": 0.7}).beta == 0.7
    node = OmegaConf.create({"name": "dsc", "alpha": 0.1, "smooth": 1.0})
    loss = build_loss(node, smooth=2.0)
    assert (loss.alpha, loss.smooth) == (0.1, 2.0)
    assert build_loss("DSC").alpha == 0.01  # case-insensitive names


def test_builder_errors_are_clear():
    with pytest.raises(ValueError, match="unknown loss"):
        build_loss("dice")
    with pytest.raises(TypeError, match="accepted"):
        build_loss("dl", smoth=1.0)  # typo must not silently fall back to the default
    with pytest.raises(ValueError, match="name"):
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


def test_losses_inside_torch_compile_run_eagerly_and_agree():
    """Models are often wrapped in torch.compile: the hand-written losses (C kernel, closed-form backward) run
    eagerly there (one graph break, no tracing warnings) and give the eager result."""
    import warnings

    for name, shape in [("dsc", (64, 7)), ("fl", (64,))]:
        loss = build_loss(name)
        x = torch.randn(*shape, requires_grad=True)
        t = torch.randint(0, 7, (64,)) if len(shape) == 2 else torch.randint(0, 2, (64,)).float()

        def f(v):
            return loss(torch.tanh(v) * 3.0, t)

        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            compiled = torch.compile(f)(x)
        assert not [w for w in caught if "Dynamo" in str(w.message)], [str(w.message)[:200] for w in caught]
        (g_compiled,) = torch.autograd.grad(compiled, x)
        eager = f(x)
        (g_eager,) = torch.autograd.grad(eager, x)
        torch.testing.assert_close(compiled, eager)
        torch.testing.assert_close(g_compiled, g_eager)
