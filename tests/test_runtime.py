"""Runtime policy: precision choice, float32 likelihoods under autocast, thread settings, and a
training loop that does not talk to the host every step."""

from __future__ import annotations

import pytest
import torch

import vaekit.runtime as rt
from vaekit import ModelConfig, TrainConfig, build_model, fit
from vaekit.objectives import elbo


def tiny_model(seed: int = 0):
    torch.manual_seed(seed)
    return build_model(ModelConfig(input_shape=(10,), latent_dim=2, hidden=(16,)))


def binary_data(n: int, seed: int = 0) -> torch.Tensor:
    return (torch.rand(n, 10, generator=torch.Generator().manual_seed(seed)) > 0.5).float()


def test_auto_precision_uses_bf16_only_for_big_models_on_cpus_that_have_it(monkeypatch):
    """Both CPU kinds are simulated, so both branches run on whichever machine runs the tests."""
    cpu = torch.device("cpu")
    small = rt.matmul_work(build_model(ModelConfig(input_shape=(64,), latent_dim=8, hidden=(256, 128))), 64)
    big = rt.matmul_work(build_model(ModelConfig(input_shape=(784,), latent_dim=32, hidden=(1024, 1024))), 512)
    assert small == 64 * (64 * 256 + 256 * 128 + 128 * 16 + 8 * 128 + 128 * 256 + 256 * 64)  # weights x batch
    assert small < rt.BF16_MIN_WORK <= big
    monkeypatch.setattr(rt, "cpu_has_fast_bf16", lambda: False)
    assert rt.autocast_dtype("auto", cpu, work=big) is None  # emulated bf16 is far slower
    monkeypatch.setattr(rt, "cpu_has_fast_bf16", lambda: True)
    assert rt.autocast_dtype("auto", cpu, work=big) is torch.bfloat16
    assert rt.autocast_dtype("auto", cpu, work=small) is None  # per-step overhead: fp32 is faster
    assert rt.autocast_dtype("auto", cpu) is None
    assert rt.autocast_dtype("fp32", cpu) is None and rt.autocast_dtype("bf16", cpu) is torch.bfloat16
    with pytest.raises(ValueError, match="Unknown precision 'half'"):
        rt.autocast_dtype("half", cpu)


def test_bf16_autocast_keeps_likelihood_kl_and_loss_in_float32():
    model, x = tiny_model(), binary_data(8)
    torch.manual_seed(1)
    with rt.autocast(torch.device("cpu"), torch.bfloat16):
        terms = elbo(model, x)
    assert all(t.dtype == torch.float32 for t in terms)
    torch.manual_seed(1)
    fp32 = elbo(model, x)  # same weights and noise: equal up to the networks' bf16 rounding (nats)
    torch.testing.assert_close(terms.elbo, fp32.elbo, rtol=0.02, atol=0.05)


def test_num_threads_sets_and_restores(monkeypatch):
    """conftest pins 1 thread: start from 2 so that setting, leaving and restoring are all observable."""
    torch.set_num_threads(2)
    try:
        with rt.num_threads(1):
            assert torch.get_num_threads() == 1
        assert torch.get_num_threads() == 2
        with rt.num_threads(3):
            assert torch.get_num_threads() == 3
        assert torch.get_num_threads() == 2
        with rt.num_threads(-1):  # every available core
            assert torch.get_num_threads() == rt.available_cores()
        assert torch.get_num_threads() == 2
    finally:
        torch.set_num_threads(1)


def test_default_threads_on_two_cores_follows_the_probe_unless_the_user_chose(monkeypatch):
    """From torch's untouched default of 4 threads (set here, not the suite's pinned 1), the policy
    answers what the probe measured on two cores (both when they multiply faster, one when the second
    core is busy), keeps 4 on sixteen, and keeps 4 when the user set OMP_NUM_THREADS."""
    monkeypatch.delenv("OMP_NUM_THREADS", raising=False)
    monkeypatch.setitem(rt.CHOSEN, "threads", 0)
    torch.set_num_threads(4)
    monkeypatch.setattr(rt, "TORCH_DEFAULT_THREADS", 4)
    monkeypatch.setattr(rt.os, "sched_getaffinity", lambda pid: {0, 1}, raising=False)
    free = {"gain": 1.9}  # what 2 threads achieve over 1, as the probe would measure it
    monkeypatch.setattr(rt, "matmul_rate", lambda n, a, b: free["gain"] if n == 2 else 1.0)
    monkeypatch.setitem(rt.PROBE, "at", -float("inf"))
    try:
        assert rt.default_threads() == 2  # a quiet machine: both cores
        free["gain"] = 0.2  # another process keeps the second core busy
        assert rt.default_threads() == 2  # the answer is reused for PROBE_REUSE seconds ...
        monkeypatch.setitem(rt.PROBE, "at", -float("inf"))
        assert rt.default_threads() == 1  # ... then measured again
        monkeypatch.setattr(rt.os, "sched_getaffinity", lambda pid: set(range(16)), raising=False)
        assert rt.default_threads() == 4
        monkeypatch.setattr(rt.os, "sched_getaffinity", lambda pid: {0}, raising=False)
        assert rt.default_threads() == 1
        monkeypatch.setattr(rt.os, "sched_getaffinity", lambda pid: {0, 1}, raising=False)
        monkeypatch.setenv("OMP_NUM_THREADS", "2")  # the user's choice wins
        assert rt.default_threads() == 4
        monkeypatch.delenv("OMP_NUM_THREADS")
        # torch.set_num_threads(1) before vaekit was imported (torch starts with one per core): kept
        torch.set_num_threads(1)
        monkeypatch.setattr(rt, "TORCH_DEFAULT_THREADS", 1)
        monkeypatch.setitem(rt.PROBE, "at", -float("inf"))
        free["gain"] = 1.9
        assert rt.default_threads() == 1
    finally:
        torch.set_num_threads(1)


def test_the_thread_probe_measures_both_counts_and_restores_the_setting(monkeypatch):
    monkeypatch.setitem(rt.PROBE, "at", -float("inf"))
    assert rt.probe_threads(2) in (1, 2) and torch.get_num_threads() == 1
    assert rt.PROBE["at"] > -float("inf")


def count_host_syncs(monkeypatch) -> dict:
    calls = {"n": 0}
    for name in ("item", "tolist", "__bool__"):
        original = getattr(torch.Tensor, name)

        def counted(self, *a, _original=original, **kw):
            calls["n"] += 1
            return _original(self, *a, **kw)

        monkeypatch.setattr(torch.Tensor, name, counted)
    return calls


def test_fit_does_not_sync_with_the_host_every_step(monkeypatch):
    calls = count_host_syncs(monkeypatch)
    counts = []
    for n in (40, 320):  # 5 and 40 steps per epoch
        calls["n"] = 0
        fit(tiny_model(), binary_data(n), config=TrainConfig(epochs=2, batch_size=8, progress=False, device="cpu"))
        counts.append(calls["n"])
    assert counts[0] == counts[1]  # host syncs per epoch only, however many steps


@pytest.mark.slow
def test_compiled_training_matches_eager_training():
    x = binary_data(64)
    cfg = {"epochs": 2, "batch_size": 16, "progress": False, "device": "cpu"}
    eager = fit(tiny_model(), x, config=TrainConfig(**cfg))
    compiled = fit(tiny_model(), x, config=TrainConfig(**cfg, compile=True))
    assert abs(eager.records[-1]["train_elbo"] - compiled.records[-1]["train_elbo"]) < 0.05  # nats


def test_bf16_evaluation_stays_within_five_hundredths_of_a_nat_of_float32():
    """The networks run in bfloat16 (emulated where the CPU lacks it), the likelihood and log-sum-exp in
    float32: the estimate moves by far less than the 0.05 nats the option promises."""
    from vaekit.evaluate import evaluate

    x = binary_data(256)
    model = tiny_model()
    fit(model, x, config=TrainConfig(epochs=3, batch_size=32, progress=False))
    a = evaluate(model, x[:32], k=64)
    b = evaluate(model, x[:32], k=64, precision="bf16")
    assert b["precision"] == "bf16" and abs(a["log_likelihood"] - b["log_likelihood"]) < 0.05
    with pytest.raises(ValueError, match="choose 'fp32' or 'bf16'"):
        evaluate(model, x[:4], k=4, precision="fp16")
