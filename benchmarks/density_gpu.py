"""How row (e) of benchmarks/results/density_mnist.md was made on a GPU lent for a few minutes: config (e)
trained with `vaekit train` for as many epochs as fit the time left, then evaluated by density_mnist.py with
k = 5000 on all 10,000 test images. It runs two calibration epochs, times k = 5000 on 20 test images to
predict the evaluation, sets train.epochs (and patience) to what fits ``TOTAL_S`` seconds in all, trains,
copies the run to $OUT/e and stores the row in $OUT/density_mnist.json (a copy of the committed rows plus
this one). Its output for the committed row (run from an untracked copy, .gpu/run.py, with the same code):
benchmarks/results/density_mnist_e_gpu.log.

    TOTAL_S=535 DATA_DIR=.gpu OUT=/tmp/out python3 benchmarks/density_gpu.py

Environment: TOTAL_S (seconds for the whole run), DEV (cuda), DATA_DIR (a folder holding
binarized_mnist/binarized_mnist.npz), OUT, CAL_EPOCHS (2), EVAL_N (10000), EVAL_K (5000).
"""
import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

T0 = time.time()
TOTAL = float(os.environ.get("TOTAL_S", "555"))
DEV = os.environ.get("DEV", "cuda")
DATA = os.environ.get("DATA_DIR", ".gpu")
OUT = Path(os.environ.get("OUT", "/tmp/out"))
CAL_EPOCHS = int(os.environ.get("CAL_EPOCHS", "2"))
EVAL_N = int(os.environ.get("EVAL_N", "10000"))
K = int(os.environ.get("EVAL_K", "5000"))
CFG = "configs/density/e_conv_hvae_vamp.toml"
SRC = f"data.source={DATA}/binarized_mnist/binarized_mnist.npz"
PY = sys.executable
env = dict(os.environ, PYTHONPATH=f"{os.getcwd()}/src:{os.getcwd()}/benchmarks", PYTHONUNBUFFERED="1")

def log(*a):
    print(f"[{time.time() - T0:6.1f} s]", *a, flush=True)

def train(epochs, out, k):
    cmd = [PY, "-m", "vaekit", "train", "--config", CFG, "--set", SRC, "--set", f"train.epochs={epochs}",
           "--set", f"train.patience={epochs}", "--set", f"train.device={DEV}", "--out", out, "--k", str(k),
           "--overwrite"]
    log("run", " ".join(cmd))
    t = time.time()
    subprocess.run(cmd, env=env, check=True)
    return time.time() - t

shutil.rmtree("/tmp/cal", ignore_errors=True)
cal_wall = train(CAL_EPOCHS, "/tmp/cal", 1)
recs = [json.loads(l) for l in open("/tmp/cal/metrics.jsonl") if l.strip()]
s_epoch = recs[-1]["seconds"]
fixed = cal_wall - sum(r["seconds"] for r in recs)
log(f"calibration: wall {cal_wall:.1f} s, epoch seconds {[round(r['seconds'], 2) for r in recs]}, fixed {fixed:.1f} s")

sys.path[:0] = [f"{os.getcwd()}/src", f"{os.getcwd()}/benchmarks"]
import numpy as np, torch
from vaekit.run import load_run
from vaekit.evaluate import log_likelihood
model = load_run("/tmp/cal")[0].to(DEV)
x = torch.from_numpy(np.load(f"{DATA}/binarized_mnist/binarized_mnist.npz")["test"][:40].astype(np.float32)).reshape(-1, 1, 28, 28)
log_likelihood(model, x[:2], k=K)
if DEV.startswith("cuda"):
    torch.cuda.synchronize()
t = time.time(); ll = log_likelihood(model, x[:20], k=K); dt = time.time() - t
eval_pred = dt * EVAL_N / 20 * 1.15 + 25
log(f"k=5000 on 20 images: {dt:.2f} s (mean {float(ll.mean()):.1f}); predicted evaluation {eval_pred:.0f} s")
del model
left = TOTAL - (time.time() - T0) - eval_pred - fixed - 20
epochs = int(left / s_epoch)
log(f"time left for training {left:.0f} s -> {epochs} epochs at {s_epoch:.2f} s/epoch")
if epochs < 1:
    sys.exit("no time to train")
train(epochs, "/tmp/e", 100)
(OUT / "e").mkdir(parents=True, exist_ok=True)
for f in ("config.toml", "config.json", "metrics.jsonl", "model.safetensors", "evaluation.json"):
    if Path("/tmp/e", f).exists():
        shutil.copy(Path("/tmp/e", f), OUT / "e" / f)
log("model copied; evaluating")
shutil.copy("benchmarks/results/density_mnist.json", OUT / "density_mnist.json")
Path("/tmp/res").mkdir(exist_ok=True)
trained = (f"python -m vaekit train --config {CFG} --set {SRC} --set train.epochs={epochs} "
           f"--set train.patience={epochs} --set train.device={DEV} --out /tmp/e --k 100 --overwrite")
subprocess.run([PY, "benchmarks/density_mnist.py", "--config", "e", "--from-run", "/tmp/e", "--device", DEV,
                "--k", str(K), "--n-test", str(EVAL_N), "--data-dir", DATA, "--rows", str(OUT / "density_mnist.json"),
                "--out", "/tmp/res/density_mnist.md", "--trained-with", trained], env=env, check=True,
               stdout=open("/tmp/res/eval_stdout.txt", "w"))
row = json.load(open(OUT / "density_mnist.json"))["e"]
log({k: v for k, v in row.items() if k != "curve"})
log("curve (epoch, train, val):", row["curve"][:: max(1, len(row["curve"]) // 25)], row["curve"][-1])
log("done")
