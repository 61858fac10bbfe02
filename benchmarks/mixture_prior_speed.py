"""log p(z) of a mixture prior: ``vaekit.priors.DiagonalGaussianMixture`` against torch's
``MixtureSameFamily`` (time of log_prob + backward, and float32 error against a float64 reference), and the
cost of a strided view in torch's softplus (why the table likelihood copies its mixture parameters).

    python benchmarks/mixture_prior_speed.py       # -> benchmarks/results/mixture_prior_speed.md

One torch thread; the median of ``--repeats`` timed calls after two warm-up calls. A VampPrior's shape:
K = 500 components, D = 50 dimensions, a batch of 100.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

import torch
import torch.nn.functional as F
from torch.distributions import Categorical, Independent, MixtureSameFamily, Normal

sys.path.insert(0, str(Path(__file__).parent))
from common import RESULTS, header, write

from vaekit.priors import DiagonalGaussianMixture


def timed(fn, repeats: int) -> float:
    """Median seconds of ``fn()`` over ``repeats`` calls, after two warm-up calls."""
    fn(), fn()
    times = []
    for _ in range(repeats):
        t = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t)
    return statistics.median(times)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--repeats", type=int, default=50)
    p.add_argument("--out", default=str(RESULTS / "mixture_prior_speed.md"))
    args = p.parse_args()
    torch.set_num_threads(1)
    t0 = time.perf_counter()
    g = torch.Generator().manual_seed(0)
    K, D, B = 500, 50, 100
    loc = torch.randn(K, D, generator=g).requires_grad_()
    scale = (0.01 + torch.rand(K, D, generator=g)).requires_grad_()
    logits = torch.randn(K, generator=g)
    z = (3 * torch.randn(B, D, generator=g)).requires_grad_()
    lines = []
    truth = MixtureSameFamily(Categorical(logits=logits.double()),
                              Independent(Normal(loc.detach().double(), scale.detach().double()), 1)).log_prob(z.detach().double())
    rows = {}
    for cls in (MixtureSameFamily, DiagonalGaussianMixture):
        def step():
            cls(Categorical(logits=logits), Independent(Normal(loc, scale), 1)).log_prob(z).sum().backward()
        with torch.no_grad():
            err = (cls(Categorical(logits=logits), Independent(Normal(loc, scale), 1)).log_prob(z).double() - truth).abs().max()
        rows[cls.__name__] = (timed(step, args.repeats), float(err))
    lines += ["| log p(z), K = 500, D = 50, batch 100 | log_prob + backward (ms) | max float32 error against float64 (nats) |",
              "|---|---:|---:|"]
    for name, (s, err) in rows.items():
        lines.append(f"| {name} | {1e3 * s:.2f} | {err:.2e} |")
    base = torch.randn(500, 6, 36, generator=g) * 5
    view = base.split([10, 10, 10, 6], -1)[2]
    copy = view.contiguous()
    lines += ["", "| softplus of a 500 x 6 x 10 block | microseconds |", "|---|---:|",
              f"| strided view (what `split` returns) | {1e6 * timed(lambda: F.softplus(view), args.repeats * 4):.0f} |",
              f"| contiguous copy | {1e6 * timed(lambda: F.softplus(copy), args.repeats * 4):.0f} |"]
    write(Path(args.out), header("Mixture priors: log p(z) by matrix products", None, time.perf_counter() - t0)
          + [(__doc__ or "").split("\n\n")[2].replace("\n", " "), ""] + lines)
    print("\n".join(lines))


if __name__ == "__main__":
    main()
