"""Molecule benchmark: vaekit SELFIES VAE, vaekit SMILES VAE and a character-level RNN language model
(the MOSES CharRNN analogue, written here) trained for the same time on the same data, MOSES metrics,
reconstruction, test log-likelihood, JT-VAE's constrained optimisation, and the small-data check on
MOSES molecules. Each part caches its results as JSON in ``--work``; ``--part report`` writes
``benchmarks/results/molecules.md``, ``molecules_readme_section.md`` and ``molecules_samples.png``.

    python benchmarks/molecules.py --part selfies  --minutes 25   # train + evaluate the SELFIES VAE
    python benchmarks/molecules.py --part smiles   --minutes 25
    python benchmarks/molecules.py --part charrnn  --minutes 25   # the CharRNN on SMILES tokens
    python benchmarks/molecules.py --part charrnn_selfies --minutes 25   # ... and on SELFIES tokens
    python benchmarks/molecules.py --part optimize                # needs the selfies part's model
    python benchmarks/molecules.py --part moses3k  --minutes 90   # defaults on 3,000 MOSES molecules (a cap)
    python benchmarks/molecules.py --part report

Data: ../shared/data/zinc_jtvae_subset (train on valid.txt, test on test.txt, optimise opt.test.logP-SA)
and ../shared/data/moses/test.csv.gz (the small-data check). Every number in the results is written here.
"""

from __future__ import annotations

import argparse
import datetime
import json
import math
import os
import platform
import subprocess
import sys
import time
import warnings
from pathlib import Path

import numpy as np
import pandas as pd
import torch
from torch import nn

ROOT = Path(__file__).resolve().parents[1]
DATA = ROOT.parent / "shared" / "data"
ZINC = DATA / "zinc_jtvae_subset"
RESULTS = ROOT / "benchmarks" / "results"

# Published rows. MOSES: Polykovskiy et al. 2020, Table 2 / the molecularsets/moses README (trained on 1.6M
# MOSES molecules; FCD and SNN against MOSES's test set, not ours: context, not a like-for-like comparison).
MOSES_PUBLISHED = {
    "MOSES VAE": {"valid": 0.977, "unique@10000": 0.998, "novelty": 0.695, "FCD": 0.099, "SNN": 0.626,
                  "Frag": 0.999, "Scaf": 0.939, "IntDiv": 0.856, "filters": 0.997},
    "MOSES CharRNN": {"valid": 0.975, "unique@10000": 0.999, "novelty": 0.842, "FCD": 0.073, "SNN": 0.601,
                      "Frag": 1.000, "Scaf": 0.924, "IntDiv": 0.856, "filters": 0.994},
}
# JT-VAE constrained optimisation of penalised logP on the same 800 molecules (Jin et al. 2018, Table 3:
# improvement mean +- std over the 800, similarity, success). The delta = 0 row is reproduced exactly by the
# JT-VAE repository's own result file molopt/result-beta0.001/opt-lr2-it80-sim0.txt (1.907 +- 2.043 over 800);
# the other rows are quoted from the paper's table as reproduced in You et al. 2018 (GCPN), Table 3, and could
# not be re-derived here (the repository's beta=0.001 files give 0.545 +- 1.205 at 0.4, 0.099 +- 0.496 at 0.6).
JTVAE_PUBLISHED = {
    0.0: {"improvement": "1.91 ± 2.04", "similarity": "0.28 ± 0.15", "success": 0.975},
    0.2: {"improvement": "1.68 ± 1.85", "similarity": "0.33 ± 0.13", "success": 0.971},
    0.4: {"improvement": "0.84 ± 1.45", "similarity": "0.51 ± 0.10", "success": 0.836},
    0.6: {"improvement": "0.21 ± 0.71", "similarity": "0.69 ± 0.06", "success": 0.464},
}
METRIC_ORDER = ["valid", "unique@1000", "unique@10000", "novelty", "FCD", "SNN", "Frag", "Scaf", "IntDiv",
                "IntDiv2", "filters"]


def started() -> dict:
    """What every part records: the machine, the start time and the exact command."""
    return {"machine": machine(), "started": datetime.datetime.now().isoformat(timespec="seconds"),
            "command": "python benchmarks/molecules.py " + " ".join(sys.argv[1:])}


def machine() -> str:
    out = subprocess.run(["lscpu"], capture_output=True, text=True, check=False).stdout.splitlines()
    model = next((line.split(":", 1)[1].strip() for line in out if line.startswith("Model name")), platform.processor())
    return (f"{model}, {os.cpu_count()} cores shared with other jobs (load average {os.getloadavg()[0]:.1f} at the "
            f"part's start), 1 torch thread, torch {torch.__version__}, Python {platform.python_version()}")


def lines(path: Path) -> list[str]:
    if not path.exists():
        sys.exit(f"error: {path} does not exist; point --data-dir (or DATA) at the shared data folder.")
    return [line.split()[0] for line in path.read_text().splitlines() if line.strip()]


def save_json(work: Path, name: str, obj) -> None:
    work.mkdir(parents=True, exist_ok=True)
    if isinstance(obj, dict) and "machine" in obj:
        obj["load_average_end"] = os.getloadavg()[0]
    (work / f"{name}.json").write_text(json.dumps(obj, indent=2, default=float))


def load_json(work: Path, name: str):
    p = work / f"{name}.json"
    return json.loads(p.read_text()) if p.exists() else None


# -- the CharRNN baseline: a GRU language model on SMILES tokens, trained with vaekit.train.fit ------------
class CharRNN(nn.Module):
    """p(x) = prod_t p(x_t | x_<t): vaekit's GRUDecoder fed a constant zero "latent", so its first state is
    a learned vector; the likelihood is vaekit's AutoregressiveCategorical (exact nats)."""

    def __init__(self, vocab_size: int, hidden: int = 384, embed_dim: int = 64):
        super().__init__()
        from vaekit.nets_recurrent import GRUDecoder

        self.decoder = GRUDecoder(vocab_size, 1, embed_dim=embed_dim, hidden=hidden)

    def px(self, n: int):
        from vaekit.sequence import AutoregressiveCategorical

        return AutoregressiveCategorical(self.decoder, torch.zeros(n, 1))

    def forward(self, x, y=None, *, k=None):
        return self.px(len(x))


def lm_objective(model, x, y=None, *, beta=1.0, free_bits=0.0):
    from vaekit.objectives import Terms

    log_px = model(x).log_prob(x)  # exact log p(x), nats
    return Terms(-log_px.mean(), log_px, log_px, torch.zeros_like(log_px))


def train_charrnn(train: list[str], minutes: float, seed: int = 0, clock: str = "cpu", tokens: str = "smiles"):
    """A CharRNN on ``tokens`` ("smiles" or "selfies") of the training molecules' canonical SMILES, trained for
    ``minutes`` of ``clock`` time."""
    from vaekit.apps.molecules import tokens as tk
    from vaekit.apps.molecules.batching import LengthBucketed
    from vaekit.apps.molecules.estimator import TimeBudget
    from vaekit.config import TrainConfig
    from vaekit.train import fit

    canon = [c for c in (tk.canonical(s) for s in train) if c]
    toks = [tk.to_tokens(s, tokens) for s in canon]
    vocab = tk.Vocabulary.learn(toks)
    x, _ = vocab.encode(toks)
    torch.manual_seed(seed)
    model = CharRNN(len(vocab))
    cfg = TrainConfig(epochs=1000, batch_size=128, lr=2e-3, grad_clip=5.0, seed=seed, device="cpu",
                      precision="fp32", progress=False)
    hist = fit(model, x, config=cfg, objective=lm_objective, plan=LengthBucketed((x != 0).sum(-1)),
               callbacks=[TimeBudget(minutes, clock)])
    return model.eval(), vocab, hist


def length_cap(train: list[str], tokens: str = "smiles") -> int:
    """Twice the longest training molecule's canonical string in ``tokens``: where sampling forces the end."""
    from vaekit.apps.molecules import tokens as tk

    return 2 * max(len(tk.to_tokens(c, tokens)) for c in (tk.canonical(s) for s in train) if c)


def charrnn_sample(model: CharRNN, vocab, n: int, cap: int, tokens: str = "smiles", seed: int = 0) -> list:
    """n molecules sampled from the CharRNN (temperature 1), as SMILES (None where the string is no molecule)."""
    from vaekit.apps.molecules import tokens as tk
    from vaekit.sequence import generate

    torch.manual_seed(seed)
    samples = []
    with torch.inference_mode():
        for idx in torch.arange(n).split(1000):
            rows = generate(model.decoder, torch.zeros(len(idx), 1), max_len=cap, exclude=(tk.SPECIALS.unknown,))
            samples += [tk.from_tokens(t, tokens) for t in vocab.decode(rows)]
    return samples


def charrnn_log_likelihood(model: CharRNN, vocab, smiles: list[str], tokens: str = "smiles"):
    """Exact log p(x) in nats of each molecule's canonical string in ``tokens``; and the unknown-token count."""
    from vaekit.apps.molecules import tokens as tk

    canon = [c for c in (tk.canonical(s) for s in smiles) if c]
    x, unknown = vocab.encode([tk.to_tokens(s, tokens) for s in canon])
    with torch.inference_mode():
        ll = torch.cat([model.px(len(xb)).log_prob(xb) for xb in x.split(500)]).double().numpy()
    return ll, sum(unknown.values())


# -- parts -------------------------------------------------------------------------------------------------
def evaluate_generated(samples, train, reference) -> dict:
    from vaekit.apps.molecules.metrics import moses_metrics

    return moses_metrics(samples, train=train, reference=reference)


def part_vae(args, representation: str) -> None:
    import vaekit
    from vaekit.apps.molecules import MoleculeVAE
    from vaekit.apps.molecules.metrics import Reference

    train, test = lines(ZINC / "valid.txt"), lines(ZINC / "test.txt")
    info = started()
    model_dir = args.work / f"{representation}_model"
    earlier = load_json(args.work, representation)
    if args.reuse_model and earlier is not None and model_dir.exists():
        # the model an earlier run of this part trained and saved, evaluated again with today's decoding
        vae = vaekit.load(model_dir)
        keep = ("train_seconds", "train_cpu_seconds", "epochs", "active_units", "vocabulary", "n_train", "final")
        info.update({k: earlier[k] for k in keep}, trained_by=earlier.get("trained_by", earlier["command"]),
                    trained_started=earlier.get("trained_started", earlier["started"]))
        info["params"] = {k: v for k, v in vae.get_params().items() if k not in ("verbose",)}
    else:
        vae = MoleculeVAE(representation=representation, max_minutes=args.minutes, budget_clock="cpu", epochs=1000,
                          random_state=args.seed, kl_warmup=args.kl_warmup_epochs / 1000)
        t0, c0 = time.perf_counter(), time.process_time()
        vae.fit(train)
        info["train_seconds"], info["train_cpu_seconds"] = time.perf_counter() - t0, time.process_time() - c0
        vae.save(model_dir, overwrite=True)
        info.update(params={k: v for k, v in vae.get_params().items() if k not in ("verbose",)},
                    epochs=vae.epochs_trained_, active_units=vae.active_units_, vocabulary=len(vae.vocabulary_),
                    n_train=vae.n_train_, random_strings=vae.random_strings_, final=vae.history_.records[-1])
    if representation in ("smiles", "kekule_smiles"):  # the same model decoded without the mask, side by side
        vae.set_params(syntax_mask=False)
        info["metrics_unmasked"] = evaluate_generated(vae.sample(args.samples, random_state=args.seed), train,
                                                      Reference(test))
        info["reconstruction_unmasked"] = vae.reconstruction_accuracy(test)
        vae.set_params(syntax_mask=True)
    t0 = time.perf_counter()
    samples = vae.sample(args.samples, random_state=args.seed)
    info["sample_seconds"] = time.perf_counter() - t0
    (args.work / f"{representation}_samples.smi").write_text("\n".join(s or "" for s in samples) + "\n")
    reference = Reference(test)
    info["metrics"] = evaluate_generated(samples, train, reference)
    t0 = time.perf_counter()
    info["reconstruction"] = vae.reconstruction_accuracy(test)
    info["reconstruction_seconds"] = time.perf_counter() - t0
    t0 = time.perf_counter()
    ll = vae.score_samples(test[: args.n_ll], k=args.k)
    info.update(test_ll=float(ll.mean()), test_ll_se=float(ll.std(ddof=1) / math.sqrt(len(ll))), n_ll=len(ll),
                k=args.k, ll_seconds=time.perf_counter() - t0)
    save_json(args.work, representation, info)
    print(json.dumps({k: v for k, v in info.items() if k != "params"}, indent=1, default=float))


def part_charrnn(args, tokens: str = "smiles") -> None:
    from vaekit.apps.molecules.metrics import Reference

    train, test = lines(ZINC / "valid.txt"), lines(ZINC / "test.txt")
    name = "charrnn" if tokens == "smiles" else f"charrnn_{tokens}"
    info = started()
    t0, c0 = time.perf_counter(), time.process_time()
    model, vocab, hist = train_charrnn(train, args.minutes, args.seed, tokens=tokens)
    info.update(train_seconds=time.perf_counter() - t0, train_cpu_seconds=time.process_time() - c0,
                epochs=len(hist.records), vocabulary=len(vocab), tokens=tokens,
                final=hist.records[-1])
    samples = charrnn_sample(model, vocab, args.samples, length_cap(train, tokens), tokens=tokens, seed=args.seed)
    (args.work / f"{name}_samples.smi").write_text("\n".join(s or "" for s in samples) + "\n")
    info["metrics"] = evaluate_generated(samples, train, Reference(test))
    ll, unknown = charrnn_log_likelihood(model, vocab, test[: args.n_ll], tokens=tokens)
    info.update(test_ll=float(ll.mean()), test_ll_se=float(ll.std(ddof=1) / math.sqrt(len(ll))), n_ll=len(ll),
                unknown_tokens=unknown)
    save_json(args.work, name, info)
    print(json.dumps(info, indent=1, default=float))


def part_optimize(args) -> None:
    from vaekit.apps.molecules import MoleculeVAE
    from vaekit.apps.molecules.optimize import fit_property_head, optimize, summarise

    vae = MoleculeVAE.load(args.work / "selfies_model")
    train = lines(ZINC / "valid.txt")
    start = lines(ZINC / "opt.test.logP-SA")[: args.n_opt]
    info = started()
    t0 = time.perf_counter()
    head, fit_info = fit_property_head(vae, "penalized_logp", train[: args.head_n], seed=args.seed)
    info["head"] = fit_info
    res = optimize(vae, head, start, prop="penalized_logp", steps=args.opt_steps, step_size=args.step_size,
                   samples_per_step=args.samples_per_step, neighbours=args.neighbours, seed=args.seed)
    info.update(seconds=time.perf_counter() - t0, steps=args.opt_steps, step_size=args.step_size,
                samples_per_step=args.samples_per_step, neighbours=args.neighbours, n_start=len(start),
                candidates_mean=float(res.groupby("start")["candidates"].first().mean()),
                summary=summarise(res).to_dict(orient="records"))
    res.to_csv(args.work / "optimize.csv", index=False)
    save_json(args.work, "optimize", info)
    print(json.dumps(info, indent=1, default=float))


def part_moses3k(args) -> None:
    from vaekit.apps.molecules import MoleculeVAE
    from vaekit.apps.molecules.metrics import moses_metrics

    smiles = pd.read_csv(DATA / "moses" / "test.csv.gz")["SMILES"].tolist()
    rng = np.random.default_rng(args.seed)
    idx = rng.permutation(len(smiles))
    train, held = [smiles[i] for i in idx[:3000]], [smiles[i] for i in idx[3000:4000]]
    info = started()
    vae = MoleculeVAE(random_state=args.seed, max_minutes=args.minutes, budget_clock="cpu")  # defaults, a time cap
    t0, c0 = time.perf_counter(), time.process_time()
    vae.fit(train)
    info.update(train_seconds=time.perf_counter() - t0, train_cpu_seconds=time.process_time() - c0,
                epochs=vae.epochs_trained_, planned_steps=vae.steps, max_minutes=args.minutes,
                random_strings=vae.random_strings_, active_units=vae.active_units_)
    samples = vae.sample(1000, random_state=args.seed)
    info["metrics"] = moses_metrics(samples, train=train, ks=(1000,))
    info["reconstruction_train"] = vae.reconstruction_accuracy(train[:1000])
    info["reconstruction_heldout"] = vae.reconstruction_accuracy(held)
    save_json(args.work, "moses3k", info)
    print(json.dumps(info, indent=1, default=float))


# -- report ------------------------------------------------------------------------------------------------
def fmt(v, digits: int = 3) -> str:
    if v is None or (isinstance(v, float) and math.isnan(v)):
        return "–"
    return f"{v:.{digits}f}" if isinstance(v, float) else str(v)


def part_report(args) -> None:
    from vaekit.apps.molecules.report import draw_grid

    model_parts = [("vaekit SELFIES VAE", "selfies"), ("vaekit SMILES VAE", "smiles"),
                   ("vaekit SMILES VAE, Kekulé form", "kekule_smiles"), ("CharRNN, SMILES tokens (this run)", "charrnn"),
                   ("CharRNN, SELFIES tokens (this run)", "charrnn_selfies")]
    runs = {name: load_json(args.work, key) for name, key in model_parts}
    runs = {k: v for k, v in runs.items() if v is not None}
    opt, small = load_json(args.work, "optimize"), load_json(args.work, "moses3k")
    if not runs:
        raise SystemExit(f"No results in {args.work}; run the other parts first.")
    train_ref = load_json(args.work, "train_reference")
    if train_ref is None:  # the training molecules scored as if generated: the ceiling on this data
        from vaekit.apps.molecules.metrics import Reference, moses_metrics
        train_ref = moses_metrics(lines(ZINC / "valid.txt")[: args.samples], reference=Reference(lines(ZINC / "test.txt")))
        save_json(args.work, "train_reference", train_ref)

    header = "| model | " + " | ".join(METRIC_ORDER) + " | recon (test) | test log p(x), nats | train CPU time |"
    rule = "|---" * (len(METRIC_ORDER) + 4) + "|"
    table = [header, rule]
    for name, r in runs.items():
        m = r["metrics"]
        ll = f"{r['test_ll']:.2f} ± {r['test_ll_se']:.2f}" if "test_ll" in r else "–"
        table.append(f"| {name} | " + " | ".join(fmt(m.get(c)) for c in METRIC_ORDER)
                     + f" | {fmt(r.get('reconstruction'))} | {ll} | {r['train_cpu_seconds'] / 60:.0f} min |")
        if "metrics_unmasked" in r:
            m = r["metrics_unmasked"]
            table.append(f"| {name}: the same model without the syntax and valence mask | "
                         + " | ".join(fmt(m.get(c)) for c in METRIC_ORDER)
                         + f" | {fmt(r.get('reconstruction_unmasked'))} | (same model) | (same model) |")
    n_model_rows = len(table) - 2
    table.append(f"| ZINC training molecules ({train_ref['n']:,} of them, as if generated) | "
                 + " | ".join(fmt(train_ref.get(c)) for c in METRIC_ORDER) + " | | | |")
    for name, m in MOSES_PUBLISHED.items():
        table.append(f"| {name} (published, 1.6M MOSES molecules) | " + " | ".join(fmt(m.get(c)) for c in METRIC_ORDER)
                     + " | | | |")

    targets = []
    s, ch = runs.get("vaekit SELFIES VAE"), runs.get("CharRNN, SMILES tokens (this run)")
    ch_selfies = runs.get("CharRNN, SELFIES tokens (this run)")

    def check(label, value, ok):
        targets.append(f"| {label} | {fmt(value)} | {'met' if ok else '**missed**'} |")

    if s:
        m = s["metrics"]
        check("SELFIES valid >= 0.99", m["valid"], m["valid"] >= 0.99)
        check("SELFIES unique@10k >= 0.99", m["unique@10000"], m["unique@10000"] >= 0.99)
        check("SELFIES novelty >= 0.9", m["novelty"], m["novelty"] >= 0.9)
        if ch:
            check(f"SELFIES FCD below the SMILES CharRNN's ({ch['metrics']['FCD']:.3f})", m["FCD"],
                  m["FCD"] < ch["metrics"]["FCD"])
        if ch_selfies:
            check(f"SELFIES FCD below the SELFIES CharRNN's ({ch_selfies['metrics']['FCD']:.3f})", m["FCD"],
                  m["FCD"] < ch_selfies["metrics"]["FCD"])
        check("SELFIES reconstruction (test) >= 0.7", s["reconstruction"], s["reconstruction"] >= 0.7)
    for label, sm in (("SMILES", runs.get("vaekit SMILES VAE")), ("Kekulé SMILES", runs.get("vaekit SMILES VAE, Kekulé form"))):
        if sm:
            m = sm["metrics"]
            check(f"{label} valid >= 0.9", m["valid"], m["valid"] >= 0.9)
            check(f"{label} unique@10k >= 0.99", m["unique@10000"], m["unique@10000"] >= 0.99)
            check(f"{label} novelty >= 0.9", m["novelty"], m["novelty"] >= 0.9)
    if small:
        m = small["metrics"]
        check("3,000 MOSES molecules: valid >= 0.98", m["valid"], m["valid"] >= 0.98)
        check("3,000 MOSES molecules: unique@1000 >= 0.95", m["unique@1000"], m["unique@1000"] >= 0.95)
        check("3,000 MOSES molecules: novelty >= 0.8", m["novelty"], m["novelty"] >= 0.8)
        check("3,000 MOSES molecules: reconstruction (held-out) >= 0.5", small["reconstruction_heldout"],
              small["reconstruction_heldout"] >= 0.5)
    opt_rows = []
    if opt:
        for row in opt["summary"]:
            d = row["threshold"]
            pub = JTVAE_PUBLISHED.get(round(d, 1), {})
            any_ = row.get("success_any", math.nan)
            opt_rows.append(f"| {d:.1f} | {row['improvement_mean']:.2f} ± {row['improvement_std']:.2f} | "
                            f"{row['similarity_mean']:.2f} ± {row['similarity_std']:.2f} | {row['success']:.1%} | "
                            f"{'–' if math.isnan(any_) else f'{any_:.1%}'} | "
                            f"{pub.get('improvement', '–')} | {pub.get('similarity', '–')} | "
                            f"{pub.get('success', math.nan):.1%} |")
            if round(d, 1) == 0.4:
                pi = float(pub["improvement"].split()[0])
                check("optimisation at similarity >= 0.4: mean improvement above JT-VAE's 0.84",
                      row["improvement_mean"], row["improvement_mean"] > pi)
                if not math.isnan(any_):
                    check("optimisation at similarity >= 0.4: success (JT-VAE's definition: any different molecule "
                          "at that similarity) above JT-VAE's 83.6%", any_, any_ > pub["success"])
                check("optimisation at similarity >= 0.4: success with a higher penalised logP (stricter than "
                      "JT-VAE's) above 83.6%", row["success"], row["success"] > pub["success"])

    if s and (args.work / "selfies_samples.smi").exists():
        grid = [x for x in (args.work / "selfies_samples.smi").read_text().splitlines() if x][:24]
        draw_grid(grid, RESULTS / "molecules_samples.png", per_row=6, size=230)

    parts = [*runs.values(), *(x for x in (opt, small) if x)]
    cmd = "`; `".join(r.get("command", "?") for r in parts) + "`; `python benchmarks/molecules.py --part report"
    any_run = next(iter(runs.values()))
    sp = s["params"] if s else {}
    arch = (f"latent_dim {sp.get('latent_dim')}, GRU encoder {sp.get('hidden', ['?'])[0]} per direction, GRU decoder "
            f"{sp.get('hidden', ['?', '?'])[1]} fed z at every step, embeddings {sp.get('embed_dim')}, beta "
            f"{sp.get('beta')} with linear KL warm-up, word dropout {sp.get('word_dropout')}, free bits "
            f"{sp.get('free_bits')}, Adam lr {sp.get('lr')}, batch {sp.get('batch_size')}") if s else ""
    out = [
        "# Molecules: SELFIES and SMILES VAEs vs a CharRNN on the JT-VAE ZINC subset", "",
        f"Commands (run as separate processes, each part cached in `{args.work}`): `{cmd}`. Dates (the parts' starts): "
        + ", ".join(sorted({r["started"][:10] for r in parts if "started" in r})) + ". "
        f"Machine: {any_run['machine']}; load averages at the parts' ends: "
        + ", ".join(f"{r['load_average_end']:.1f}" for r in parts if "load_average_end" in r) + ".", "",
        f"Data: trained on `zinc_jtvae_subset/valid.txt` ({s['n_train'] if s else '?'} molecules), tested on "
        "`test.txt` (5,000). Metrics on 10,000 samples from the prior (temperature 1); FCD, SNN, Frag and Scaf "
        "against the 5,000 test molecules; novelty against the training molecules. Reconstruction: greedy "
        "decoding of the posterior mean gives the same canonical SMILES, over all 5,000 test molecules. "
        f"Test log-likelihood: importance-weighted log p(x) (k = {s['k'] if s else '?'}) of each molecule's "
        f"canonical string for the VAEs, exact for the CharRNN, on the first {s['n_ll'] if s else '?'} test "
        "molecules, nats per molecule ± standard error; SELFIES and SMILES numbers are not comparable "
        "(different strings); the CharRNN's on SMILES tokens is comparable with the SMILES VAE's, the one on SELFIES "
        "tokens with the SELFIES VAE's.", "",
        f"Models: {arch}. Each model trained for the same budget of CPU time (1 thread; the process's CPU time, since other jobs "
        "shared the machine and wall-clock time would favour whichever ran on a quieter machine); the CharRNN is a "
        "GRU language model of the same decoder size, on SMILES tokens and, in a second row, on SELFIES tokens "
        "(vaekit's GRUDecoder and "
        "AutoregressiveCategorical with a constant input, trained by vaekit.train.fit).", "",
        *([f"**Read this as a starved run.** The VAEs trained {min(r['epochs'] for r in runs.values())}-"
           f"{max(r['epochs'] for r in runs.values())} epochs ({max(r['train_cpu_seconds'] for r in runs.values()) / 60:.0f} "
           f"CPU minutes at most, {max(r['train_seconds'] for r in runs.values()) / 60:.0f} minutes of wall time at "
           "most on the shared machine). Models this short are far from converged (reconstruction needs tens of "
           "epochs), so the misses below say what this budget gives, not what the method reaches; rerun with a "
           "larger `--minutes` (the parts are independent processes) for the intended comparison.", ""]
          if max(r["epochs"] for r in runs.values()) < 10 else []),
        *[f"The {name} row evaluates the model trained by `{r['trained_by']}` (started {r['trained_started'][:16]}), "
          "saved in the work folder and sampled and decoded again by this run's code"
          + (" with the SMILES syntax and valence mask on (the default since this run); the row below it is the "
             "same model decoded without the mask, in the same run" if "metrics_unmasked" in r else "") + "."
          for name, r in runs.items() if "trained_by" in r],
        *([""] if any("trained_by" in r for r in runs.values()) else []),
        "## MOSES metrics, reconstruction, likelihood", "", *table, "",
        "Epochs trained: " + ", ".join(f"{k} {v['epochs']}" for k, v in runs.items())
        + (f"; active latent units (SELFIES) {s['active_units']} of {sp.get('latent_dim')}" if s else "")
        + "".join(f", ({label}) {r['active_units']} of {r['params']['latent_dim']}" for label, r in
                  (("SMILES", runs.get("vaekit SMILES VAE")), ("Kekulé SMILES", runs.get("vaekit SMILES VAE, Kekulé form")))
                  if r) + ".", "",
        "The published MOSES rows are models trained on 1.6M MOSES molecules and scored against MOSES's test "
        "set: context, not like-for-like. The ZINC subset holds charged molecules ([NH+], [O-]), which MOSES's "
        "filters reject; the row of training molecules shows the ceiling for `filters` on this data.", "",
    ]
    if opt:
        out += ["## Constrained optimisation of penalised logP (JT-VAE's task, 800 molecules)", "",
                f"Property head: an MLP on the SELFIES model's posterior means of {opt['head']['n_molecules']:,} "
                f"training molecules (held-out R² {opt['head']['r2_heldout']:.3f}). From each start molecule: {opt['steps']} "
                f"normalised gradient steps of {opt['step_size']} in latent space; every point decoded greedily"
                + (f" and by {opt['samples_per_step']} samples of p(x|z)" if opt["samples_per_step"] else "")
                + (f"; besides the path, {opt['neighbours']} draws z ~ q(z|x) around the start decoded greedily"
                   if opt.get("neighbours") else "")
                + f"; on average {opt['candidates_mean']:.1f} distinct new molecules per start were scored with "
                "RDKit (true penalised logP, not the head). "
                "Improvement: mean ± std over all 800 starts (0 where nothing better was found); similarity: "
                "over successes; success (improved): a different molecule with higher penalised logP at that "
                "similarity; success (JT-VAE's definition): any different molecule at that similarity. "
                f"Run time {opt['seconds'] / 60:.0f} min.", "",
                "| similarity ≥ | improvement (vaekit) | similarity | success (improved) | success (JT-VAE's definition) | JT-VAE improvement | JT-VAE similarity | JT-VAE success |",
                "|---|---|---|---|---|---|---|---|", *opt_rows, "",
                "JT-VAE: Jin et al. 2018, Table 3 (80 gradient steps with learning rate 2 on a jointly trained "
                "property predictor, then a binary search along the path that decodes about 7 of its points: "
                "`molopt/optimize.py` and `JTPropVAE.optimize` in github.com/wengong-jin/icml18-jtnn). Its success "
                "counts a decoded molecule that differs from the start and meets the threshold (improvements may be "
                "negative); ours also requires a higher penalised logP. The delta = 0 row is reproduced by the "
                "JT-VAE repository's result file (`molopt/result-beta0.001/opt-lr2-it80-sim0.txt`: 1.907 ± 2.043 "
                "over the 800); the other rows are quoted from the paper's table and were not re-derived here.", ""]
    if small:
        m = small["metrics"]
        out += ["## Defaults on another chemical space: 3,000 MOSES molecules", "",
                f"`MoleculeVAE()` with library defaults ({small.get('random_strings', 0)} other SMILES of each "
                f"training molecule, {small['epochs']} epochs in {small['train_cpu_seconds'] / 60:.0f} CPU min"
                + (f"; training capped at {small['max_minutes']:.0f} CPU min" if small.get("max_minutes") else "")
                + f") on 3,000 random molecules of `moses/test.csv.gz`: 1,000 samples valid "
                f"{m['valid']:.3f}, unique {m['unique@1000']:.3f}, novel {m['novelty']:.3f}, IntDiv {m['IntDiv']:.3f}, "
                f"filters {m['filters']:.3f}; reconstruction {small['reconstruction_train']:.3f} on training "
                f"molecules and {small['reconstruction_heldout']:.3f} on 1,000 held-out MOSES molecules; active "
                f"units {small['active_units']}.", ""]
    missing = [key for key in [*(k for _, k in model_parts), "optimize", "moses3k"] if load_json(args.work, key) is None]
    if missing:
        out += [f"Parts without results in this run (not finished when this report was written): {', '.join(missing)}; "
                "their targets are not checked below.", ""]
    out += ["## Targets", "", "| target | measured | |", "|---|---|---|", *targets, "",
            "![sampled molecules](molecules_samples.png)", ""]
    (RESULTS / "molecules.md").write_text("\n".join(out))

    readme = ["## Molecules", "",
              "`vaekit.MoleculeVAE` is a sequence VAE for molecules: SELFIES (default: every decoded string is a "
              "molecule) or SMILES tokens (aromatic, or Kekulé form with `representation=\"kekule_smiles\"`), a "
              "vocabulary learned from the training molecules with an unknown-token slot, a GRU decoder conditioned "
              "on z, exact autoregressive likelihoods in nats, MOSES metrics with RDKit and fcd-torch, and latent "
              "property optimisation. SMILES decoding is masked by the SMILES grammar and by each atom's valence "
              "(exact in Kekulé form, where aromatic atoms do not occur), so Kekulé SMILES samples are almost "
              "always valid molecules. Install with `pip install vaekit[molecules]`.",
              "", "```python", "from vaekit import MoleculeVAE", "",
              "vae = MoleculeVAE().fit(smiles)              # invalid SMILES are reported and skipped",
              "new = vae.sample(1000)                       # canonical SMILES",
              "Z = vae.transform(smiles[:10]); vae.inverse_transform(Z)",
              "vae.score_samples(smiles[:10])               # importance-weighted log p(x), nats per molecule",
              "```", "", "```", "vaekit molecules fit smiles.txt --out mol/",
              "vaekit molecules sample mol/ -n 1000 --out new.smi",
              "vaekit molecules evaluate new.smi --train smiles.txt --test test.smi",
              "vaekit molecules optimize mol/ --property penalized_logp --start start.smi --out better.csv", "```", "",
              f"On the JT-VAE ZINC subset (24,445 training molecules, {s['train_cpu_seconds'] / 60 if s else 0:.0f} CPU "
              "minutes of one thread per model; `benchmarks/results/molecules.md`):", "", *table[: 2 + n_model_rows], "",
              *([f"These models trained only {max(r['epochs'] for r in runs.values())} epochs or fewer (a shared, "
                 "overloaded machine): far from converged, so most targets were missed; the results file says how to "
                 "rerun with the intended budget.", ""] if max(r["epochs"] for r in runs.values()) < 10 else []),
              *(["Constrained optimisation of penalised logP (800 molecules), vaekit vs JT-VAE (Jin et al. 2018):", "",
                 "| similarity ≥ | improvement (vaekit) | similarity | success (improved) | success (JT-VAE's definition) | JT-VAE improvement | JT-VAE similarity | JT-VAE success |",
                 "|---|---|---|---|---|---|---|---|", *opt_rows, ""] if opt else []),
              "![sampled molecules](benchmarks/results/molecules_samples.png)", ""]
    (RESULTS / "molecules_readme_section.md").write_text("\n".join(readme))
    print("\n".join(out))


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--part", required=True,
                   choices=("selfies", "smiles", "kekule_smiles", "charrnn", "charrnn_selfies", "optimize", "moses3k", "report"))
    p.add_argument("--minutes", type=float, default=25.0, help="training budget per model (CPU minutes)")
    p.add_argument("--kl-warmup-epochs", type=float, default=2.0, help="KL warm-up length in epochs")
    p.add_argument("--work", type=Path, default=Path("/tmp/vaekit_molecules_bench"))
    p.add_argument("--samples", type=int, default=10000)
    p.add_argument("--n-ll", type=int, default=1000, help="test molecules for the log-likelihood")
    p.add_argument("--k", type=int, default=50, help="importance samples for the VAEs' log-likelihood")
    p.add_argument("--n-opt", type=int, default=800)
    p.add_argument("--head-n", type=int, default=30000, help="training molecules the property head is fitted on")
    p.add_argument("--opt-steps", type=int, default=80, help="the library's default")
    p.add_argument("--step-size", type=float, default=0.1, help="the library's default")
    p.add_argument("--samples-per-step", type=int, default=2, help="the library's default")
    p.add_argument("--neighbours", type=int, default=300, help="the library's default")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--reuse-model", action="store_true",
                   help="selfies/smiles parts: evaluate the model an earlier run saved in --work instead of training")
    args = p.parse_args()
    torch.set_num_threads(1)
    warnings.simplefilter("ignore")
    args.work.mkdir(parents=True, exist_ok=True)
    {"selfies": lambda: part_vae(args, "selfies"), "smiles": lambda: part_vae(args, "smiles"),
     "kekule_smiles": lambda: part_vae(args, "kekule_smiles"),
     "charrnn": lambda: part_charrnn(args), "charrnn_selfies": lambda: part_charrnn(args, "selfies"),
     "optimize": lambda: part_optimize(args),
     "moses3k": lambda: part_moses3k(args), "report": lambda: part_report(args)}[args.part]()


if __name__ == "__main__":
    sys.exit(main())
