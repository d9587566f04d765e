"""dicenlp.losses equal the paper's formulas (PAPER.md §2), checked in float64 to 1e-10.

The references below are written independently from the printed formulas, in plain Python floats
(``math``), one position at a time: they share no code with the library.
"""

import math
import random

import pytest
import torch

from dicenlp.losses import (
    CrossEntropyLoss,
    DiceLoss,
    FocalLoss,
    SelfAdjustingDiceLoss,
    TverskyLoss,
    WeightedCrossEntropyLoss,
    build_loss,
    ohem_keep,
)

TOL = dict(rtol=1e-10, atol=1e-10)


# ----------------------------------------------------------------------------- references (plain floats)
def sigmoid(x):
    return 1 / (1 + math.exp(-x))


def softmax(row):
    m = max(row)
    e = [math.exp(v - m) for v in row]
    s = sum(e)
    return [v / s for v in e]


def units(x, y, valid):
    """Per unit (binary: 1, multi-class: C), the list of (p, y) over the kept positions."""
    if x.dim() == y.dim():  # binary
        xs, ys, vs = x.reshape(-1).tolist(), y.reshape(-1).tolist(), valid.reshape(-1).tolist()
        return [[(sigmoid(a), float(b)) for a, b, v in zip(xs, ys, vs) if v]]
    C = x.shape[-1]
    rows, ys, vs = x.reshape(-1, C).tolist(), y.reshape(-1).tolist(), valid.reshape(-1).tolist()
    probs = [softmax(r) for r in rows]
    return [[(pr[c], 1.0 if t == c else 0.0) for pr, t, v in zip(probs, ys, vs) if v] for c in range(C)]


def dice_terms(kind, p, y, prm):
    """(numerator, denominator) of one position, before adding γ (Eqs. 6, 7, 10, 12)."""
    if kind == "tl":  # Eq. 10: p_i1 y_i1 / (p_i1 y_i1 + α p_i1 y_i0 + β p_i0 y_i1)
        return p * y, p * y + prm["alpha"] * p * (1 - y) + prm["beta"] * (1 - p) * y
    if kind == "dsc":  # Eq. 12 with the exponent α: p → (1 - p)^α p
        p = (1 - p) ** prm["alpha"] * p
    if prm["square_denominator"]:  # Eq. 7
        return 2 * p * y, p ** 2 + y ** 2
    return 2 * p * y, p + y  # Eq. 6


def ratio(num, den):
    return 1.0 if den == 0 else num / den  # γ = 0 and nothing to count: dice of two empty sets is 1


def ref_dice(kind, x, y, valid, prm, reduction):
    g = prm["smooth"]
    per_unit = []
    for pairs in units(x, y, valid):
        terms = [dice_terms(kind, p, t, prm) for p, t in pairs]
        if reduction == "batch":  # Eq. 8: one set-level ratio
            per_unit.append(1 - ratio(sum(n for n, _ in terms) + g, sum(d for _, d in terms) + g))
        else:  # Eqs. 7, 10, 12: mean of per-example losses
            per_unit.append(sum(1 - ratio(n + g, d + g) for n, d in terms) / len(terms) if terms else 0.0)
    return sum(per_unit) / len(per_unit)


def ref_ce_family(x, y, valid, weights=None, gamma=0.0, reduction="mean"):
    """-1/N Σ_i α_i Σ_j y_ij (1 - p_ij)^γ log p_ij (Eq. 1, Eq. 2, FL row of Table 2)."""
    total, n = 0.0, 0
    if x.dim() == y.dim():
        items = [([1 - sigmoid(a), sigmoid(a)], [1 - b, b]) for a, b in zip(x.reshape(-1).tolist(), y.reshape(-1).tolist())]
    else:
        C = x.shape[-1]
        items = [(softmax(r), [1.0 if t == c else 0.0 for c in range(C)])
                 for r, t in zip(x.reshape(-1, C).tolist(), y.reshape(-1).tolist())]
    for (p, yy), v in zip(items, valid.reshape(-1).tolist()):
        if not v:
            continue
        alpha = 1.0 if weights is None else sum(w * t for w, t in zip(weights, yy))
        total += -alpha * sum(t * (1 - pj) ** gamma * math.log(pj) for pj, t in zip(p, yy) if t)
        n += 1
    return total if reduction == "sum" else (total / n if n else 0.0)


# ----------------------------------------------------------------------------- data
def sample(multiclass, seed, n=11, C=4, with_ignore=True, scale=2.0):
    g = torch.Generator().manual_seed(seed)
    if multiclass:
        x = torch.randn(n, C, generator=g, dtype=torch.float64) * scale
        y = torch.randint(0, C, (n,), generator=g)
    else:
        x = torch.randn(n, generator=g, dtype=torch.float64) * scale
        y = torch.randint(0, 2, (n,), generator=g)
    mask = torch.ones(n, dtype=torch.bool)
    if with_ignore:
        y[1] = -100
        mask[4] = False
    return x, y, mask


def valid_of(y, mask):
    return (y != -100) & mask


DICE_CASES = [
    ("dl", dict(smooth=1.0, square_denominator=True)),
    ("dl", dict(smooth=1.0, square_denominator=False)),
    ("dl", dict(smooth=0.3, square_denominator=True)),
    ("dl", dict(smooth=0.0, square_denominator=True)),
    ("tl", dict(smooth=0.0, alpha=0.7, beta=0.3)),
    ("tl", dict(smooth=1.0, alpha=0.5, beta=0.5)),
    ("tl", dict(smooth=1.0, alpha=0.3, beta=0.7)),
    ("tl", dict(smooth=0.5, alpha=0.9, beta=0.1)),
    ("dsc", dict(smooth=1.0, alpha=1.0, square_denominator=False)),  # Eq. 12 as printed
    ("dsc", dict(smooth=1.0, alpha=0.01, square_denominator=True)),  # official
    ("dsc", dict(smooth=1.0, alpha=0.5, square_denominator=False)),
    ("dsc", dict(smooth=2.0, alpha=0.1, square_denominator=True)),
]


def full_params(kind, prm):
    out = dict(prm)
    out.setdefault("square_denominator", None)
    return out


@pytest.mark.parametrize("kind,prm", DICE_CASES)
@pytest.mark.parametrize("reduction", ["batch", "mean"])
@pytest.mark.parametrize("multiclass", [False, True])
def test_dice_family_equals_paper_formula(kind, prm, reduction, multiclass):
    for seed in range(3):
        x, y, mask = sample(multiclass, seed)
        got = build_loss(kind, reduction=reduction, **prm)(x, y, mask)
        want = ref_dice(kind, x, y, valid_of(y, mask), full_params(kind, prm), reduction)
        assert got.dtype == torch.float64
        torch.testing.assert_close(got, torch.tensor(want, dtype=torch.float64), **TOL)


@pytest.mark.parametrize("multiclass", [False, True])
@pytest.mark.parametrize("reduction", ["mean", "sum"])
def test_ce_wce_fl_equal_paper_formula(multiclass, reduction):
    C = 4 if multiclass else 2
    for seed in range(3):
        x, y, mask = sample(multiclass, seed, C=C)
        v = valid_of(y, mask)
        weights = [0.2, 1.3, 0.7, 2.0][:C]
        cases = [
            (CrossEntropyLoss(reduction=reduction), {}),
            (CrossEntropyLoss(class_weights=weights, reduction=reduction), dict(weights=weights)),
            (WeightedCrossEntropyLoss(class_weights=weights, reduction=reduction), dict(weights=weights)),
            (FocalLoss(gamma=2.0, reduction=reduction), dict(gamma=2.0)),
            (FocalLoss(gamma=0.5, class_weights=weights, reduction=reduction), dict(gamma=0.5, weights=weights)),
            (FocalLoss(gamma=1.0, reduction=reduction), dict(gamma=1.0)),
        ]
        for loss, kw in cases:
            want = ref_ce_family(x, y, v, reduction=reduction, **kw)
            torch.testing.assert_close(loss(x, y, mask), torch.tensor(want, dtype=torch.float64), **TOL)


def test_wce_from_label_counts_is_eq2_with_lg_weights():
    counts = [70, 20, 10]
    n = sum(counts)
    K = 1.5
    alpha = [math.log10((n - c) / c + K) for c in counts]
    x, y, mask = sample(True, 7, C=3)
    got = build_loss("wce", label_counts=counts, K=K)(x, y, mask)
    want = ref_ce_family(x, y, valid_of(y, mask), weights=alpha)
    torch.testing.assert_close(got, torch.tensor(want, dtype=torch.float64), **TOL)


def test_soft_binary_targets_follow_the_same_formulas():
    x = torch.tensor([0.3, -1.2, 2.0, 0.1], dtype=torch.float64)
    y = torch.tensor([0.2, 0.0, 0.9, 1.0], dtype=torch.float64)
    v = torch.ones(4, dtype=torch.bool)
    prm = dict(smooth=1.0, alpha=0.1, square_denominator=True)
    got = SelfAdjustingDiceLoss(**prm, reduction="batch")(x, y)
    torch.testing.assert_close(got, torch.tensor(ref_dice("dsc", x, y, v, prm, "batch"), dtype=torch.float64), **TOL)
    got = CrossEntropyLoss()(x, y)
    want = sum(-(t * math.log(sigmoid(a)) + (1 - t) * math.log(1 - sigmoid(a))) for a, t in zip(x.tolist(), y.tolist())) / 4
    torch.testing.assert_close(got, torch.tensor(want, dtype=torch.float64), **TOL)


# ----------------------------------------------------------------------------- hand-computed cases
def t64(*v):
    return torch.tensor(v, dtype=torch.float64)


def test_hand_computed_single_position_at_p_half():
    x, pos, neg = t64(0.0), t64(1.0), t64(0.0)  # p = 0.5
    # DL, squared (Eq. 7 = Eq. 8 for one position): 1 - (2·0.5 + 1)/(0.25 + 1 + 1) = 1/9
    torch.testing.assert_close(DiceLoss()(x, pos), t64(1 / 9)[0], **TOL)
    # DL, linear: 1 - (1 + 1)/(0.5 + 1 + 1) = 0.2
    torch.testing.assert_close(DiceLoss(square_denominator=False)(x, pos), t64(0.2)[0], **TOL)
    # DSC Eq. 12 (α = 1): q = 0.25, positive: 1 - (0.5 + 1)/(0.25 + 1 + 1) = 1/3 (PAPER.md §2.7: 0.333)
    paper = build_loss("dsc_paper")
    torch.testing.assert_close(paper(x, pos), t64(1 / 3)[0], **TOL)
    # ... negative: q/(q + γ) = 0.25 / 1.25 = 0.2
    torch.testing.assert_close(paper(x, neg), t64(0.2)[0], **TOL)
    # TL α = 0.3, β = 0.7: 1 - (0.5 + 1)/(0.5 + 0.7·0.5 + 1) = 1 - 1.5/1.85
    torch.testing.assert_close(TverskyLoss(alpha=0.3, beta=0.7)(x, pos), t64(1 - 1.5 / 1.85)[0], **TOL)
    # CE = log 2; FL(γ=1) = 0.5 log 2
    torch.testing.assert_close(CrossEntropyLoss()(x, pos), t64(math.log(2))[0], **TOL)
    torch.testing.assert_close(FocalLoss(gamma=1.0)(x, pos), t64(0.5 * math.log(2))[0], **TOL)


def test_hand_computed_dsc_paper_is_symmetric_about_half_for_positives():
    """PAPER.md §2.7: per example, 1 - DSC = (1 - q)/(q + 2), q = (1-p)p: same loss at p and 1 - p."""
    paper = build_loss("dsc_paper")
    for p in (0.1, 0.3, 0.45):
        lo = paper(t64(math.log(p / (1 - p))), t64(1.0))
        hi = paper(t64(math.log((1 - p) / p)), t64(1.0))
        q = p * (1 - p)
        torch.testing.assert_close(lo, t64((1 - q) / (q + 2))[0], **TOL)
        torch.testing.assert_close(lo, hi, **TOL)


def test_hand_computed_batches():
    x = t64(0.0, 0.0, 0.0, 0.0)  # p = 0.5 everywhere
    # no positives, set level: 1 - (0 + 1)/(4·0.25 + 0 + 1) = 0.5; mean: 1 - 1/(0.25 + 1) = 0.2
    torch.testing.assert_close(DiceLoss()(x, t64(0, 0, 0, 0)), t64(0.5)[0], **TOL)
    torch.testing.assert_close(DiceLoss(reduction="mean")(x, t64(0, 0, 0, 0)), t64(0.2)[0], **TOL)
    # one positive of four, set level: 1 - (2·0.5 + 1)/(4·0.25 + 1 + 1) = 1/3
    torch.testing.assert_close(DiceLoss()(x, t64(0, 1, 0, 0)), t64(1 / 3)[0], **TOL)
    # multi-class, 2 positions, C = 2, logits 0 → p = 0.5 for both classes; targets [0, 1]:
    # each class: 1 - (2·0.5 + 1)/(2·0.25 + 1 + 1) = 0.2; averaged over classes: 0.2
    torch.testing.assert_close(DiceLoss()(torch.zeros(2, 2, dtype=torch.float64), torch.tensor([0, 1])),
                               t64(0.2)[0], **TOL)


@pytest.mark.parametrize("name", ["dl", "tl", "dsc"])
def test_perfect_predictions_give_zero_dice_loss(name):
    y = torch.tensor([0, 1, 1, 0, 0, 1])
    x = (y.double() * 2 - 1) * 40.0  # p = σ(±40): 1 - p ≈ 4e-18
    for reduction in ("batch", "mean"):
        loss = build_loss(name, reduction=reduction, **({"alpha": 0.0} if name == "dsc" else {}))
        assert abs(loss(x, y).item()) < 1e-10


def test_multiclass_dice_is_mean_of_one_vs_rest_binary_dice_on_softmax_probabilities():
    x, y, mask = sample(True, 3, n=9, C=5)
    p = x.softmax(-1)
    loss = SelfAdjustingDiceLoss(alpha=0.2, reduction="batch")
    per_class = []
    for c in range(5):  # binary dice on logit(p_c) with y == c: the same formula per class
        logit_c = torch.log(p[:, c]) - torch.log1p(-p[:, c])
        per_class.append(loss(logit_c, torch.where(y == -100, -100, (y == c).long()), mask))
    torch.testing.assert_close(loss(x, y, mask), torch.stack(per_class).mean(), **TOL)


# ----------------------------------------------------------------------------- special cases
@pytest.mark.parametrize("multiclass", [False, True])
@pytest.mark.parametrize("reduction", ["batch", "mean"])
@pytest.mark.parametrize("square", [True, False])
def test_dsc_with_alpha_zero_is_dl(multiclass, reduction, square):
    x, y, mask = sample(multiclass, 11)
    a = SelfAdjustingDiceLoss(alpha=0.0, square_denominator=square, reduction=reduction)(x, y, mask)
    b = DiceLoss(square_denominator=square, reduction=reduction)(x, y, mask)
    torch.testing.assert_close(a, b, **TOL)


@pytest.mark.parametrize("multiclass", [False, True])
@pytest.mark.parametrize("reduction", ["batch", "mean"])
def test_tl_half_half_is_linear_dl(multiclass, reduction):
    """(p y + γ)/(p y + ½p(1-y) + ½(1-p)y + γ) = (2 p y + 2γ)/(p + y + 2γ): TL's smoothing γ is DL's 2γ."""
    x, y, mask = sample(multiclass, 12)
    for g in (0.0, 0.5, 1.0):
        a = TverskyLoss(alpha=0.5, beta=0.5, smooth=g, reduction=reduction)(x, y, mask)
        b = DiceLoss(square_denominator=False, smooth=2 * g, reduction=reduction)(x, y, mask)
        torch.testing.assert_close(a, b, **TOL)


@pytest.mark.parametrize("multiclass", [False, True])
def test_fl_with_gamma_zero_is_ce(multiclass):
    x, y, mask = sample(multiclass, 13)
    C = 4 if multiclass else 2
    w = [0.5, 2.0, 1.0, 3.0][:C]
    torch.testing.assert_close(FocalLoss(gamma=0.0)(x, y, mask), CrossEntropyLoss()(x, y, mask), **TOL)
    torch.testing.assert_close(FocalLoss(gamma=0.0, class_weights=w)(x, y, mask),
                               CrossEntropyLoss(class_weights=w)(x, y, mask), **TOL)


def test_ce_matches_torch_builtins():
    x, y, mask = sample(True, 14)
    v = valid_of(y, mask)
    torch.testing.assert_close(CrossEntropyLoss()(x, y, mask), torch.nn.functional.cross_entropy(x[v], y[v]), **TOL)
    xb, yb, mb = sample(False, 14)
    vb = valid_of(yb, mb)
    torch.testing.assert_close(CrossEntropyLoss()(xb, yb, mb),
                               torch.nn.functional.binary_cross_entropy_with_logits(xb[vb], yb[vb].double()), **TOL)
    # "batch" is accepted by the CE family as the same set-level mean
    torch.testing.assert_close(CrossEntropyLoss(reduction="batch")(x, y, mask), CrossEntropyLoss()(x, y, mask))


def test_extra_leading_dims_are_flattened():
    x, y, mask = sample(True, 15, n=12)
    loss = DiceLoss(reduction="mean")
    torch.testing.assert_close(loss(x.reshape(3, 4, 4), y.reshape(3, 4), mask.reshape(3, 4)), loss(x, y, mask), **TOL)


# ----------------------------------------------------------------------------- OHEM
def ref_ohem_keep(p, y, valid, ratio):
    """Per unit: all positives + the min(#neg, floor(ratio·#pos)) negatives with the highest p."""
    N, U = p.shape
    keep = torch.zeros(N, U, dtype=torch.bool)
    for u in range(U):
        pos = [i for i in range(N) if valid[i] and y[i, u] > 0.5]
        neg = [i for i in range(N) if valid[i] and y[i, u] <= 0.5]
        k = min(len(neg), math.floor(ratio * len(pos) + 1e-9))
        for i in pos + sorted(neg, key=lambda i: -p[i, u].item())[:k]:
            keep[i, u] = True
    return keep


def test_ohem_keep_matches_reference():
    rng = random.Random(0)
    for trial in range(30):
        N, U = rng.randint(1, 40), rng.randint(1, 5)
        p = torch.rand(N, U, dtype=torch.float64, generator=torch.Generator().manual_seed(trial))
        y = (torch.rand(N, U, generator=torch.Generator().manual_seed(100 + trial)) < rng.random()).double()
        valid = torch.rand(N, generator=torch.Generator().manual_seed(200 + trial)) < 0.8
        ratio = rng.choice([0.1, 0.3, 1.0, 2.5, 100.0])
        assert torch.equal(ohem_keep(p, y, ratio, valid), ref_ohem_keep(p, y, valid, ratio))


def test_ohem_counts_hand_computed():
    p = t64(0.9, 0.8, 0.1, 0.7, 0.2, 0.6)[:, None]
    y = t64(0, 1, 0, 0, 0, 1)[:, None]
    valid = torch.ones(6, dtype=torch.bool)
    # 2 positives, ratio 1 → the 2 highest-p negatives (0.9, 0.7); ratio 0.5 → only 0.9; ratio 0.4 → none
    assert ohem_keep(p, y, 1.0, valid)[:, 0].tolist() == [True, True, False, True, False, True]
    assert ohem_keep(p, y, 0.5, valid)[:, 0].tolist() == [True, True, False, False, False, True]
    assert ohem_keep(p, y, 0.4, valid)[:, 0].tolist() == [False, True, False, False, False, True]
    # floor(0.29 · 100) is 29 (not 28, as naive floating point gives)
    big_p = torch.linspace(0, 1, 300, dtype=torch.float64)[:, None]
    big_y = torch.zeros(300, 1, dtype=torch.float64)
    big_y[:100] = 1
    assert int(ohem_keep(big_p, big_y, 0.29).sum()) == 129
    # no positives → no negatives kept
    assert not ohem_keep(p, torch.zeros_like(y), 0.3, valid).any()


@pytest.mark.parametrize("kind,prm", [("dl", dict(square_denominator=True)), ("tl", dict(alpha=0.3, beta=0.7)),
                                      ("dsc", dict(alpha=0.01, square_denominator=True))])
@pytest.mark.parametrize("reduction", ["batch", "mean"])
@pytest.mark.parametrize("multiclass", [False, True])
def test_ohem_loss_is_the_formula_on_the_kept_positions(kind, prm, reduction, multiclass):
    x, y, mask = sample(multiclass, 21, n=30, C=3)
    ratio = 0.5
    v = valid_of(y, mask)
    got = build_loss(kind, reduction=reduction, ohem_ratio=ratio, smooth=1.0, **prm)(x, y, mask)
    # reference: per unit, select positions with the reference OHEM, then the reference dice per unit
    if multiclass:
        p = x.softmax(-1)
        yy = torch.nn.functional.one_hot(torch.where(v, y, 0), 3).double()
    else:
        p = torch.sigmoid(x)[:, None]
        yy = torch.where(v, y, 0).double()[:, None]
    keep = ref_ohem_keep(p, yy, v, ratio)
    per_unit = []
    full = full_params(kind, dict(prm, smooth=1.0))
    for u in range(keep.shape[1]):
        # binary dice of unit u on its kept positions, reference formula (logit of p_u, target y_u)
        xu = torch.log(p[:, u]) - torch.log1p(-p[:, u])
        per_unit.append(ref_dice(kind, xu, yy[:, u], keep[:, u], full, reduction))
    torch.testing.assert_close(got, t64(sum(per_unit) / len(per_unit))[0], **TOL)


def test_ohem_with_huge_ratio_keeps_everything():
    x, y, mask = sample(False, 22, n=30)
    y[y == -100] = 0
    y[:20] = 1  # more positives than negatives
    a = build_loss("dsc", ohem_ratio=1e6)(x, y, mask)
    torch.testing.assert_close(a, build_loss("dsc")(x, y, mask), **TOL)


# ----------------------------------------------------------------------------- gradcheck
GRAD_LOSSES = [
    ("ce", {}), ("wce", None), ("fl", dict(gamma=2.0)), ("fl", dict(gamma=0.5, class_weights="auto")),
    ("dl", {}), ("dl", dict(square_denominator=False)), ("tl", dict(alpha=0.3, beta=0.7)),
    ("dsc", {}), ("dsc", dict(alpha=1.0, square_denominator=False)), ("dsc", dict(ohem_ratio=0.5)),
]


@pytest.mark.parametrize("name,prm", GRAD_LOSSES)
@pytest.mark.parametrize("multiclass", [False, True])
def test_gradcheck(name, prm, multiclass):
    C = 3 if multiclass else 2
    prm = dict(prm) if prm is not None else dict(label_counts=[10, 3, 1][:C])
    if prm.get("class_weights") == "auto":
        prm["class_weights"] = [0.5, 2.0, 1.0][:C]
    reductions = ["batch", "mean"] if name in ("dl", "tl", "dsc") else ["mean", "sum"]
    for reduction in reductions:
        loss = build_loss(name, reduction=reduction, **prm)
        x, y, mask = sample(multiclass, 31, n=7, C=C)
        x.requires_grad_(True)
        assert torch.autograd.gradcheck(lambda t: loss(t, y, mask), (x,), eps=1e-6, atol=1e-7, rtol=1e-5)


@pytest.mark.parametrize("reduction", ["batch", "mean"])
@pytest.mark.parametrize("name", ["dl", "tl", "dsc"])
def test_zero_smoothing_with_nothing_to_count_is_zero_loss_not_nan(name, reduction):
    loss = build_loss(name, smooth=0.0, reduction=reduction)
    x = torch.full((3,), -1e4, dtype=torch.float64, requires_grad=True)  # p = 0 exactly: 0/0 territory
    out = loss(x, torch.zeros(3, dtype=torch.float64))
    out.backward()
    assert out.item() == 0.0 and torch.isfinite(x.grad).all()
    xm = torch.zeros(2, 3, dtype=torch.float64, requires_grad=True)
    out = loss(xm, torch.full((2,), -100))  # all ignored
    out.backward()
    assert out.item() == 0.0 and torch.equal(xm.grad, torch.zeros_like(xm))


def test_figure1_derivatives_match_closed_forms():
    """dL/dp of one positive example (PAPER.md Figure 1 and the §2.7 analysis), by autograd vs by hand."""
    p = torch.linspace(0.01, 0.99, 33, dtype=torch.float64)
    x = torch.log(p / (1 - p)).requires_grad_(True)
    q = p * (1 - p)
    closed = {
        "fl": (dict(gamma=1.0), torch.log(p) - (1 - p) / p),  # d/dp [-(1-p) log p]
        "dl": (dict(reduction="mean"), -2 * (1 - p) * (2 + p) / (p ** 2 + 2) ** 2),  # Eq. 7, γ = 1
        "tl": (dict(reduction="mean"), -1 / (0.5 * p + 1.5) ** 2),  # Eq. 10, β = 0.5, γ = 1
        "dsc": (dict(alpha=1.0, square_denominator=False, reduction="mean"), -3 * (1 - 2 * p) / (q + 2) ** 2),
    }
    for name, (prm, want) in closed.items():
        (g,) = torch.autograd.grad(build_loss(name, **prm)(x, torch.ones_like(p)) * p.numel(), x)
        torch.testing.assert_close(g / (p * (1 - p)), want, **TOL)
