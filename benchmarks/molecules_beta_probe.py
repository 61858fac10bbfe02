"""How the KL weight trades reconstruction against samples for the SELFIES VAE (a probe for issue 15).

    python benchmarks/molecules_beta_probe.py run --beta 0.1 --minutes 20     # one process per beta; resumable
    python benchmarks/molecules_beta_probe.py run --beta 0.01 --minutes 20
    python benchmarks/molecules_beta_probe.py report    # -> benchmarks/results/molecules_beta_probe.md
    python benchmarks/molecules_beta_probe.py run --beta 0.1 --minutes 3 --device cuda --clock wall   # on a GPU
    python benchmarks/molecules_beta_probe.py run --model charrnn --tokens selfies --minutes 20   # the baselines

``benchmarks/molecules.py`` trains ``MoleculeVAE()`` (beta 0.1) for 30 CPU minutes on the 24,445 molecules of
``zinc_jtvae_subset/valid.txt`` and reaches a reconstruction accuracy of 0.219 on the 5,000 test molecules,
against the issue's target of 0.7 (JT-VAE: 76.7%, with beta 0.005 on 250,000 molecules). Here the same model
and data with the library's other defaults, a time budget per fit (on the CPU the process's CPU time, so fits
sharing the machine get the same work; on a GPU wall-clock time), and only the KL weight or the budget changed: reconstruction accuracy on all
5,000 test molecules (greedy decoding of the posterior mean gives the same canonical SMILES), the MOSES
metrics of 2,000 samples from the prior (FCD and SNN against the test molecules), active units and the
test ELBO. Beside them, the CharRNN of ``benchmarks/molecules.py`` (a GRU language model of the decoder's
size, no latent space) trained for the same budget on SELFIES tokens and on SMILES tokens, the baselines of the
FCD target; its test log p(x) is exact. The FCD of 2,000 samples is biased upward against that of 10,000, so
compare the rows here with each other, not with ``molecules.md``. Not a default choice: a probe of what the
reconstruction and FCD targets need.
"""

from __future__ import annotations

import argparse
import datetime
import json
import sys
import time
import warnings
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).parent))
from common import RESULTS, command, gpu_name, machine, write
from molecules import ZINC, evaluate_generated, lines

KEYS = (("valid", "valid"), ("unique@1000", "unique@1000"), ("novelty", "novelty"), ("FCD", "FCD"),
        ("SNN", "SNN"), ("IntDiv", "IntDiv"))


def key(rec: dict) -> tuple:
    return rec.get("model", "vae"), rec.get("tokens", "selfies"), rec["beta"], rec["minutes"], rec.get("device", "cpu")


def append(cache: Path, rec: dict) -> None:
    with cache.open("a") as f:
        f.write(json.dumps(rec, default=float) + "\n")
    print(json.dumps(rec, default=float, indent=1))


def run(args) -> None:
    from vaekit.apps.molecules import MoleculeVAE
    from vaekit.apps.molecules.metrics import Reference

    cache = Path(args.cache)
    beta = None if args.model == "charrnn" else args.beta
    same = (args.model, args.tokens, beta, args.minutes, args.device)
    if cache.exists() and any(key(r) == same for r in map(json.loads, cache.read_text().splitlines())):
        return print(f"{args.model} ({args.tokens}) beta {beta}, {args.minutes} min on {args.device}: already in {cache}")
    data = Path(args.data_dir)
    train, test = lines(data / "valid.txt"), lines(data / "test.txt")
    if args.model == "charrnn":
        return run_charrnn(args, train, test, cache)
    if args.tokens != "selfies":
        raise SystemExit("The VAE rows of this probe use SELFIES tokens (--tokens selfies).")
    start = datetime.datetime.now().isoformat(timespec="seconds")
    vae = MoleculeVAE(beta=args.beta, max_minutes=args.minutes, budget_clock=args.clock, epochs=1000, random_state=0,
                      kl_warmup=2 / 1000, device=args.device)  # warm-up over 2 epochs' worth of steps, as benchmarks/molecules.py
    c0, w0 = time.process_time(), time.perf_counter()
    vae.fit(train)
    cpu, wall = time.process_time() - c0, time.perf_counter() - w0
    samples = vae.sample(args.samples, random_state=0)
    metrics = evaluate_generated(samples, train, Reference(test))
    recon = vae.reconstruction_accuracy(test)
    test_ll = float(vae.score_samples(test[:500], k=20).mean())
    rec = {"model": "vae", "tokens": "selfies", "beta": args.beta, "minutes": args.minutes, "cpu_s": round(cpu, 1), "wall_s": round(wall, 1),
           "device": args.device, "clock": args.clock, "machine": machine(args.device), "epochs": vae.epochs_trained_,
           "active_units": vae.active_units_, "recon": recon, "metrics": metrics, "test_ll_500": test_ll,
           "train_elbo": vae.history_.records[-1].get("train_elbo"), "samples": args.samples, "started": start,
           "command": command()}
    append(cache, rec)


def run_charrnn(args, train: list[str], test: list[str], cache: Path) -> None:
    from vaekit.apps.molecules.metrics import Reference
    from molecules import charrnn_log_likelihood, charrnn_sample, length_cap, train_charrnn

    if args.device != "cpu":
        raise SystemExit("The CharRNN rows train on the CPU (--device cpu).")
    start = datetime.datetime.now().isoformat(timespec="seconds")
    c0, w0 = time.process_time(), time.perf_counter()
    model, vocab, hist = train_charrnn(train, args.minutes, seed=0, clock=args.clock, tokens=args.tokens)
    cpu, wall = time.process_time() - c0, time.perf_counter() - w0
    samples = charrnn_sample(model, vocab, args.samples, length_cap(train, args.tokens), tokens=args.tokens, seed=0)
    metrics = evaluate_generated(samples, train, Reference(test))
    ll, _ = charrnn_log_likelihood(model, vocab, test[:500], tokens=args.tokens)
    rec = {"model": "charrnn", "tokens": args.tokens, "beta": None, "minutes": args.minutes, "cpu_s": round(cpu, 1),
           "wall_s": round(wall, 1), "device": "cpu", "clock": args.clock, "machine": machine(), "epochs": len(hist.records),
           "active_units": None, "recon": None, "metrics": metrics, "test_ll_500": float(ll.mean()),
           "train_elbo": None, "samples": args.samples, "started": start, "command": command()}
    append(cache, rec)


def report(args) -> None:
    recs = [json.loads(r) for r in Path(args.cache).read_text().splitlines()]
    recs.sort(key=lambda r: (r["minutes"], r.get("model", "vae") == "charrnn", -(r["beta"] or 0), r.get("tokens", "")))

    def first(r):  # the model: the KL weight of a SELFIES VAE, or a CharRNN and its tokens
        return f"CharRNN, {r['tokens'].upper()} tokens" if r.get("model") == "charrnn" else f"VAE, beta {r['beta']}"

    def opt(v, fmt):
        return "–" if v is None else format(v, fmt)

    rows = [f"| {first(r)} | {budget(r)} | {r['epochs']} | {opt(r['active_units'], 'd')} | {opt(r['recon'], '.3f')} | "
            + " | ".join(f"{r['metrics'][k]:.3f}" for k, _ in KEYS) + f" | {r['test_ll_500']:.2f} |" for r in recs]
    lines_ = ["# Molecules: the KL weight against reconstruction and samples (SELFIES VAE, probe; CharRNN baselines)", "",
              f"Written by `benchmarks/molecules_beta_probe.py` (`{command()}`) on {datetime.date.today()} from "
              f"`{Path(args.cache).name}`; the fits: " + "; ".join(f"`{r['command']}` ({r['started']})" for r in recs)
              + ". Machines: " + "; ".join(sorted({r.get("machine") or machine() for r in recs})) + ".", "",
              (__doc__ or "").split("\n\n")[2].replace("\n", " "), "",
              "| model | training budget | epochs | active units (of 64) | reconstruction (test) | "
              + " | ".join(k for _, k in KEYS) + " | test log p(x), nats (first 500 test molecules; VAEs: k = 20) |",
              "|---|---:|---:|---:|---:|" + "---:|" * (len(KEYS) + 1), *rows, "",
              "Test log p(x) is of each molecule's canonical string in the model's tokens: SELFIES rows are "
              "comparable with each other, not with the SMILES row."]
    write(Path(args.out), lines_)
    print("\n".join(lines_))


def budget(rec: dict) -> str:
    if rec.get("clock", "cpu") == "cpu":
        return f"{rec['minutes']:g} CPU min"
    gpu = gpu_name(rec.get("machine", ""))
    return f"{rec['minutes']:g} min on " + (f"the GPU ({gpu})" if gpu else "the CPU (wall clock)")


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("mode", choices=("run", "report"))
    p.add_argument("--model", choices=("vae", "charrnn"), default="vae", help="a SELFIES VAE, or the CharRNN baseline")
    p.add_argument("--tokens", choices=("selfies", "smiles"), default="selfies", help="the CharRNN's tokens")
    p.add_argument("--beta", type=float, default=0.1, help="the VAE's KL weight")
    p.add_argument("--minutes", type=float, default=20.0, help="minutes of training (see --clock)")
    p.add_argument("--clock", choices=("cpu", "wall"), default="cpu", help="the budget's clock: the process's CPU "
                   "time, or wall-clock time (on a GPU)")
    p.add_argument("--device", default="cpu", help="where the VAE trains: cpu, cuda")
    p.add_argument("--threads", type=int, default=1, help="torch CPU threads (metrics, CPU training)")
    p.add_argument("--data-dir", default=str(ZINC), help="folder with valid.txt and test.txt")
    p.add_argument("--samples", type=int, default=2000)
    p.add_argument("--cache", default=str(RESULTS / "molecules_beta_probe.jsonl"))
    p.add_argument("--out", default=str(RESULTS / "molecules_beta_probe.md"))
    args = p.parse_args()
    torch.set_num_threads(args.threads)
    warnings.simplefilter("ignore")
    return run(args) if args.mode == "run" else report(args)


if __name__ == "__main__":
    main()
