"""The gradients of the losses. The library computes each loss its own way (log space, the one-vs-rest classes
of a softmax, OHEM by sorting, a cheaper logsumexp); here, in float64, its loss and its gradient w.r.t. the
logits must equal autograd through the plain formulas written independently: one-hot targets, every class
one-vs-rest, OHEM by a loop over classes, and (1 - p) in log space (log(1 - p_c) = torch.logsumexp of the
other classes' log-probabilities, exact at any saturation). Inputs include saturated rows (p = 1 in
float64), rows whose other classes underflow (gap 800), masks, -100 and OHEM. Also: gradcheck at saturation,
second derivatives (gradgradcheck), fp32 against float64 at saturation.
"""

import math

import pytest
import torch
import torch.nn.functional as F

from dicenlp.losses import build_loss

TOL = dict(rtol=1e-10, atol=1e-12)


# ----------------------------------------------------------------------------- plain references (autograd)
def log1m_softmax(x):
    """[N, C] log(1 - softmax(x)) = logsumexp over j ≠ c of log p_j (exact, finite gradients)."""
    lp = x.log_softmax(-1)
    C = x.shape[-1]
    off = torch.where(torch.eye(C, dtype=torch.bool), float("-inf"), 0.0).to(x.dtype)
    return (lp[:, None, :] + off).logsumexp(-1)


def ref_keep(p, y, ratio):
    """OHEM by a loop over classes: every positive and the k_c highest-p negatives (no ties here)."""
    keep = torch.zeros_like(p)
    for c in range(p.shape[1]):
        pos, neg = y[:, c] > 0.5, y[:, c] <= 0.5
        k = min(int(neg.sum()), math.floor(ratio * int(pos.sum()) + 1e-9))
        keep[pos, c] = 1.0
        neg_idx = neg.nonzero().squeeze(1)
        keep[neg_idx[p[neg_idx, c].argsort(descending=True)[:k]], c] = 1.0
    return keep


def ref_dice(x, t, mask, kind, prm, reduction, ohem_ratio):
    valid = (t != -100) & mask
    x, t = x[valid], t[valid]
    C = x.shape[1]
    y = torch.nn.functional.one_hot(t, C).to(x.dtype)
    lp = x.log_softmax(-1)
    p = lp.exp()
    s = torch.exp(lp + prm["alpha"] * log1m_softmax(x)) if kind == "dsc" else p
    keep = ref_keep(p.detach(), y, ohem_ratio) if ohem_ratio > 0 else torch.ones_like(p)
    if kind == "tl":  # Eq. 10
        n, d = s * y, s * y + prm["alpha"] * s * (1 - y) + prm["beta"] * (1 - s) * y
    else:  # Eqs. 6, 7 (dsc: with s = p̃)
        kk = 2 if prm.get("square_denominator", True) else 1
        n, d = 2 * s * y, s ** kk + y ** kk
    g = prm.get("smooth", 1.0)
    if reduction == "batch":
        per_class = 1 - ((keep * n).sum(0) + g) / ((keep * d).sum(0) + g)
    else:
        per_class = (keep * (1 - (n + g) / (d + g))).sum(0) / keep.sum(0).clamp(min=1)
    return per_class.mean()


def ref_focal(x, t, mask, gamma, weights, reduction):
    valid = (t != -100) & mask
    x, t = x[valid], t[valid]
    lp_t = x.log_softmax(-1).gather(1, t[:, None]).squeeze(1)
    l1m_t = log1m_softmax(x).gather(1, t[:, None]).squeeze(1)
    per = -torch.exp(gamma * l1m_t) * lp_t
    if weights is not None:
        per = per * torch.tensor(weights, dtype=x.dtype)[t]
    return per.sum() if reduction == "sum" else per.sum() / max(len(t), 1)


# ----------------------------------------------------------------------------- inputs
def value_and_grad(fn, x):
    """``fn(x')`` and its gradient, on a fresh leaf copy ``x'`` of ``x``."""
    leaf = x.clone().requires_grad_(True)
    value = fn(leaf)
    (grad,) = torch.autograd.grad(value, leaf)
    return value, grad


def inputs(seed, n=23, C=5, saturate=True):
    """float64 logits with masked and -100 rows; rows 2-5 saturated: p = 1 in float64 at the target,
    at a non-target, and (gap 800) with the other classes' mass below the float range."""
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(n, C, generator=g, dtype=torch.float64) * 2.5
    t = torch.randint(0, C, (n,), generator=g)
    mask = torch.ones(n, dtype=torch.bool)
    t[1] = -100
    mask[7] = False
    x[1, 0] = float("nan")  # ignored rows may hold garbage
    if saturate:
        x[2, t[2]] += 60.0  # 1 - p ≈ 1e-26: p == 1 in float64
        x[3, (t[3] + 1) % C] += 45.0  # confident and wrong
        x[4, t[4]] += 800.0  # the other classes underflow (m = 0 in float64)
        x[5, (t[5] + 2) % C] += 800.0
    return x, t, mask


DICE = [
    ("dl", dict(square_denominator=True)),
    ("dl", dict(square_denominator=False, smooth=0.5)),
    ("tl", dict(alpha=0.3, beta=0.7)),
    ("tl", dict(alpha=0.5, beta=0.5, smooth=2.0)),
    ("dsc", dict(alpha=0.01, square_denominator=True)),
    ("dsc", dict(alpha=1.0, square_denominator=False)),
    ("dsc", dict(alpha=0.3, square_denominator=True, smooth=0.2)),
]


@pytest.mark.parametrize("gamma,weights", [(2.0, None), (0.5, [0.5, 2.0, 1.0, 3.0, 0.7]), (1.0, None)])
@pytest.mark.parametrize("reduction", ["mean", "sum"])
def test_focal_loss_and_gradient_equal_autograd_of_the_plain_formula(gamma, weights, reduction):
    for seed in range(3):
        x, t, mask = inputs(seed)
        got, g_got = value_and_grad(
            lambda v: build_loss("fl", gamma=gamma, class_weights=weights, reduction=reduction)(v, t, mask), x)
        want, g_want = value_and_grad(lambda v: ref_focal(v, t, mask, gamma, weights, reduction), x)
        torch.testing.assert_close(got, want, **TOL)
        torch.testing.assert_close(g_got, g_want, **TOL)
        assert (g_got[1] == 0).all() and (g_got[7] == 0).all()


def ref_binary_focal(x, y, mask, gamma, weights, reduction):
    """-[y (1 - p)^γ log p + (1 - y) p^γ log(1 - p)] (times the class weight), p = σ(x), in log space."""
    valid = (y != -100) & mask
    x, y = x[valid], y[valid].to(x.dtype)
    lp, lq = F.logsigmoid(x), F.logsigmoid(-x)
    w1, w0 = (1.0, 1.0) if weights is None else (weights[1], weights[0])
    per = -(y * w1 * torch.exp(gamma * lq) * lp + (1 - y) * w0 * torch.exp(gamma * lp) * lq)
    return per.sum() if reduction == "sum" else per.sum() / max(len(y), 1)


def binary_inputs(seed):
    """float64 logits (p == 1 and 0 in float64 at positions 0-3), 0/1 targets with a -100 at 5, a mask."""
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(40, generator=g, dtype=torch.float64) * 3
    x[:4] = torch.tensor([40.0, -40.0, 800.0, -800.0], dtype=torch.float64)
    y = (torch.rand(40, generator=g) < 0.3).long()
    y[0], y[2], y[5] = 1, 0, -100
    return x, y, torch.rand(40, generator=g) > 0.1


@pytest.mark.parametrize("gamma,weights", [(2.0, None), (0.5, [0.7, 3.0]), (0.0, None)])
@pytest.mark.parametrize("reduction", ["mean", "sum"])
def test_binary_focal_loss_and_gradient_equal_autograd_of_the_plain_formula(gamma, weights, reduction):
    for seed in range(3):
        x, y, mask = binary_inputs(seed)
        loss = build_loss("fl", gamma=gamma, class_weights=weights, reduction=reduction)
        got, g_got = value_and_grad(lambda v: loss(v, y, mask), x)
        want, g_want = value_and_grad(lambda v: ref_binary_focal(v, y, mask, gamma, weights, reduction), x)
        torch.testing.assert_close(got, want, **TOL)
        torch.testing.assert_close(g_got, g_want, **TOL)
        assert g_got[5] == 0 and (g_got[~mask] == 0).all()


def ref_binary_dice(x, y, mask, kind, prm, reduction, ohem_ratio):
    valid = (y != -100) & mask
    x, y = x[valid], y[valid].to(x.dtype)
    p, q = torch.sigmoid(x), torch.sigmoid(-x)
    s = torch.exp(torch.nn.functional.logsigmoid(x) + prm["alpha"] * torch.nn.functional.logsigmoid(-x)) \
        if kind == "dsc" else p
    keep = ref_keep(p.detach()[:, None], y[:, None], ohem_ratio)[:, 0] if ohem_ratio > 0 else torch.ones_like(p)
    if kind == "tl":
        n, d = s * y, s * y + prm["alpha"] * s * (1 - y) + prm["beta"] * q * y
    else:
        kk = 2 if prm.get("square_denominator", True) else 1
        n, d = 2 * s * y, s ** kk + y ** kk
    g = prm.get("smooth", 1.0)
    if reduction == "batch":
        return 1 - ((keep * n).sum() + g) / ((keep * d).sum() + g)
    return (keep * (1 - (n + g) / (d + g))).sum() / keep.sum().clamp(min=1)


@pytest.mark.parametrize("kind,prm", DICE, ids=[f"{k}-{i}" for i, (k, _) in enumerate(DICE)])
@pytest.mark.parametrize("reduction", ["batch", "mean"])
@pytest.mark.parametrize("ohem", [0.0, 0.5])
@pytest.mark.parametrize("binary", [False, True], ids=["multiclass", "binary"])
def test_dice_loss_and_gradient_equal_autograd_of_the_plain_formula(kind, prm, reduction, ohem, binary):
    make_inputs, ref = (binary_inputs, ref_binary_dice) if binary else (inputs, ref_dice)
    for seed in range(3):
        x, y, mask = make_inputs(seed)
        got, g_got = value_and_grad(lambda v: build_loss(kind, reduction=reduction, ohem_ratio=ohem, **prm)(v, y, mask), x)
        want, g_want = value_and_grad(
            lambda v: ref(v, y, mask, kind, dict(prm, alpha=prm.get("alpha", 0.0)), reduction, ohem), x)
        torch.testing.assert_close(got, want, **TOL)
        assert torch.isfinite(g_want).all()
        torch.testing.assert_close(g_got, g_want, **TOL)
        assert (g_got[(y == -100) | ~mask] == 0).all()


GRAD = [("dl", {}), ("tl", dict(alpha=0.3, beta=0.7)), ("dsc", {}), ("dsc", dict(alpha=1.0, square_denominator=False)),
        ("dsc", dict(alpha=0.2, ohem_ratio=0.5)), ("fl", dict(gamma=2.0)), ("fl", dict(gamma=0.3))]


@pytest.mark.parametrize("name,prm", GRAD, ids=[f"{n}-{i}" for i, (n, _) in enumerate(GRAD)])
def test_gradcheck_with_saturated_rows(name, prm):
    """Finite differences in float64 through rows where p rounds to 1 (the function is smooth there)."""
    x, t, mask = inputs(5, n=9, C=4)
    x[1] = 0.0  # (gradcheck perturbs every entry; the -100 row must not be NaN)
    x = x.clamp(max=40.0)  # keep the saturated rows, drop the 800 gaps (flat beyond the float range)
    x.requires_grad_(True)
    reductions = ["batch", "mean"] if name != "fl" else ["mean", "sum"]
    for reduction in reductions:
        loss = build_loss(name, reduction=reduction, **prm)
        assert torch.autograd.gradcheck(lambda z: loss(z, t, mask), (x,), eps=1e-6, atol=1e-8, rtol=1e-6)


@pytest.mark.parametrize("name,prm", GRAD + [("dl", dict(reduction="mean")), ("dsc", dict(reduction="mean"))])
def test_retain_graph_gives_the_same_gradient_twice(name, prm):
    """Repeated backward passes through one graph give one gradient (no state kept between them)."""
    x, t, mask = inputs(1)
    x = x.float().requires_grad_(True)
    loss = build_loss(name, **prm)(x, t, mask)
    (g1,) = torch.autograd.grad(loss, x, retain_graph=True)
    (g2,) = torch.autograd.grad(loss, x, retain_graph=True)
    (g3,) = torch.autograd.grad(loss, x)
    assert torch.equal(g1, g2) and torch.equal(g2, g3) and torch.isfinite(g1).all()
    x2 = x.detach().clone().requires_grad_(True)
    build_loss(name, **prm)(x2, t, mask).backward()
    assert torch.equal(x2.grad, g1)


DOUBLE = GRAD + [("ce", {}), ("wce", dict(class_weights=[0.5, 2.0, 1.0, 3.0])), ("dl", dict(reduction="mean")),
                 ("tl", dict(alpha=0.7, beta=None, reduction="mean", smooth=0.0)),
                 ("dsc", dict(alpha=1.0, square_denominator=False, reduction="mean"))]


@pytest.mark.parametrize("name,prm", DOUBLE, ids=[f"{n}-{i}" for i, (n, _) in enumerate(DOUBLE)])
@pytest.mark.parametrize("binary", [False, True], ids=["multiclass", "binary"])
def test_double_backward_is_exact(name, prm, binary):
    """Second derivatives (``create_graph=True``: a gradient penalty, Hessian-vector products) by autograd
    through the formulas, checked by finite differences of the gradient in float64 (``gradgradcheck``),
    with masked and -100 positions and a saturated row."""
    if binary:
        x, y, mask = binary_inputs(4)
        x, y, mask = x[3:17].clamp(-30, 30), y[3:17], mask[3:17]
        if "class_weights" in prm:
            prm = dict(prm, class_weights=prm["class_weights"][:2])
    else:
        x, y, mask = inputs(4, n=9, C=4)
        x[1] = 0.0
        x = x.clamp(max=30.0)
    loss = build_loss(name, **prm)
    x.requires_grad_(True)
    assert torch.autograd.gradgradcheck(lambda z: loss(z, y, mask), (x,), eps=1e-6, atol=1e-6, rtol=1e-5)


@pytest.mark.parametrize("name,prm", [("dl", dict(reduction="mean")), ("tl", {}), ("dsc", {}),
                                      ("dsc", dict(alpha=0.5, reduction="mean", square_denominator=False)),
                                      ("fl", dict(gamma=0.5))])
def test_float32_gradient_matches_float64_at_saturation(name, prm):
    x, t, mask = inputs(2, saturate=False)
    x[2, t[2]] += 20.0  # fp32 p == 1
    x[3, (t[3] + 1) % 5] += 30.0
    x[4, t[4]] += 150.0  # fp32: the other classes underflow
    loss = build_loss(name, **prm)
    x64 = x.clone().requires_grad_(True)
    x32 = x.float().requires_grad_(True)
    loss(x64, t, mask).backward()
    loss(x32, t, mask).backward()
    assert torch.isfinite(x32.grad).all()
    torch.testing.assert_close(x32.grad.double(), x64.grad, rtol=1e-4, atol=1e-7)
