"""Training-step time of the table likelihood against an earlier version of it, side by side.

    python benchmarks/table_likelihood_speed.py --against 1e35aa5   # -> benchmarks/results/table_likelihood_speed.md

One TabularSynthesizer model on a 3,000-row sample of UCI Adult (``adult.data``; 15 columns: 6 numeric with
the mixture likelihood, 9 categorical), batches of 500 rows, one torch thread. The model's distribution
class is swapped between the working tree's ``TableDistribution`` and the one in ``vaekit/likelihoods/table.py``
at the given commit (read with ``git show``), in alternating rounds of 10 AdamW steps, so both see the same
machine load; the log-likelihoods of the two versions on the batch are compared first.

Where a step's time goes, now: the same rounds with the current class and two variants of it whose mixture
columns' or categorical blocks' terms are replaced by a zero of the same shape (still connected to the decoder's
outputs, so the network's backward pass is unchanged); the differences are those terms' cost.
"""

from __future__ import annotations

import argparse
import datetime
import importlib.util
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).parent))
from common import DATA, RESULTS, ROOT, command, load, machine, write
from synthetic_tables import read_adult


def old_module(commit: str):
    source = subprocess.run(["git", "show", f"{commit}:src/vaekit/likelihoods/table.py"], cwd=ROOT, check=True,
                            capture_output=True, text=True).stdout
    path = Path(tempfile.mkdtemp()) / "table_old.py"
    path.write_text(source)
    spec = importlib.util.spec_from_file_location("table_old", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--against", default="1e35aa5", help="the commit whose table likelihood is the baseline")
    p.add_argument("--components", type=int, nargs="*", default=[10, 5])
    p.add_argument("--rounds", type=int, default=10)
    p.add_argument("--out", default=str(RESULTS / "table_likelihood_speed.md"))
    args = p.parse_args()
    torch.set_num_threads(1)
    import vaekit
    import vaekit.likelihoods.table as table
    from vaekit.data import tabular
    from vaekit.objectives import elbo

    old = old_module(args.against)
    frame = read_adult(DATA / "adult" / "adult.data").sample(3000, random_state=0).reset_index(drop=True)
    rows, split = [], []
    for k in args.components:
        syn = vaekit.TabularSynthesizer(epochs=1, components=k, prior="normal").fit(frame)
        x = torch.from_numpy(tabular.encode_table(frame, syn.table_, name="X"))[:500]
        model = syn.model_.train()
        opt = torch.optim.AdamW(model.parameters(), fused=True)
        now = table.TableDistribution

        class NoMixture(now):
            def mixture_log_prob(self, v):
                return self.mix.sum(-1) * 0 + 0 * v

        class NoCategorical(now):
            def block_log_prob(self, xs):
                return self.loc.index_select(-1, self.layout.cat_first) * 0

        versions = {"earlier": old.TableDistribution, "now": now, "no mixture": NoMixture, "no categorical": NoCategorical}
        with torch.no_grad():
            px = model(x).px
            lp = {name: versions[name](px.loc, px.scale, px.layout, px.mix, px.min_scale).log_prob(x)
                  for name in ("earlier", "now")}
        diff = float((lp["earlier"] - lp["now"]).abs().max())

        def step():
            opt.zero_grad()
            elbo(model, x, beta=0.5).loss.backward()
            opt.step()

        spent = dict.fromkeys(versions, 0.0)
        for r in range(args.rounds + 1):
            for name, cls in versions.items():
                table.TableDistribution = cls
                t0 = time.perf_counter()
                for _ in range(10):
                    step()
                if r:  # the first round warms up
                    spent[name] += time.perf_counter() - t0
        table.TableDistribution = now
        ms = {name: 1e3 * s / (10 * args.rounds) for name, s in spent.items()}
        rows.append(f"| {k} | {ms['earlier']:.1f} | {ms['now']:.1f} | {ms['earlier'] / ms['now']:.2f}x | {diff:.1e} |")
        split.append(f"| {k} | {ms['now']:.1f} | {ms['now'] - ms['no mixture']:.1f} | "
                     f"{ms['now'] - ms['no categorical']:.1f} | {ms['no mixture'] + ms['no categorical'] - ms['now']:.1f} |")
        print(rows[-1], split[-1], flush=True)
    lines = ["# Table likelihood: training-step time against an earlier version", "",
             f"Written by `benchmarks/table_likelihood_speed.py` (`{command()}`) on {datetime.date.today()}. "
             f"{machine()}; {load()}.", "", (__doc__ or "").split("\n\n")[2].replace("\n", " "), "",
             f"| mixture components per numeric column | ms per step, version at {args.against} | ms per step, now | "
             "speed-up | largest log p(x|z) difference on the batch (nats) |", "|---:|---:|---:|---:|---:|", *rows, "",
             (__doc__ or "").split("\n\n")[3].replace("\n", " "), "",
             "| mixture components per numeric column | ms per step, now | mixture columns' terms | categorical blocks' "
             "terms | the rest (network, KL, numeric columns, AdamW) |", "|---:|---:|---:|---:|---:|", *split]
    write(Path(args.out), lines)


if __name__ == "__main__":
    main()
