"""Training on several SMILES per molecule (``MoleculeVAE(random_strings=n)``): held-out reconstruction.

    python benchmarks/molecules_random_strings.py run --data moses3k --n 0 --minutes 10    # one process per fit
    python benchmarks/molecules_random_strings.py run --data moses3k --n 10 --minutes 10
    python benchmarks/molecules_random_strings.py run --data zinc --n 0 --minutes 20
    python benchmarks/molecules_random_strings.py run --data zinc --n 5 --minutes 20
    python benchmarks/molecules_random_strings.py run --data moses3k --n 20 --minutes 60
    python benchmarks/molecules_random_strings.py run --data zinc3k --n 0 --minutes 35   # a third data set
    python benchmarks/molecules_random_strings.py run --data zinc3k --n 20 --minutes 35
    python benchmarks/molecules_random_strings.py report   # -> benchmarks/results/molecules_random_strings.md

The default SELFIES VAE reconstructs most of its training molecules but few molecules it has not seen
(``benchmarks/results/molecules.md``: on 3,000 MOSES molecules 0.703 of the training molecules and 0.035 of
1,000 held-out ones). Each training molecule is always the same canonical string, so the model can learn
strings rather than molecules. Here ``n`` other SMILES of each training molecule (its atoms in a random order;
SMILES enumeration, Bjerrum 2017, Arus-Pous et al. 2019) join the training strings, and everything else stays
at the library's defaults under the same budget of CPU time per fit (the process's CPU time, one thread):
reconstruction accuracy (greedy decoding of the posterior mean gives the same canonical SMILES) of 1,000
training molecules and of 1,000 molecules held out, and validity, uniqueness and novelty of 1,000 samples.
Data: ``moses3k`` is the split of ``benchmarks/molecules.py --part moses3k`` (3,000 random molecules of
MOSES's test set for training, the next 1,000 held out, seed 0); ``zinc`` trains on the 24,445 molecules of
``zinc_jtvae_subset/valid.txt`` and holds out the first 1,000 of ``test.txt``; ``zinc3k`` trains on 3,000 random
molecules of ``valid.txt`` (seed 0) and holds out the same 1,000.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
import warnings
from pathlib import Path

import numpy as np
import pandas as pd
import torch

sys.path.insert(0, str(Path(__file__).parent))
from common import DATA, RESULTS, command, machine, now, write
from molecules import ZINC, lines


def split(data: str, data_dir: Path) -> tuple[list[str], list[str]]:
    moses = data_dir / "moses" / "test.csv.gz"
    if data == "moses3k" and not moses.exists():
        sys.exit(f"error: {moses} does not exist; pass --data-dir pointing at the shared data folder.")
    if data == "moses3k":
        smiles = pd.read_csv(data_dir / "moses" / "test.csv.gz")["SMILES"].tolist()
        idx = np.random.default_rng(0).permutation(len(smiles))
        return [smiles[i] for i in idx[:3000]], [smiles[i] for i in idx[3000:4000]]
    zinc = data_dir / ZINC.name
    if data == "zinc3k":  # a small set from the ZINC subset: 3,000 random training molecules
        train = lines(zinc / "valid.txt")
        idx = np.random.default_rng(0).permutation(len(train))
        return [train[i] for i in idx[:3000]], lines(zinc / "test.txt")[:1000]
    return lines(zinc / "valid.txt"), lines(zinc / "test.txt")[:1000]


def run(args) -> None:
    from vaekit.apps.molecules import MoleculeVAE
    from vaekit.apps.molecules.metrics import moses_metrics

    cache = Path(args.cache)
    key = (args.data, args.n, args.minutes, args.steps)
    if cache.exists() and any((r["data"], r["n"], r["minutes"], r.get("steps")) == key
                              for r in map(json.loads, cache.read_text().splitlines())):
        return print(f"{key}: already in {cache}")
    train, held = split(args.data, Path(args.data_dir))
    started = now()
    steps = {} if args.steps is None else {"steps": args.steps}  # else the library's default
    vae = MoleculeVAE(random_strings=args.n, max_minutes=args.minutes, budget_clock="cpu", random_state=0, **steps)
    c0 = time.process_time()
    vae.fit(train)
    cpu = time.process_time() - c0
    metrics = moses_metrics(vae.sample(1000, random_state=0), train=train, ks=(1000,))
    rec = {"data": args.data, "n": args.n, "minutes": args.minutes, "steps": args.steps, "cpu_s": round(cpu, 1),
           "epochs": vae.epochs_trained_, "strings": len(train) * (args.n + 1), "active_units": vae.active_units_,
           "recon_train": vae.reconstruction_accuracy(train[:1000]), "recon_held": vae.reconstruction_accuracy(held),
           "valid": metrics["valid"], "unique@1000": metrics["unique@1000"], "novelty": metrics["novelty"],
           "test_ll": float(vae.score_samples(held[:300], k=20).mean()),
           "started": started, "machine": machine(), "command": command()}
    with cache.open("a") as f:
        f.write(json.dumps(rec) + "\n")
    print(json.dumps(rec, indent=1))


def report(args) -> None:
    recs = sorted(map(json.loads, Path(args.cache).read_text().splitlines()),
                  key=lambda r: (r["data"], r["minutes"], r.get("steps") or 0, r["n"]))
    rows = [f"| {r['data']} | {r['n']} | {r['strings']:,} | {r['cpu_s'] / 60:.0f} ({r['minutes']:g}) | "
            f"{r.get('steps') or 6000:,}{'' if r.get('steps') else ' (default)'} | {r['epochs']} | {r['recon_train']:.3f} | "
            f"**{r['recon_held']:.3f}** | {r['valid']:.3f} | {r['unique@1000']:.3f} | {r['novelty']:.3f} | "
            f"{r['test_ll']:.2f} |" for r in recs]
    text = ["# Molecules: several SMILES per training molecule (`MoleculeVAE(random_strings=n)`)", "",
            f"Written by `{command()}` from `{Path(args.cache).name}`; the fits: "
            + "; ".join(f"`{r['command']}` ({r['started']})" for r in recs) + ". Machines: "
            + "; ".join(sorted({r["machine"] for r in recs})) + ".", "",
            (__doc__ or "").split("\n\n")[2].replace("\n", " "), "",
            "| data | n | training strings | CPU minutes used (cap) | steps | epochs | recon (training) | "
            "recon (held out) | valid | unique@1000 | novelty | held-out log p(canonical string), nats (300, k = 20) |",
            "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|", *rows, "",
            "Training stops at whichever comes first: the CPU minutes, or the epochs that `MoleculeVAE(epochs=\"auto\")` "
            "sets for the steps asked (about that many gradient steps, but at least 20 epochs).", "",
            "The log-likelihood column is the probability of each molecule's canonical string: a model trained on "
            "several strings per molecule spreads its probability over them, so that column is expected to fall "
            "with n even when the model of the molecules improves."]
    write(Path(args.out), text)
    print("\n".join(text))


def at_least(low: int):
    def parse(text: str) -> int:
        if not text.isdigit() or int(text) < low:
            raise argparse.ArgumentTypeError(f"must be a whole number of at least {low}, got {text!r}")
        return int(text)
    return parse


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("mode", choices=("run", "report"))
    p.add_argument("--data", choices=("moses3k", "zinc", "zinc3k"), default="moses3k")
    p.add_argument("--n", type=at_least(0), default=0, help="other SMILES per training molecule (random_strings)")
    p.add_argument("--minutes", type=float, default=10.0, help="CPU minutes of training (at most)")
    p.add_argument("--steps", type=at_least(1), default=None, help="gradient steps of training (at most; default: the "
                   "library's, MoleculeVAE(steps=6000))")
    p.add_argument("--data-dir", default=str(DATA), help="the shared data folder (moses/, zinc_jtvae_subset/)")
    p.add_argument("--cache", default=str(RESULTS / "molecules_random_strings.jsonl"))
    p.add_argument("--out", default=str(RESULTS / "molecules_random_strings.md"))
    args = p.parse_args()
    torch.set_num_threads(1)
    warnings.simplefilter("ignore")
    return run(args) if args.mode == "run" else report(args)


if __name__ == "__main__":
    main()
