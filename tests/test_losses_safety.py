"""dicenlp.losses are safe: extreme logits, saturated probabilities, fp16/bf16 autocast, non-contiguous
inputs, batches without positives, and vectorised (no Python loop over classes or positions)."""

import math

import pytest
import torch
from torch.utils._python_dispatch import TorchDispatchMode

from dicenlp.losses import SelfAdjustingDiceLoss, build_loss


CASES = [
    ("ce", {}), ("wce", None), ("fl", dict(gamma=2.0)), ("fl", dict(gamma=0.5)),
    ("dl", {}), ("dl", dict(reduction="mean", square_denominator=False)), ("tl", dict(alpha=0.3, beta=0.7)),
    ("dsc", {}), ("dsc", dict(alpha=1.0, reduction="mean", square_denominator=False)),
    ("dsc", dict(alpha=0.1, ohem_ratio=0.3)),
]
IDS = [f"{n}-{i}" for i, (n, _) in enumerate(CASES)]


def make(name, prm, num_classes):
    prm = dict(prm) if prm is not None else dict(label_counts=list(range(num_classes, 0, -1)))
    return build_loss(name, **prm)


@pytest.mark.parametrize("name,prm", CASES, ids=IDS)
@pytest.mark.parametrize("multiclass", [False, True])
def test_extreme_logits_give_finite_loss_and_gradients(name, prm, multiclass):
    g = torch.Generator().manual_seed(0)
    C = 4 if multiclass else 2
    shape = (6, 9, C) if multiclass else (6, 9)
    x = (torch.randint(0, 2, shape, generator=g).float() * 2 - 1) * 1e4  # every probability saturated
    y = torch.randint(0, C, (6, 9), generator=g)
    for scale in (1.0, 0.0017):  # ±1e4 and ±17 (where fp32 sigmoid rounds to exactly 1)
        xx = (x * scale).requires_grad_(True)
        out = make(name, prm, C)(xx, y)
        out.backward()
        assert torch.isfinite(out), (name, scale, out)
        assert torch.isfinite(xx.grad).all(), (name, scale)


def analytic_dsc_grad(x, alpha):
    """d p̃/dx for p̃ = (1-σ(x))^α σ(x), in float64: p̃ · (1 - (1+α) σ(x)) (chain rule through log p̃)."""
    p = 1 / (1 + math.exp(-x))
    pt = math.exp(alpha * (-x - math.log1p(math.exp(-x))) - math.log1p(math.exp(-x)))
    return pt * (1 - (1 + alpha) * p)


@pytest.mark.parametrize("alpha", [0.01, 0.1, 1.0])
def test_dsc_weight_has_finite_exact_gradient_where_p_rounds_to_one(alpha):
    """The official ``(1 - p) ** alpha * p`` has a NaN gradient once p == 1.0 (fp32 at logit ~17, fp16 at
    ~8.5); the log-space form used here gives the true, finite gradient."""
    for x0 in (17.0, 25.0, 40.0, 88.0):
        x = torch.tensor([x0], requires_grad=True)
        p = torch.sigmoid(x)
        assert p.item() == 1.0
        naive = ((1 - p) ** alpha * p).sum()
        (gx,) = torch.autograd.grad(naive, x)
        if alpha < 1:  # d/dp (1-p)^α = -α (1-p)^(α-1) is infinite at p = 1 for α < 1
            assert torch.isnan(gx).all()  # the hazard is real ...
        # ... and the library's loss is not affected: set-level sum with one positive of weight p̃
        loss = SelfAdjustingDiceLoss(alpha=alpha, smooth=1.0, square_denominator=False)
        out = loss(x, torch.tensor([1.0]))
        (g,) = torch.autograd.grad(out, x)
        assert torch.isfinite(g).all()
        # d loss/dx for one position: L = 1 - (2p̃ + 1)/(p̃ + 2) → dL/dp̃ = -3/(p̃ + 2)^2
        pt = math.exp(-alpha * (x0 + math.log1p(math.exp(-x0))) - math.log1p(math.exp(-x0)))
        want = -3 / (pt + 2) ** 2 * analytic_dsc_grad(x0, alpha)
        assert g.item() == pytest.approx(want, rel=1e-4, abs=1e-30)


def test_multiclass_dsc_gradient_finite_when_softmax_saturates():
    x = torch.tensor([[20.0, -3.0, -4.0], [0.5, 30.0, 0.0]], requires_grad=True)
    p = x.softmax(-1)
    assert (p.max(-1).values == 1.0).all()
    (naive,) = torch.autograd.grad(((1 - p) ** 0.01 * p).sum(), x)  # the official code's weight
    assert torch.isnan(naive).any()
    for dtype in (torch.float16, torch.bfloat16, torch.float32):
        x = torch.tensor([[20.0, -3.0, -4.0], [0.5, 30.0, 0.0], [-1e4, 1e4, 0.0]], dtype=dtype, requires_grad=True)
        y = torch.tensor([0, 1, 2])
        out = SelfAdjustingDiceLoss(alpha=0.01)(x, y)
        out.backward()
        assert torch.isfinite(out) and torch.isfinite(x.grad.float()).all()
    # float64 reference gradient of the same loss agrees with fp32
    x64 = torch.tensor([[20.0, -3.0, -4.0], [0.5, 30.0, 0.0]], dtype=torch.float64, requires_grad=True)
    x32 = x64.detach().float().requires_grad_(True)
    y = torch.tensor([0, 0])
    loss = SelfAdjustingDiceLoss(alpha=0.3)
    loss(x64, y).backward()
    loss(x32, y).backward()
    torch.testing.assert_close(x32.grad.double(), x64.grad, rtol=1e-4, atol=1e-7)


def test_minus_inf_logits_for_impossible_classes_are_allowed():
    """Softmax-over-positions heads often fill impossible positions with -inf."""
    x = torch.tensor([[2.0, float("-inf"), 0.5], [float("-inf"), 1.0, float("-inf")]], requires_grad=True)
    y = torch.tensor([0, 1])
    for name in ("ce", "fl", "dl", "tl", "dsc"):
        x.grad = None
        out = build_loss(name)(x, y)
        out.backward()
        assert torch.isfinite(out) and torch.isfinite(x.grad).all(), name
        assert (x.grad[torch.isinf(x.detach())] == 0).all()


@pytest.mark.parametrize("name,prm", CASES, ids=IDS)
@pytest.mark.parametrize("dtype", [torch.bfloat16, torch.float16])
@pytest.mark.parametrize("multiclass", [False, True])
def test_half_precision_autocast_is_computed_in_fp32(name, prm, dtype, multiclass):
    torch.manual_seed(0)
    C = 5 if multiclass else 2
    layer = torch.nn.Linear(8, C if multiclass else 1)
    h = torch.randn(4, 7, 8) * 3
    y = torch.randint(0, C, (4, 7))
    y[0, :3] = -100
    loss_fn = make(name, prm, C)
    with torch.autocast("cpu", dtype=dtype):
        logits = layer(h)
        if not multiclass:
            logits = logits.squeeze(-1)
        assert logits.dtype == dtype
        out = loss_fn(logits, y)
    assert out.dtype == torch.float32
    # exactly the loss of the same (upcast) logits computed outside autocast
    torch.testing.assert_close(out, loss_fn(logits.detach().float(), y), rtol=0, atol=0)
    out.backward()
    assert all(torch.isfinite(p.grad).all() for p in layer.parameters())


@pytest.mark.parametrize("name,prm", CASES, ids=IDS)
def test_non_contiguous_inputs(name, prm):
    g = torch.Generator().manual_seed(3)
    # binary: transposed views
    xb = torch.randn(9, 5, generator=g)
    yb = torch.randint(0, 2, (9, 5), generator=g)
    mb = torch.rand(9, 5, generator=g) > 0.2
    loss = make(name, prm, 2)
    assert not xb.t().is_contiguous()
    torch.testing.assert_close(loss(xb.t(), yb.t(), mb.t()), loss(xb.t().contiguous(), yb.t().contiguous(),
                                                                    mb.t().contiguous()))
    # multi-class: strided class dim and transposed batch dims
    xm = torch.randn(5, 9, 8, generator=g)[..., ::2].transpose(0, 1)
    ym = torch.randint(0, 4, (5, 9), generator=g).t()
    assert not xm.is_contiguous()
    loss = make(name, prm, 4)
    torch.testing.assert_close(loss(xm, ym), loss(xm.contiguous(), ym.contiguous()))


@pytest.mark.parametrize("name", ["dl", "tl", "dsc"])
def test_batch_without_positives_pushes_probabilities_down(name):
    x = torch.randn(3, 10, requires_grad=True)
    y = torch.zeros(3, 10)
    out = build_loss(name)(x, y)
    out.backward()
    assert torch.isfinite(out) and out > 0
    assert (x.grad > 0).all()  # gradient descent lowers every logit
    # multi-class: a class absent from the batch still gets a push-down signal
    xm = torch.randn(20, 3, requires_grad=True)
    ym = torch.randint(0, 2, (20,))  # class 2 absent
    build_loss(name)(xm, ym).backward()
    assert torch.isfinite(xm.grad).all() and xm.grad[:, 2].abs().sum() > 0


class _CountOps(TorchDispatchMode):
    def __init__(self):
        super().__init__()
        self.count = 0

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        self.count += 1
        return func(*args, **(kwargs or {}))


def _ops(loss, x, y):
    x = x.clone().requires_grad_(True)
    with _CountOps() as mode:
        loss(x, y).backward()
    return mode.count


@pytest.mark.parametrize("name,prm", CASES, ids=IDS)
def test_vectorised_op_count_does_not_grow_with_classes_or_positions(name, prm):
    """A Python loop over classes or positions would dispatch more tensor ops for larger inputs."""
    counts = set()
    for n, C in [(8, 3), (8, 40), (500, 3), (500, 40)]:
        g = torch.Generator().manual_seed(n + C)
        loss = make(name, prm, C)
        counts.add(_ops(loss, torch.randn(n, C, generator=g), torch.randint(0, C, (n,), generator=g)))
    assert len(counts) == 1 and min(counts) > 5, counts
    binary = {_ops(make(name, prm, 2), torch.randn(n, generator=torch.Generator().manual_seed(n)),
                   torch.randint(0, 2, (n,), generator=torch.Generator().manual_seed(n))) for n in (8, 700)}
    assert len(binary) == 1, binary


def test_multiclass_dsc_exact_beyond_the_float_range():
    """Logit gaps so large that every other probability underflows: p̃ of the top class is still
    exp(α log(1 - p)) exactly, from log(1 - p) = logsumexp of the others (here log 2 - 1000)."""
    x = torch.tensor([[1000.0, 0.0, 0.0], [0.0, 0.5, -1.0]], dtype=torch.float64, requires_grad=True)
    y = torch.tensor([0, 1])
    a = 0.3
    loss = SelfAdjustingDiceLoss(alpha=a, square_denominator=False, reduction="batch")
    out = loss(x, y)
    out.backward()
    assert torch.isfinite(x.grad).all()
    # reference: per class c, 1 - (2 Σ p̃ y + 1)/(Σ p̃ + Σ y + 1), p̃ in log space
    pt0 = torch.tensor([[math.exp(a * (math.log(2) - 1000)), 0.0, 0.0]], dtype=torch.float64)
    p1 = torch.softmax(x.detach()[1:], -1)
    pt1 = (1 - p1) ** a * p1
    pt = torch.cat([pt0, pt1])
    yy = torch.nn.functional.one_hot(y, 3).double()
    want = (1 - (2 * (pt * yy).sum(0) + 1) / (pt.sum(0) + yy.sum(0) + 1)).mean()
    torch.testing.assert_close(out.detach(), want, rtol=1e-12, atol=1e-12)
    # same in fp32 with a gap of 200 (fp32 underflows beyond ~87)
    x32 = torch.tensor([[200.0, 0.0, 0.0]], requires_grad=True)
    out32 = loss(x32, torch.tensor([0]))
    out32.backward()
    assert torch.isfinite(out32) and torch.isfinite(x32.grad).all()
    pt = math.exp(a * (math.log(2) - 200))
    want32 = (1 - (2 * pt + 1) / (pt + 1 + 1) + 2 * (1 - 1 / 1)) / 3  # classes 1, 2: p̃ = 0, no target → 0
    assert out32.item() == pytest.approx(want32, rel=1e-5)


@pytest.mark.parametrize("C", [3, 5000, 6000])
def test_many_classes_big_entry_index_is_exact(C):
    """The big-entry column is found by an integer sum for C <= 4096 and by argmax above (fp32 sums of
    indices stop being exact near C = 5800)."""
    x = torch.zeros(2, C)
    x[0, C - 2] = 40.0  # p ≈ 1 at a high index
    x[1, 1] = 40.0
    y = torch.tensor([C - 2, 0])
    a = 0.2
    out = SelfAdjustingDiceLoss(alpha=a, square_denominator=False, reduction="mean")(x, y).double()  # fp32
    p = torch.softmax(x.double(), -1)
    # 1 - p_big = (C-1) / (e^40 + C - 1), in log space
    log1m = math.log(C - 1) - 40.0 - math.log1p((C - 1) * math.exp(-40.0))
    pt = (1 - p) ** a * p
    pt[0, C - 2] = math.exp(a * log1m) * p[0, C - 2]
    pt[1, 1] = math.exp(a * log1m) * p[1, 1]
    yy = torch.nn.functional.one_hot(y, C).double()
    want = (1 - (2 * pt * yy + 1) / (pt + yy + 1)).mean(0).mean()
    torch.testing.assert_close(out, want, rtol=1e-5, atol=1e-7)
