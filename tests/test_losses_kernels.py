"""The fused CPU kernels (``_dice_kernels.c``: the multi-class DSC and the binary dice family) compute what the
PyTorch implementation computes: same loss and gradient (fp32 rounding apart) for every option and awkward
input, both within fp32 rounding of the float64 result; deterministic for any thread count; and a clean
fallback where they cannot be built."""

import platform
import warnings

import pytest
import torch

from dicenlp.losses import SelfAdjustingDiceLoss, _cpu_kernels, build_loss
from dicenlp.losses._ohem import ohem_counts
from dicenlp.losses._softmax_dice import _dsc_dense_torch

needs_kernels = pytest.mark.skipif(_cpu_kernels.kernels() is None,
                                   reason="no C compiler: the fused CPU kernels cannot be built here")


def loss_and_grad(loss, x, t, fused: bool):
    """(loss, dloss/dx) with the kernel on or off (off: the PyTorch implementation)."""
    x = x.detach().clone().requires_grad_(True)
    usable = _cpu_kernels.usable
    _cpu_kernels.usable = usable if fused else (lambda _x: False)
    try:
        out = loss(x, t)
        out.backward()
    finally:
        _cpu_kernels.usable = usable
    return out.detach(), x.grad


OPTIONS = [dict(), dict(reduction="mean"), dict(ohem_ratio=0.3), dict(alpha=1.0, square_denominator=False),
           dict(alpha=1.0, square_denominator=False, reduction="mean"), dict(alpha=0.5, smooth=0.0),
           dict(alpha=2.0, smooth=0.1, reduction="mean", ohem_ratio=1.0)]


def awkward_logits(N, C, g):
    """Random logits at several scales plus rows the kernel must treat specially."""
    x = torch.randn(N, C, generator=g) * torch.tensor([0.1, 1.0, 10.0, 100.0])[torch.arange(N) % 4, None]
    x[0] = 0.0  # an all-tie row (p = 1/C everywhere)
    x[1, :2] = 5.0  # a tie at the maximum
    x[2, 0] = 200.0  # every other probability underflows in fp32 (m below √tiny)
    x[3, -1] = float("-inf")  # an impossible class
    x[4] = torch.linspace(-1e4, 1e4, C)  # saturated
    return x


@needs_kernels
@pytest.mark.parametrize("options", OPTIONS, ids=lambda o: ",".join(f"{k}={v}" for k, v in o.items()) or "default")
@pytest.mark.parametrize("N,C", [(5, 2), (17, 3), (64, 16), (300, 50), (33, 37)])
def test_kernel_equals_pytorch_and_float64(options, N, C):
    g = torch.Generator().manual_seed(N * C)
    x, t = awkward_logits(N, C, g), torch.randint(0, C, (N,), generator=g)
    if options.get("ohem_ratio"):  # no exact ties in p: OHEM breaks ties differently (kernel: first rows)
        x = torch.randn(N, C, generator=g) * 3
    loss = SelfAdjustingDiceLoss(**options)
    l_k, g_k = loss_and_grad(loss, x, t, fused=True)
    l_t, g_t = loss_and_grad(loss, x, t, fused=False)
    l_64, g_64 = loss_and_grad(loss, x.double(), t, fused=False)
    assert torch.isfinite(g_k).all() and (options.get("ohem_ratio") or g_k[3, -1] == 0)  # (-inf: zero gradient)
    atol = max(5e-5 * g_64.abs().max().item(), 1e-30)
    torch.testing.assert_close(l_k, l_t, rtol=2e-5, atol=1e-6)
    torch.testing.assert_close(g_k, g_t, rtol=0, atol=atol)
    if not options.get("ohem_ratio"):  # (OHEM ranks near-tied probabilities differently in fp32 and fp64)
        assert l_k.item() == pytest.approx(l_64.item(), rel=2e-5, abs=1e-6)
        torch.testing.assert_close(g_k.double(), g_64, rtol=0, atol=atol)


@needs_kernels
@pytest.mark.parametrize("march,lanes", [*_cpu_kernels.TARGETS.values(), _cpu_kernels.BASELINE],
                         ids=lambda v: (" ".join(v) or "baseline") if isinstance(v, list) else f"{v}-lanes")
def test_every_vector_width_builds_and_agrees(march, lanes, monkeypatch, tmp_path):
    """The AVX-512 (16 rows per vector), AVX2 (8) and baseline (4) builds all compute the PyTorch result, with
    N and C not multiples of the width (partial groups, columns outside the transposed tiles), multi-class
    and binary."""
    runnable = {16: ("AVX512",), 8: ("AVX512", "AVX2"), 4: None}[lanes]
    if runnable and (platform.machine() not in ("x86_64", "AMD64")
                     or torch.backends.cpu.get_cpu_capability() not in runnable):
        pytest.skip(f"this CPU cannot run the {march} build")
    monkeypatch.setattr(_cpu_kernels, "vector_target", lambda: (march, lanes))
    monkeypatch.setenv("DICENLP_CACHE", str(tmp_path))
    _cpu_kernels.kernels.cache_clear()
    try:
        assert _cpu_kernels.kernels().kernel_lanes() == lanes
        g = torch.Generator().manual_seed(lanes)
        x, t = torch.randn(77, 37, generator=g) * 3, torch.randint(0, 37, (77,), generator=g)
        x[:5] = awkward_logits(5, 37, g)[:5]
        xb, yb = x[:, 0] * 2, (torch.rand(77, generator=g) < 0.3).float()  # binary
        for options in (dict(), dict(reduction="mean", ohem_ratio=0.5)):
            loss = SelfAdjustingDiceLoss(**options)
            for logits, target in ((x, t), (xb, yb)):
                l_k, g_k = loss_and_grad(loss, logits, target, fused=True)
                l_t, g_t = loss_and_grad(loss, logits, target, fused=False)
                torch.testing.assert_close(l_k, l_t, rtol=2e-5, atol=1e-6)
                torch.testing.assert_close(g_k, g_t, rtol=0, atol=5e-5 * g_t.abs().max().item())
    finally:
        monkeypatch.undo()
        _cpu_kernels.kernels.cache_clear()


BINARY = [("dsc", {}), ("dsc", dict(reduction="mean")), ("dsc", dict(ohem_ratio=0.3)),
          ("dsc", dict(alpha=1.0, square_denominator=False, reduction="mean", ohem_ratio=1.0)),
          ("dsc", dict(smooth=0.0)), ("dl", {}), ("dl", dict(reduction="mean", square_denominator=False)),
          ("tl", dict(alpha=0.3, beta=0.7)), ("tl", dict(alpha=0.7, beta=0.3, reduction="mean", ohem_ratio=0.5))]


@needs_kernels
@pytest.mark.parametrize("name,options", BINARY, ids=[f"{n}-{i}" for i, (n, _) in enumerate(BINARY)])
@pytest.mark.parametrize("N", [1, 15, 16, 17, 300, 40000])
def test_binary_kernel_equals_pytorch_and_float64(name, options, N):
    """N around the vector width and beyond one block of 4096; soft labels; logits up to ±1e4."""
    g = torch.Generator().manual_seed(N)
    x = torch.randn(N, generator=g) * 4
    y = (torch.rand(N, generator=g) < 0.2).float()
    if N > 20:
        x[:4] = torch.tensor([40.0, -40.0, 1e4, -1e4])
        y[4:10] = torch.rand(6, generator=g)  # soft labels
    loss = build_loss(name, **options)
    l_k, g_k = loss_and_grad(loss, x, y, fused=True)
    l_t, g_t = loss_and_grad(loss, x, y, fused=False)
    l_64, g_64 = loss_and_grad(loss, x.double(), y.double(), fused=False)
    atol = max(5e-5 * g_64.abs().max().item(), 1e-30)
    assert torch.isfinite(g_k).all()
    torch.testing.assert_close(l_k, l_t, rtol=2e-5, atol=1e-6)
    torch.testing.assert_close(g_k, g_t, rtol=0, atol=atol)
    assert l_k.item() == pytest.approx(l_64.item(), rel=2e-5, abs=1e-6)
    torch.testing.assert_close(g_k.double(), g_64, rtol=0, atol=atol)


@needs_kernels
def test_binary_kernel_ohem_keeps_exactly_k_with_ties_first_ones():
    """All negatives tie (same logit): exactly k = floor(0.5 · #positives) are kept, the first ones."""
    y = torch.tensor([1.0, 0, 0, 1, 0, 0, 0, 1, 0, 1])  # 4 positives → k = 2 of 6 tied negatives
    x = torch.where(y > 0, 2.0, -1.0)
    loss = build_loss("dl", ohem_ratio=0.5)
    _, grad = loss_and_grad(loss, x, y, fused=True)
    negatives_with_gradient = ((grad != 0) & (y == 0)).nonzero().squeeze(1).tolist()
    assert negatives_with_gradient == [1, 2]


@needs_kernels
def test_multiclass_kernel_ohem_keeps_exactly_k_with_ties_first_rows():
    """Identical rows: every negative of every class ties. The kernel keeps, per class, the first k_c rows
    that are not of that class (its column sums then equal PyTorch's for exactly that mask)."""
    t = torch.tensor([0, 1, 0, 2, 1, 0, 2, 0, 1, 0])
    x = torch.zeros(10, 3)
    n_pos, k = ohem_counts(t, 3, 0.5)
    assert k.tolist() == [2, 1, 1]
    keep = torch.nn.functional.one_hot(t, 3).float()
    for c in range(3):
        keep[(t != c).nonzero().squeeze(1)[: k[c]], c] = 1.0
    *_, colsum, k_sel = _cpu_kernels.dsc_forward(x, t, k, 0.01, 2, True, 1.0)
    want = _dsc_dense_torch(torch.softmax(x, -1), t, keep, 0.01, 2, True, 1.0)[-1]
    torch.testing.assert_close(colsum, want)
    T = torch.zeros(10, dtype=torch.long)  # (no p above 1/2: T is column 0)
    torch.testing.assert_close(k_sel, keep.gather(1, torch.stack([t, T], 1)))


@needs_kernels
def test_kernel_is_used_for_fp32_cpu_and_not_otherwise():
    x = torch.randn(4, 3)
    assert _cpu_kernels.usable(x)
    assert not _cpu_kernels.usable(x.double()) and not _cpu_kernels.usable(x.half())


@needs_kernels
def test_nan_rows_give_nan_as_in_pytorch():
    x, t = torch.randn(20, 5), torch.randint(0, 5, (20,))
    for bad in (float("nan"), float("inf")):
        x_bad = x.clone()
        x_bad[7, 2] = bad
        l_k, _ = loss_and_grad(SelfAdjustingDiceLoss(), x_bad, t, fused=True)
        l_t, _ = loss_and_grad(SelfAdjustingDiceLoss(), x_bad, t, fused=False)
        assert torch.isnan(l_k) and torch.isnan(l_t)


@needs_kernels
@pytest.mark.parametrize("binary", [False, True])
def test_kernel_result_does_not_depend_on_the_thread_count(binary):
    g = torch.Generator().manual_seed(3)
    if binary:  # (threads from 8 blocks of 4096 positions on)
        x, t = torch.randn(40000, generator=g) * 4, (torch.rand(40000, generator=g) < 0.2).float()
    else:
        x, t = torch.randn(1000, 12, generator=g) * 4, torch.randint(0, 12, (1000,), generator=g)
    before = torch.get_num_threads()
    try:
        torch.set_num_threads(1)
        one = loss_and_grad(SelfAdjustingDiceLoss(ohem_ratio=0.3), x, t, fused=True)
        torch.set_num_threads(2)
        two = loss_and_grad(SelfAdjustingDiceLoss(ohem_ratio=0.3), x, t, fused=True)
    finally:
        torch.set_num_threads(before)
    assert torch.equal(one[0], two[0]) and torch.equal(one[1], two[1])


@needs_kernels
def test_backward_twice_with_retain_graph():
    x = torch.randn(40, 6, requires_grad=True)
    out = SelfAdjustingDiceLoss()(x, torch.randint(0, 6, (40,)))
    (g1,) = torch.autograd.grad(out, x, retain_graph=True)
    (g2,) = torch.autograd.grad(out, x)
    assert torch.equal(g1, g2)


def test_switched_off_by_environment(monkeypatch):
    monkeypatch.setenv("DICENLP_CPU_KERNELS", "0")
    _cpu_kernels.kernels.cache_clear()
    try:
        assert _cpu_kernels.kernels() is None and not _cpu_kernels.usable(torch.zeros(2, 2))
        x = torch.randn(8, 3, requires_grad=True)
        SelfAdjustingDiceLoss()(x, torch.randint(0, 3, (8,))).backward()
        assert torch.isfinite(x.grad).all()
    finally:
        monkeypatch.delenv("DICENLP_CPU_KERNELS")
        _cpu_kernels.kernels.cache_clear()


def test_failed_build_warns_once_and_falls_back(monkeypatch, tmp_path):
    monkeypatch.setenv("DICENLP_CACHE", str(tmp_path))
    monkeypatch.setenv("CC", "false")  # a "compiler" that always fails
    _cpu_kernels.kernels.cache_clear()
    try:
        with pytest.warns(RuntimeWarning, match="could not build the fused CPU kernels"):
            assert _cpu_kernels.kernels() is None
        with warnings.catch_warnings():
            warnings.simplefilter("error")
            assert _cpu_kernels.kernels() is None  # cached: no second warning
        assert not any(tmp_path.rglob("*.so"))  # nothing half-written left behind
    finally:
        monkeypatch.undo()
        _cpu_kernels.kernels.cache_clear()
