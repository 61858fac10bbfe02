"""Do the benchmark numbers survive a refactor? Short runs of the same benchmark, with the same settings
and seeds, on this release and on an earlier one (a git worktree), side by side.

Parts (``--parts``; an empty value only rewrites the report from ``--json``):
  init     row (a)'s model built with seed 0 by each release: same initial weights or not?
  density  short rows of ``benchmarks/density_mnist.py`` (default: (a) 10 epochs and (d) 2 epochs,
           k = 100, 1,000 test images); each release runs its own copy of the script.
  anomaly  the ODDS protocol of ``benchmarks/anomaly.py`` on all 17 sets, splits 0-2, vaekit's
           ``AnomalyDetector`` with library defaults only; the harness of this release runs on both
           releases' libraries (it imports only ``vaekit.apps.anomaly.AnomalyDetector``).

The two releases run at the same time (one process each, one torch thread each), so they share the
machine alike. Raw results go to ``--json`` (committed beside the report); the report
``benchmarks/results/reproduction.md`` is written from it, so a rerun of one part keeps the other.

    python benchmarks/reproduce.py                       # both parts, old release = commit 063a4d9
    python benchmarks/reproduce.py --parts density --density-configs a:5
"""

from __future__ import annotations

import argparse
import json
import math
import os
import re
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import torch
from common import DATA, RESULTS, ROOT, command, header, machine, now, write

OLD = "063a4d9"


def worktree(rev: str, path: Path) -> Path:
    """A checkout of ``rev`` at ``path`` (created with ``git worktree add`` when missing)."""
    if not (path / "src" / "vaekit").exists():
        subprocess.run(["git", "-C", str(ROOT), "worktree", "add", "--detach", str(path), rev], check=True)
    head = subprocess.run(["git", "-C", str(path), "rev-parse", "--short", "HEAD"], capture_output=True,
                          text=True, check=True).stdout.strip()
    if not rev.startswith(head) and not head.startswith(rev):
        raise SystemExit(f"error: {path} holds commit {head}, not {rev}; pass another --old-tree.")
    return path


def release(tree: Path) -> str:
    out = subprocess.run([sys.executable, "-c", "import vaekit; print(vaekit.__version__)"], env=env_for(tree),
                         capture_output=True, text=True, check=True).stdout.strip()
    rev = subprocess.run(["git", "-C", str(tree), "rev-parse", "--short", "HEAD"], capture_output=True, text=True,
                         check=True).stdout.strip()
    dirty = subprocess.run(["git", "-C", str(tree), "status", "--porcelain", "--", "src", "benchmarks"],
                           capture_output=True, text=True, check=True).stdout.strip()
    return f"vaekit {out}, commit {rev}" + (" + uncommitted changes" if dirty else "")


def env_for(tree: Path) -> dict:
    return {**os.environ, "PYTHONPATH": str(tree / "src"), "OMP_NUM_THREADS": "1"}


def run_pair(jobs: dict[str, tuple[list[str], Path, Path]]) -> dict[str, float]:
    """Start every job (name -> (argv, tree whose library it imports, log file)) at once; wait; raise if
    one failed. Returns wall seconds per job."""
    procs, t0, walls = {}, time.perf_counter(), {}
    for name, (argv, tree, log) in jobs.items():
        log.parent.mkdir(parents=True, exist_ok=True)
        procs[name] = subprocess.Popen(argv, cwd=Path(argv[1]).parent, env=env_for(tree), stdout=log.open("w"),
                                       stderr=subprocess.STDOUT)
        print(f"started {name}: {' '.join(argv)} (log {log})", flush=True)
    for name, proc in procs.items():
        if proc.wait() != 0:
            for other in procs.values():
                other.terminate()
            raise SystemExit(f"error: {name} failed (exit {proc.returncode}); see {jobs[name][2]}")
        walls[name] = time.perf_counter() - t0
    return walls


# -- init: do the two releases start from the same weights? -----------------------------------------
INIT = """
import json, torch
from vaekit import ModelConfig, build_model
torch.manual_seed(0)
m = build_model(ModelConfig(input_shape=(784,), latent_dim=50, hidden=(200, 200), activation="tanh"))
print(json.dumps({n: [list(p.shape), float(p.detach().double().sum())] for n, p in m.named_parameters()}))
"""


def init(args, trees: dict[str, Path]) -> dict:
    """Parameter shapes and sums of row (a)'s model built with seed 0 by each release."""
    out = {}
    for name, tree in trees.items():
        res = subprocess.run([sys.executable, "-c", INIT], env=env_for(tree), capture_output=True, text=True,
                             check=True)
        out[name] = json.loads(res.stdout.strip().splitlines()[-1])
    return {"params": out}


def init_section(part: dict) -> list[str]:
    old, new = part["params"]["old"], part["params"]["new"]
    same = [n for n in new if n in old and old[n] == new[n]]
    differ = [n for n in new if n not in same]
    return ["## Initial weights", "",
            ("Row (a)'s model, `build_model(ModelConfig(input_shape=(784,), latent_dim=50, hidden=(200, 200), "
             "activation='tanh'))` after `torch.manual_seed(0)`, built by each release: parameter names and shapes "
             + ("agree" if set(old) == set(new) and all(old[n][0] == new[n][0] for n in new) else "differ")
             + f"; {len(same)} of {len(new)} tensors have the same values (sum to double precision)"
             + (f"; different: {', '.join(differ)}" if differ else "")
             + ". Where they differ, the same seed gives the two releases different initial weights, so their "
               "training runs below are different random draws of the same procedure."), ""]


# -- density ----------------------------------------------------------------------------------------
def density(args, trees: dict[str, Path]) -> dict:
    out = {"configs": {}, "settings": {}}
    for item in args.density_configs.split(","):
        config, _, epochs = item.partition(":")
        flags = ["--config", config, "--epochs", epochs or str(args.density_epochs), "--max-minutes", "100000",
                 "--warmup-epochs", str(args.density_warmup), "--k", str(args.density_k), "--n-test",
                 str(args.density_n_test), "--seed", "0", "--samples-per-chunk", "20000", "--threads", "1",
                 "--data-dir", str(args.data)]
        jobs = {}
        for name, tree in trees.items():
            work = Path(args.work) / name / "density"
            extra = ["--rows", str(work / "rows.json")] if name == "new" else []
            jobs[name] = ([sys.executable, str(tree / "benchmarks" / "density_mnist.py"), *flags,
                           "--cache-dir", str(work / "cache"), "--out", str(work / "density_mnist.md"), *extra],
                          tree, work / f"{config}.log")
        walls = run_pair(jobs)
        rows = {}
        for name in trees:
            work = Path(args.work) / name / "density"
            rows[name] = (json.loads((work / "rows.json").read_text())[config] if name == "new"
                          else json.loads((work / "cache" / f"{config}.json").read_text()))
            rows[name]["wall_s"] = walls[name]
        out["configs"][config] = rows
        out["settings"][config] = "python benchmarks/density_mnist.py " + " ".join(flags)
    return out


def density_section(part: dict) -> list[str]:
    lines = ["## Density: short rows of `benchmarks/density_mnist.py`", "",
             "Each release trains with its own copy of the script and the same flags (seed 0, float32); the "
             "hierarchical row (d) is built by `HierarchicalVAE.mlp` and scored by `vaekit.hierarchical` in the old "
             "release, and by `build_model(ModelConfig(family='hierarchical', ...))` and the core "
             "`vaekit.evaluate` functions in the new one. NLL ± standard error over the test images; active "
             "units per layer (top first for the new release; the old one names them).", ""]
    for config, rows in part["configs"].items():
        o, n = rows["old"], rows["new"]
        lines += [f"### {n['title']}", "", f"Flags: `{part['settings'][config]}`", "",
                  "| | old release | new release | new - old |", "|---|---|---|---|"]
        for label, key, fmt in (("test NLL (nats), k = " + str(n["k"]) + f", {n['n_test']} images", "nll", ".2f"),
                                ("test ELBO (nats), 10,000 images", "test_elbo", ".2f"),
                                ("test KL (nats)", "test_kl", ".2f"),
                                ("best validation ELBO (nats)", "best_val", ".2f"),
                                ("epochs (best)", "epochs", "d"), ("parameters", "n_params", ",d"),
                                ("training time (s)", "train_s", ".0f"), ("wall time incl. evaluation (s)", "wall_s", ".0f")):
            a, b = o.get(key), n.get(key)
            cell_a = "-" if a is None else format(a, fmt) + (f" ± {o['nll_se']:.2f}" if key == "nll" else "")
            cell_b = "-" if b is None else format(b, fmt) + (f" ± {n['nll_se']:.2f}" if key == "nll" else "")
            if key == "epochs":
                cell_a, cell_b = f"{a} ({o['best_epoch']})", f"{b} ({n['best_epoch']})"
            diff = "-" if a is None or b is None or key in ("epochs",) else format(b - a, "+" + fmt.lstrip(","))
            lines.append(f"| {label} | {cell_a} | {cell_b} | {diff} |")
        units = {name: (", ".join(f"{k} {v}" for k, v in r["active_units"].items())
                        if isinstance(r["active_units"], dict) else str(r["active_units"])) for name, r in rows.items()}
        lines += [f"| active units | {units['old']} | {units['new']} | |", ""]
        se = math.hypot(o["nll_se"], n["nll_se"])
        d = n["nll"] - o["nll"]
        lines += [(f"NLL difference new - old: {d:+.2f} nats; the two standard errors combined: {se:.2f} nats "
                   f"({abs(d) / se:.1f} of them)" if se > 0 else f"NLL difference new - old: {d:+.2f} nats"), ""]
    return lines


# -- anomaly ----------------------------------------------------------------------------------------
def anomaly(args, trees: dict[str, Path]) -> dict:
    jobs = {}
    for name, tree in trees.items():  # this release's harness; the tree decides which library it imports
        work = Path(args.work) / name / "anomaly"
        jobs[name] = ([sys.executable, str(ROOT / "benchmarks" / "anomaly.py"), "--part", "odds", "--methods", "vaekit",
                       "--splits", str(args.splits), "--big-splits", str(args.splits), "--cache", str(work),
                       "--data", str(args.data), *(["--no-bf16-hardware"] if args.anomaly_no_bf16 else []),
                       "--threads", "1"], tree, work / "odds.log")
    walls = run_pair(jobs)
    out = {"settings": f"python benchmarks/anomaly.py --part odds --methods vaekit --splits {args.splits} "
                       f"--big-splits {args.splits} --threads 1" + (" --no-bf16-hardware" if args.anomaly_no_bf16 else ""),
           "no_bf16_hardware": bool(args.anomaly_no_bf16), "runs": {}}
    for name in trees:
        part = json.loads((Path(args.work) / name / "anomaly" / "odds.json").read_text())
        out["runs"][name] = {"rows": part["rows"], "machine": part["machine"], "wall_s": walls[name]}
    return out


def committed_anomaly(spec: str) -> dict[str, float]:
    """vaekit's mean ROC AUC per set from a committed anomaly report (``REV:PATH``)."""
    try:
        text = subprocess.run(["git", "-C", str(ROOT), "show", spec], capture_output=True, text=True,
                              check=True).stdout
    except subprocess.CalledProcessError:
        return {}
    return {name: float(roc.strip("*")) for name, roc in
            re.findall(r"^\| ([\w-]+) \| \d+ \| \d+ \| \d+ \| ([*\d.]+) \|", text, re.M)}


def anomaly_section(part: dict, committed_spec: str) -> list[str]:
    old, new = ({(r["dataset"], r["split"]): r for r in part["runs"][k]["rows"]} for k in ("old", "new"))
    keys = sorted(set(old) & set(new))
    sets = sorted({d for d, _ in keys})
    ref = committed_anomaly(committed_spec)
    splits = sorted({s for _, s in keys})
    lines = [f"## Anomaly: ODDS, vaekit `AnomalyDetector()` (library defaults), splits {splits[0]}-{splits[-1]}", "",
             f"Both releases run this release's harness: `{part['settings']}` (PyOD's protocol: stratified 60/40 "
             "split, standardised on the train part; test ROC AUC), with `PYTHONPATH` pointing at each release's "
             "library. "
             + ("With `--no-bf16-hardware`, `precision='auto'` (a library default) sees a CPU without bf16 "
                "hardware and trains in float32 in both releases; left to itself on a CPU with avx512_bf16/amx_bf16 "
                "it resolves differently in the two releases. " if part.get("no_bf16_hardware") else "")
             + "The last column is the vaekit column of the committed full run (10 splits, library defaults), read "
             f"from `{committed_spec}` (machine and precision as named there), for scale: other splits.", "",
             "| dataset | ROC old release | ROC new release | new - old | committed 10-split mean |",
             "|---|---|---|---|---|"]
    diffs = []
    for name in sets:
        a = np.array([old[(name, s)]["roc_auc"] for s in splits if (name, s) in old])
        b = np.array([new[(name, s)]["roc_auc"] for s in splits if (name, s) in new])
        diffs += list(b - a)
        lines.append(f"| {name} | {a.mean():.3f} | {b.mean():.3f} | {b.mean() - a.mean():+.3f} | "
                     + (f"{ref[name]:.3f}" if name in ref else "-") + " |")
    mo = np.mean([np.mean([old[(n, s)]["roc_auc"] for s in splits]) for n in sets])
    mn = np.mean([np.mean([new[(n, s)]["roc_auc"] for s in splits]) for n in sets])
    mr = np.mean([ref[n] for n in sets]) if all(n in ref for n in sets) else float("nan")
    lines.append(f"| **mean ({len(sets)} sets)** | **{mo:.3f}** | **{mn:.3f}** | **{mn - mo:+.3f}** | **{mr:.3f}** |")
    d = np.array(diffs)
    same = int((np.abs(d) < 1e-12).sum())
    lines += ["", (f"Per (set, split) pair, new - old ROC AUC: mean {d.mean():+.4f}, standard error "
                   f"{d.std(ddof=1) / math.sqrt(len(d)):.4f} over {len(d)} pairs; largest |difference| "
                   f"{np.abs(d).max():.3f}; identical in {same} of {len(d)} pairs. Seconds per fit (mean): old "
                   f"{np.mean([r['seconds'] for r in old.values()]):.1f}, new "
                   f"{np.mean([r['seconds'] for r in new.values()]):.1f}."), ""]
    return lines


PARTS = {"init": init, "density": density, "anomaly": anomaly}


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--parts", default="init,density,anomaly")
    p.add_argument("--old", default=OLD, help="the earlier release's commit")
    p.add_argument("--old-tree", default="/tmp/old063", help="its git worktree (created when missing)")
    p.add_argument("--work", default="/tmp/vaekit_reproduce", help="logs, saved models and raw part results")
    p.add_argument("--data", default=str(DATA), help="the shared data folder (both releases read it)")
    p.add_argument("--density-configs", default="a:10,d:2", help="CONFIG[:EPOCHS],...")
    p.add_argument("--density-epochs", type=int, default=3)
    p.add_argument("--density-warmup", type=float, default=1.0, help="KL warm-up epochs for (b) and (d)")
    p.add_argument("--density-k", type=int, default=100)
    p.add_argument("--density-n-test", type=int, default=1000)
    p.add_argument("--splits", type=int, default=3, help="anomaly: splits 0..N-1 of every ODDS set")
    p.add_argument("--anomaly-no-bf16", action=argparse.BooleanOptionalAction, default=True,
                   help="run anomaly.py with --no-bf16-hardware (float32 in both releases)")
    p.add_argument("--committed-anomaly", default="c5de12d:benchmarks/results/anomaly.md")
    p.add_argument("--json", default=str(RESULTS / "reproduction.json"))
    p.add_argument("--merge", nargs="*", default=[], help="raw-result JSON files of other runs of this script: "
                   "their parts are copied into --json before the report is written")
    p.add_argument("--out", default=str(RESULTS / "reproduction.md"))
    args = p.parse_args(argv)
    parts = [v.strip() for v in args.parts.split(",") if v.strip()]
    if set(parts) - set(PARTS):
        p.error(f"--parts takes a comma-separated subset of {', '.join(PARTS)} (empty: only rewrite the report); "
                f"got {args.parts!r}.")
    torch.set_num_threads(1)
    started = time.perf_counter()
    trees = {"old": worktree(args.old, Path(args.old_tree)), "new": ROOT}
    store = json.loads(Path(args.json).read_text()) if Path(args.json).exists() else {}
    for other in args.merge:
        store.update(json.loads(Path(other).read_text()))
    Path(args.json).write_text(json.dumps(store, indent=1) + "\n")
    for part in parts:
        t0 = time.perf_counter()
        result = PARTS[part](args, trees)
        store[part] = {**result, "command": command(argv), "date": now(), "machine": machine(),
                       "releases": {k: release(t) for k, t in trees.items()}, "wall_s": time.perf_counter() - t0}
        Path(args.json).write_text(json.dumps(store, indent=1) + "\n")
    lines = header("Reproduction: the same short benchmark runs on the previous and the current release",
                   argv, time.perf_counter() - started)
    lines += ["Written by `benchmarks/reproduce.py` from the raw results in "
              f"`{Path(args.json).name}`; each part names the command, date and machine of its own run.", ""]
    for part in PARTS:
        if part in store:
            s = store[part]
            lines += [f"Part {part}: `{s['command']}`, {s['date']}, {s['machine']}; old release: "
                      f"{s['releases']['old']}; new release: {s['releases']['new']}; part wall time "
                      f"{s['wall_s'] / 60:.1f} min.", ""]
    if "init" in store:
        lines += init_section(store["init"])
    if "density" in store:
        lines += density_section(store["density"])
    if "anomaly" in store:
        lines += anomaly_section(store["anomaly"], args.committed_anomaly)
    write(args.out, lines)
    print(f"wrote {args.out}", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
