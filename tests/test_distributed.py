"""Data-parallel training: two processes on CPU with gloo give one model, a correct shard of the data
per rank, metrics over all ranks, and files from rank 0 only."""

from __future__ import annotations

import json
import os
import socket

import pytest
import torch
import torch.multiprocessing as mp

from vaekit import ModelConfig, TrainConfig, build_model, fit
from vaekit.distributed import shard


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def toy_data(n: int = 96, d: int = 12) -> torch.Tensor:
    g = torch.Generator().manual_seed(0)
    proto = (torch.rand(3, d, generator=g) > 0.5).float()
    x = proto[torch.randint(0, 3, (n,), generator=g)]
    flip = torch.rand(n, d, generator=g) < 0.05
    return torch.where(flip, 1 - x, x)


CFG = {"epochs": 3, "batch_size": 16, "lr": 3e-3, "progress": False, "device": "cpu", "seed": 1}


def worker(rank: int, world: int, port: int, out: str) -> None:
    os.environ.update(MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port), RANK=str(rank), WORLD_SIZE=str(world),
                      LOCAL_RANK=str(rank))
    torch.manual_seed(100 + rank)  # different initial weights per rank: DDP must broadcast rank 0's
    model = build_model(ModelConfig(input_shape=(12,), latent_dim=2, hidden=(16,)))
    x = toy_data()
    seen = []
    from vaekit.objectives import elbo

    def recording(model, xb, yb=None, **kw):
        if model.training:
            seen.append(xb.shape[0])
        return elbo(model, xb, yb, **kw)

    history = fit(model, x, x_val=x[:30], config=TrainConfig(**CFG), out_dir=f"{out}/run", objective=recording)
    flat = torch.cat([p.detach().flatten() for p in model.parameters()])
    torch.save({"params": flat, "records": history.records, "batches": seen}, f"{out}/rank{rank}.pt")
    torch.distributed.destroy_process_group()


@pytest.fixture(scope="module")
def two_ranks(tmp_path_factory):
    out = tmp_path_factory.mktemp("ddp")
    mp.start_processes(worker, args=(2, free_port(), str(out)), nprocs=2, join=True, start_method="spawn")
    return out, [torch.load(out / f"rank{r}.pt", weights_only=True) for r in range(2)]


def test_two_gloo_ranks_end_with_identical_weights_and_metrics(two_ranks):
    _, (r0, r1) = two_ranks
    assert torch.equal(r0["params"], r1["params"])
    # metrics are summed over ranks, so every rank reports the same numbers (wall time aside)
    assert [without_seconds(r) for r in r0["records"]] == [without_seconds(r) for r in r1["records"]]
    assert r0["batches"] == [8] * 18 and r1["batches"] == [8] * 18  # global batch 16 = 2 x 8; 96/16 = 6 steps x 3
    assert r0["records"][-1]["val_elbo"] > r0["records"][0]["val_elbo"]  # it learned


def without_seconds(record: dict) -> dict:
    return {k: v for k, v in record.items() if k != "seconds"}


def test_only_rank_zero_writes_and_quality_matches_one_process(two_ranks, tmp_path):
    out, (r0, _) = two_ranks
    names = sorted(p.name for p in (out / "run").iterdir())
    assert names == ["checkpoint.pt", "metrics.jsonl"]
    lines = (out / "run" / "metrics.jsonl").read_text().splitlines()
    assert [json.loads(line)["epoch"] for line in lines] == [1, 2, 3]
    torch.manual_seed(100)
    model = build_model(ModelConfig(input_shape=(12,), latent_dim=2, hidden=(16,)))
    single = fit(model, toy_data(), x_val=toy_data()[:30], config=TrainConfig(**CFG))
    # same global batch and step count: the final validation ELBO agrees within noise (nats)
    assert abs(single.records[-1]["val_elbo"] - r0["records"][-1]["val_elbo"]) < 1.0


def test_shard_gives_each_rank_an_equal_disjoint_slice_of_every_global_batch(monkeypatch):
    import vaekit.distributed as d

    perm = torch.randperm(10, generator=torch.Generator().manual_seed(0))
    monkeypatch.setattr(d, "world_size", lambda: 2)
    parts = []
    for r in range(2):
        monkeypatch.setattr(d, "rank", lambda r=r: r)
        mine, local = shard(perm, 4)
        parts.append(mine)
        assert local == 2 and len(mine) == 6  # 10 padded to 12 = 3 steps x 2 ranks x 2
    both = torch.stack([p.view(3, 2) for p in parts], 1).reshape(-1)  # step-major, rank, local batch
    assert torch.equal(both[:10], perm) and torch.equal(both[10:], perm[:2])


@pytest.mark.slow
def test_torchrun_two_processes_train_through_the_cli(tmp_path):
    """torchrun --nproc_per_node=2 -m vaekit train: one run directory, written by rank 0."""
    import subprocess
    import sys

    from vaekit.io import load_model

    out = tmp_path / "run"
    cmd = [sys.executable, "-m", "torch.distributed.run", "--nproc_per_node=2", "--master_port", str(free_port()),
           "-m", "vaekit", "train", "digits", "--out", str(out), "--k", "10",
           "--set", "train.epochs=2", "--set", "train.progress=false"]
    done = subprocess.run(cmd, capture_output=True, text=True, timeout=600, cwd=tmp_path)
    assert done.returncode == 0, done.stderr[-2000:]
    assert done.stdout.count("run written to") == 1  # rank 0 alone reports and writes
    _, _, extra = load_model(out)
    lines = (out / "metrics.jsonl").read_text().splitlines()
    assert len(lines) == 2 and extra["training"]["epochs"] == 2
