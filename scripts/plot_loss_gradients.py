#!/usr/bin/env python
"""Draw the paper's Figure 1: derivatives of FL, DL, TL and DSC w.r.t. the probability of the ground-truth label.

    python scripts/plot_loss_gradients.py                     # → docs/figures/loss_gradients.png
    python scripts/plot_loss_gradients.py --out my.png

One positive example (y = 1) with p = P(ground truth), per-example losses (reduction "mean", one
position). The derivatives come from dicenlp.losses itself, by autograd in float64: the loss is evaluated
at the logit x = log(p / (1 - p)) and dL/dp = (dL/dx) / (p (1 - p)). Settings as in the paper's caption:
FL with γ = 1; DL with smoothing γ = 1 (Eq. 7, squared denominator); TL with β = 0.5 (α is irrelevant for a
positive, smoothing 1); DSC as printed in Eq. 12 (weight (1 - p)^1, smoothing 1). The official exponent
α = 0.01 is drawn dashed for comparison. The paper does not state its y-scaling (its ∇DSC spans ±1; here it
spans ±0.75, the exact value -3(1 - 2p)/(q + 2)² with q = p(1 - p)).
"""

from __future__ import annotations

import argparse
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import torch  # noqa: E402

from dicenlp.losses import build_loss  # noqa: E402

REPO = Path(__file__).resolve().parents[1]

CURVES = [
    ("FL (γ=1)", dict(kind="fl", gamma=1.0), "-"),
    ("DL (γ=1)", dict(kind="dl", smooth=1.0, square_denominator=True, reduction="mean"), "-"),
    ("TL (β=0.5)", dict(kind="tl", alpha=0.5, beta=0.5, smooth=1.0, reduction="mean"), "-"),
    ("DSC (Eq. 12, α=1)", dict(kind="dsc", alpha=1.0, smooth=1.0, square_denominator=False, reduction="mean"), "-"),
    ("DSC (official α=0.01)", dict(kind="dsc", alpha=0.01, smooth=1.0, square_denominator=False,
                                   reduction="mean"), "--"),
]


def derivative_wrt_p(loss_cfg: dict, p: torch.Tensor) -> torch.Tensor:
    """dL/dp for one positive example at each probability in ``p`` (float64)."""
    loss = build_loss(dict(loss_cfg))
    x = torch.log(p / (1 - p)).requires_grad_(True)
    # positions are independent under reduction "mean", so the gradient of the sum gives each dL_i/dx_i
    total = loss(x, torch.ones_like(p)) * p.numel()
    (g,) = torch.autograd.grad(total, x)
    return g / (p * (1 - p))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--out", type=Path, default=REPO / "docs" / "figures" / "loss_gradients.png")
    args = ap.parse_args()
    p = torch.linspace(0.005, 0.995, 397, dtype=torch.float64)
    fig, ax = plt.subplots(figsize=(6.4, 4.2), dpi=150)
    for label, cfg, style in CURVES:
        ax.plot(p.numpy(), derivative_wrt_p(cfg, p).numpy(), style, label=label, linewidth=1.6)
    ax.axhline(0.0, color="gray", linewidth=0.6)
    ax.axvline(0.5, color="gray", linewidth=0.6, linestyle=":")
    ax.set_xlim(0, 1)
    ax.set_ylim(-2.0, 1.0)
    ax.set_xlabel("Probability of the ground-truth label")
    ax.set_ylabel("dL / dp")
    ax.set_title("Derivatives of the losses for one positive example (cf. paper Fig. 1)", fontsize=9)
    ax.legend(fontsize=8, loc="lower right")
    fig.tight_layout()
    args.out.parent.mkdir(parents=True, exist_ok=True)
    tmp = args.out.with_suffix(".tmp.png")
    fig.savefig(tmp)
    tmp.replace(args.out)  # atomic
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
