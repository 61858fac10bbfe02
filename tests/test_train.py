"""The training loop: determinism, exact resume, divergence, early stopping (STYLE.md tests 6, 8)."""

import json

import pytest
import torch
from torch.utils.data import DataLoader, TensorDataset

from vaekit import ModelConfig, TrainConfig, build_model, fit
from vaekit.evaluate import dataset_elbo
from vaekit.objectives import elbo
from vaekit.train import CHECKPOINT, METRICS, TrainingDiverged, load_checkpoint

CFG = ModelConfig(input_shape=(20,), latent_dim=3, hidden=(32,))


def data(n=256, seed=0):
    g = torch.Generator().manual_seed(seed)
    protos = (torch.rand(4, 20, generator=g) > 0.5).float()
    x = protos[torch.randint(0, 4, (n,), generator=g)]
    flip = torch.rand(n, 20, generator=g) < 0.05
    return torch.where(flip, 1 - x, x)


def train(epochs=3, seed=0, **kw):
    torch.manual_seed(seed)
    model = build_model(CFG)
    settings = {"batch_size": 32, "lr": 3e-3, "progress": False}
    settings.update({k: v for k, v in kw.items() if k in TrainConfig.__dataclass_fields__})
    cfg = TrainConfig(epochs=epochs, seed=seed, **settings)
    rest = {k: v for k, v in kw.items() if k not in TrainConfig.__dataclass_fields__}
    history = fit(model, rest.pop("x", data()), config=cfg, **rest)
    return model, history


def same_weights(a, b):
    return all(torch.equal(p, q) for p, q in zip(a.state_dict().values(), b.state_dict().values()))


def test_same_seed_same_weights_and_different_seed_differs():
    a, _ = train(seed=0)
    b, _ = train(seed=0)
    c, _ = train(seed=1)
    assert same_weights(a, b)
    assert not same_weights(a, c)


def test_training_lowers_the_loss_on_a_fixed_batch():
    torch.manual_seed(0)
    model = build_model(CFG)
    x = data(64)
    opt = torch.optim.Adam(model.parameters(), lr=1e-2)
    torch.manual_seed(1)
    before = elbo(model, x).loss.item()
    for _ in range(30):
        opt.zero_grad()
        elbo(model, x).loss.backward()
        opt.step()
    torch.manual_seed(1)
    assert elbo(model, x).loss.item() < before - 1.0


def test_evaluation_changes_nothing():
    model, _ = train(epochs=1)
    state = {k: v.clone() for k, v in model.state_dict().items()}
    rng = torch.get_rng_state()
    first = dataset_elbo(model, data())
    assert dataset_elbo(model, data()) == first  # deterministic
    assert torch.equal(torch.get_rng_state(), rng)
    assert all(torch.equal(state[k], v) for k, v in model.state_dict().items())


def test_resume_equals_uninterrupted(tmp_path):
    full, _ = train(epochs=4, out_dir=tmp_path / "full", lr_schedule="cosine", x_val=data(64, seed=3))

    def stop_after_two(record, model):
        return record["epoch"] == 2

    _part, h = train(epochs=4, out_dir=tmp_path / "part", lr_schedule="cosine", x_val=data(64, seed=3),
                    callbacks=[stop_after_two])
    assert len(h.records) == 2 and load_checkpoint(tmp_path / "part")["epoch"] == 2
    resumed, h2 = train(epochs=4, out_dir=tmp_path / "part", lr_schedule="cosine", x_val=data(64, seed=3),
                        resume=True)
    assert [r["epoch"] for r in h2.records] == [1, 2, 3, 4]
    assert same_weights(full, resumed)
    lines = (tmp_path / "part" / METRICS).read_text().splitlines()
    assert [json.loads(line)["epoch"] for line in lines] == [1, 2, 3, 4]


def test_interrupt_mid_epoch_leaves_a_resumable_checkpoint(tmp_path, monkeypatch):
    import vaekit.train as train_module

    calls = {"n": 0}
    real = train_module.OBJECTIVES["elbo"]

    def flaky(*args, **kwargs):
        calls["n"] += 1
        if calls["n"] == 13:  # batch 5 of epoch 2 (8 batches per epoch)
            raise KeyboardInterrupt
        return real(*args, **kwargs)

    monkeypatch.setitem(train_module.OBJECTIVES, "elbo", flaky)
    with pytest.raises(KeyboardInterrupt):
        train(epochs=3, out_dir=tmp_path)
    ckpt = load_checkpoint(tmp_path)
    assert (ckpt["epoch"], ckpt["batch"]) == (1, 4)
    monkeypatch.setitem(train_module.OBJECTIVES, "elbo", real)
    _, h = train(epochs=3, out_dir=tmp_path, resume=True)
    assert [r["epoch"] for r in h.records] == [1, 2, 3]


def test_nan_loss_stops_with_a_clear_error_and_keeps_the_last_good_checkpoint(tmp_path):
    train(epochs=1, out_dir=tmp_path)
    good = load_checkpoint(tmp_path)
    bad = data()
    bad[7, 3] = float("nan")
    with pytest.raises(TrainingDiverged, match=r"NaN or infinite.*last good checkpoint"):
        train(epochs=3, out_dir=tmp_path, resume=True, x=bad)
    kept = load_checkpoint(tmp_path)
    assert kept["epoch"] == 1
    assert all(torch.equal(good["model"][k], v) for k, v in kept["model"].items())


@pytest.mark.parametrize("precision", ["fp32", "bf16"])
def test_early_stopping_restores_the_best_weights(precision):
    """Whatever precision trains (both forced here, so both run on any CPU), validation is float32 and
    matches dataset_elbo exactly."""
    x_val = data(64, seed=9)
    best = {}

    def remember(record, model):
        if record["val_elbo"] >= max(best.get("v", -1e9), -1e9):
            best["v"] = record["val_elbo"]

    model, h = train(epochs=40, patience=2, lr=0.05, x_val=x_val, callbacks=[remember], precision=precision)
    assert h.precision == precision
    assert h.stopped_early and h.best_val_elbo == best["v"]
    assert len(h.records) == h.best_epoch + 2
    assert dataset_elbo(model, x_val)["elbo"] == pytest.approx(h.best_val_elbo, abs=1e-4)


def test_dataloader_path_trains():
    loader = DataLoader(TensorDataset(data()), batch_size=32, shuffle=True)
    _model, h = train(epochs=4, x=loader)
    assert h.records[-1]["train_elbo"] > h.records[0]["train_elbo"]


def test_metrics_log_and_checkpoint_are_written(tmp_path):
    train(epochs=2, out_dir=tmp_path, x_val=data(32))
    rows = [json.loads(line) for line in (tmp_path / METRICS).read_text().splitlines()]
    assert {"epoch", "train_loss", "train_elbo", "train_kl", "val_elbo", "val_kl"} <= rows[0].keys()
    assert (tmp_path / CHECKPOINT).exists()


def test_damaged_checkpoint_gives_a_clear_error(tmp_path):
    train(epochs=1, out_dir=tmp_path)
    (tmp_path / CHECKPOINT).write_bytes(b"garbage")
    with pytest.raises(ValueError, match="damaged"):
        train(epochs=2, out_dir=tmp_path, resume=True)


def test_lr_warmup_then_cosine_decay():
    from vaekit.train import lr_factor

    f = [lr_factor(s, total=100, warm=10, cosine=True) for s in range(101)]
    assert f[0] == pytest.approx(0.1) and f[9] == pytest.approx(1.0) and f[10] == pytest.approx(1.0)
    assert all(a >= b for a, b in zip(f[10:], f[11:], strict=False)) and f[100] == pytest.approx(0.0, abs=1e-12)
    assert lr_factor(50, total=100, warm=10, cosine=False) == 1.0
    _, h = train(epochs=4, x=data(64), batch_size=16, lr=1e-2, lr_schedule="cosine", lr_warmup=0.25)
    lrs = [r["lr"] for r in h.records]  # after epochs 1..4 of 4 steps: warm-up ends at step 4
    assert lrs[0] == pytest.approx(1e-2) and lrs[-1] == pytest.approx(0.0, abs=1e-9) and lrs[1] > lrs[2]


def test_binary_data_is_stored_as_uint8_and_trains_to_the_same_weights(monkeypatch):
    import vaekit.train as vt

    x = data(64)
    stored, dtype = vt.compact(x)
    assert stored.dtype == torch.uint8 and dtype == torch.float32 and torch.equal(stored.float(), x)
    for kept in (x + 0.5, torch.full((4, 10), float("nan")), -x, x * 300):
        assert vt.compact(kept)[1] is None  # fractions, NaN, negatives, > 255 stay as they are
    a, _ = train(epochs=2, x=x)
    monkeypatch.setattr(vt, "compact", lambda v: (v, None))
    b, _ = train(epochs=2, x=x)
    assert same_weights(a, b)
