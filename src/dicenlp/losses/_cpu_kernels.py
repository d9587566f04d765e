"""The fused CPU kernels of ``_dice_kernels.c``: compiled on first use, loaded with ctypes, optional.

On x86-64 CPUs with AVX2 or AVX-512, the C file is compiled once per source version and vector width
(``cc -O3 -fopenmp -march=...``, about a second) into ``$DICENLP_CACHE/kernels`` (default
``~/.cache/dicenlp/kernels``), written to a temporary name and renamed, so concurrent processes never load a
half-written library. Where there is no C compiler or no such CPU, or ``DICENLP_CPU_KERNELS=0``,
:func:`kernels` returns None (with one warning if compiling failed) and the losses run their PyTorch
implementation, which computes the same function. The kernels run on float32 CPU tensors only; float64 (the
exactness tests) and GPUs always take the PyTorch path."""

from __future__ import annotations

import ctypes
import functools
import hashlib
import os
import platform
import shutil
import subprocess
import tempfile
import warnings
from pathlib import Path

import torch

from dicenlp.data.cache import cache_root

SOURCE = Path(__file__).with_name("_dice_kernels.c")

# Per torch's CPU capability: the -march flags and the rows per vector (x86-64 levels: v4 = AVX-512, 16 floats;
# v3 = AVX2 + FMA, 8 floats). Not -march=native: a cache directory shared by the nodes of a cluster must not
# hand an AVX-512 build to an AVX2 node. Other CPUs (older x86, ARM) keep the PyTorch code: the kernel built
# for 4-float vectors (BASELINE, tested) ran 1.5x slower than PyTorch here (docs/losses.md, "Speed").
TARGETS = {"AVX512": (["-march=x86-64-v4"], 16), "AVX2": (["-march=x86-64-v3"], 8)}
BASELINE = ([], 4)

_P, _I64, _F, _I = ctypes.c_void_p, ctypes.c_int64, ctypes.c_float, ctypes.c_int
_SIGNATURES = {
    "dsc_forward": [_P, _P, _P, _I64, _I64, _F, _I, _I, _F, _P, _P, _P, _P, _P, _P, _P, _I],
    "dsc_backward": [_P, _P, _P, _P, _P, _P, _I64, _I64, _P, _I],
    "kernel_lanes": [],
    "dice_binary": [_P, _P, _I64, ctypes.POINTER(_F), _I, _I, _P, _P, _P, _I],
}
GROUPS_PER_BLOCK = 16  # as in _dice_kernels.c


def vector_target() -> tuple[list[str], int] | None:
    """(-march flags, rows per vector) for this CPU, or None where the kernel would not be faster."""
    if platform.machine() not in ("x86_64", "AMD64"):
        return None
    return TARGETS.get(torch.backends.cpu.get_cpu_capability())


def _compile(compiler: str, flags: list[str], path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(suffix=".so", dir=path.parent)
    os.close(fd)
    try:
        subprocess.run([compiler, *flags, "-shared", "-fPIC", "-o", tmp, str(SOURCE)], check=True,
                       capture_output=True, text=True)
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.remove(tmp)


@functools.cache
def kernels() -> ctypes.CDLL | None:
    """The compiled kernels, or None where they are switched off or cannot be built (module docstring)."""
    if os.environ.get("DICENLP_CPU_KERNELS", "1") == "0":
        return None
    compiler = os.environ.get("CC") or shutil.which("gcc") or shutil.which("cc")  # (GCC: see _dice_kernels.c)
    target = vector_target()
    if compiler is None or target is None:
        return None
    march, lanes = target
    flags = ["-O3", "-fopenmp", "-Wno-psabi", *march, f"-DLANES={lanes}"]
    key = hashlib.sha256("\0".join([SOURCE.read_text(), compiler, *flags, platform.machine()]).encode()).hexdigest()
    path = cache_root() / "kernels" / f"dice_{key[:16]}.so"
    try:
        if not path.exists():
            _compile(compiler, flags, path)
        lib = ctypes.CDLL(str(path))
    except (OSError, subprocess.CalledProcessError) as err:
        detail = getattr(err, "stderr", "") or err
        warnings.warn(f"dicenlp: could not build the fused CPU kernels ({detail}); using the PyTorch "
                      "implementation (same results, slower on CPU). Set DICENLP_CPU_KERNELS=0 to skip trying.",
                      RuntimeWarning, stacklevel=2)
        return None
    for name, argtypes in _SIGNATURES.items():
        getattr(lib, name).argtypes = argtypes
        getattr(lib, name).restype = ctypes.c_int if name == "kernel_lanes" else None
    return lib


def usable(x: torch.Tensor) -> bool:
    """Whether the logits ``x`` can take the kernels: a float32 CPU tensor, and the kernels build here."""
    return x.device.type == "cpu" and x.dtype == torch.float32 and kernels() is not None


def dsc_forward(x: torch.Tensor, t: torch.Tensor, ohem_k: torch.Tensor | None, alpha: float, power: int,
                mean: bool, smooth: float):
    """DSC's dense part and per-row values (``dsc_forward`` in ``_dice_kernels.c``; "mean" needs smooth > 0).
    ``ohem_k`` [C]: negatives OHEM keeps per class (``_ohem.ohem_counts``), or None.

    Returns (small, psi, sel [N, 2] = (t, T), values [N, 8] (``_softmax_dice.ROW_VALUES``), colsum [C] =
    Σ_i κ Φ (or l0), k_sel [N, 2] = κ at t and T or None); small and psi are in the kernels' interleaved
    layout, for :func:`dsc_backward` only."""
    x, t = x.contiguous(), t.contiguous()
    N, C = x.shape
    lanes = kernels().kernel_lanes()
    groups = -(-N // lanes)
    small, psi = x.new_empty(groups * C * lanes), x.new_empty(groups * C * lanes)
    partial = x.new_empty(-(-groups // GROUPS_PER_BLOCK), C, lanes)
    sel, values = t.new_empty(N, 2), x.new_empty(N, 8)
    keep = k_sel = None
    if ohem_k is not None:
        ohem_k, keep, k_sel = ohem_k.contiguous(), x.new_empty(groups * C * lanes), x.new_empty(N, 2)
    pointer = (lambda v: None if v is None else v.data_ptr())
    kernels().dsc_forward(x.data_ptr(), t.data_ptr(), pointer(ohem_k), N, C, alpha, power, int(mean), smooth,
                          small.data_ptr(), psi.data_ptr(), pointer(keep), partial.data_ptr(), sel.data_ptr(),
                          values.data_ptr(), pointer(k_sel), torch.get_num_threads())
    return small, psi, sel, values, partial.sum((0, 2)), k_sel


def dsc_backward(small, psi, coef, sel, values, G_sel) -> torch.Tensor:
    """The DSC backward (``dsc_backward`` in ``_dice_kernels.c``): the gradient [N, C] w.r.t. the logits."""
    N, C = sel.shape[0], coef.shape[0]
    grad = small.new_empty(N, C)
    coef, G_sel = coef.contiguous(), G_sel.contiguous()
    kernels().dsc_backward(small.data_ptr(), psi.data_ptr(), coef.data_ptr(), sel.data_ptr(), values.data_ptr(),
                           G_sel.data_ptr(), N, C, grad.data_ptr(), torch.get_num_threads())
    return grad


def dice_binary(x: torch.Tensor, y: torch.Tensor, params: tuple[float, ...], power: int, mean: bool,
                need_grad: bool):
    """The binary dice family's loss and gradient (``dice_binary`` in ``_dice_kernels.c``). ``params`` =
    (alpha, a1, d1, d2, d3, d4, smooth, ohem_ratio) of ``_binary_dice.BinarySpec``. Returns (loss, dL/dx or None)."""
    x, y = x.contiguous(), y.contiguous()
    N = x.shape[0]
    work, loss = x.new_empty(5 * N), x.new_empty(())
    grad = x.new_empty(N) if need_grad else None
    kernels().dice_binary(x.data_ptr(), y.data_ptr(), N, (ctypes.c_float * 8)(*params), power, int(mean),
                          work.data_ptr(), loss.data_ptr(), None if grad is None else grad.data_ptr(),
                          torch.get_num_threads())
    return loss, grad
