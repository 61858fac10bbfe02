"""Two-stochastic-layer VAE: shapes, gradients, bounds, normalisation, training and evaluation."""

import functools
import itertools
import math

import pytest
import torch

from vaekit import TrainConfig, dataset_elbo, fit
from vaekit import hierarchical as hv

PRIORS = ["normal", "mixture", "vamp"]


def tiny(prior="normal", *, d=12, seed=0):
    torch.manual_seed(seed)
    return hv.HierarchicalVAE.mlp(d, z1_dim=3, z2_dim=2, hidden=(16, 16), prior=prior, n_components=4)


def binary_data(n=256, d=12, seed=0):
    """Two binary prototypes with 10% flipped pixels: structure a latent variable model can learn."""
    g = torch.Generator().manual_seed(seed)
    protos = (torch.rand(2, d, generator=g) > 0.5).float()
    x = protos[torch.randint(0, 2, (n,), generator=g)]
    flip = (torch.rand(n, d, generator=g) < 0.1).float()
    return (x + flip) % 2


@pytest.mark.parametrize("prior", PRIORS)
def test_shapes_and_gradients(prior):
    model, x = tiny(prior), binary_data(8)
    out = model(x)
    assert out.z2.shape == (8, 2) and out.z1.shape == (8, 3)
    assert out.px.batch_shape == (8,) and out.px.event_shape == (12,)
    assert out.qz1.batch_shape == out.pz1.batch_shape == (8,)
    out = model(x, k=5)
    assert out.z2.shape == (5, 8, 2) and out.z1.shape == (5, 8, 3) and out.px.batch_shape == (5, 8)
    for objective in (hv.elbo, functools.partial(hv.iwae_bound, k=4)):
        model.zero_grad()
        terms = objective(model, x)
        assert terms.elbo.shape == terms.kl.shape == terms.log_px_z.shape == (8,)
        assert torch.isfinite(terms.loss)
        terms.loss.backward()
        grads = {n: p.grad for n, p in model.named_parameters()}
        missing = [n for n, g in grads.items() if g is None or not torch.isfinite(g).all() or not g.abs().sum() > 0]
        assert not missing, missing


def test_elbo_terms_add_up_and_beta_weights_only_the_loss():
    model, x = tiny(), binary_data(64)
    torch.manual_seed(1)
    t1 = hv.elbo(model, x, beta=1.0)
    torch.manual_seed(1)
    t0 = hv.elbo(model, x, beta=0.0)
    torch.testing.assert_close(t1.elbo, t1.log_px_z - t1.kl)
    torch.testing.assert_close(t1.elbo, t0.elbo)  # the reported ELBO is always the true bound
    torch.testing.assert_close(t0.loss, -t0.log_px_z.mean())
    torch.testing.assert_close(t1.loss, -t1.elbo.mean())
    assert (t1.kl > 0).all()  # analytic KL of z1 plus analytic KL of z2 against N(0, I)


@pytest.mark.parametrize("prior", ["normal", "vamp"])
def test_elbo_below_iwae_bounds_rising_in_k(prior):
    model, x = tiny(prior), binary_data(200)
    torch.manual_seed(0)
    e = torch.stack([hv.elbo(model, x).elbo for _ in range(20)]).mean(0)  # (N,)
    iw = {k: hv.log_likelihood(model, x, k=k, seed=k).double() for k in (1, 10, 200)}
    se = e.std() / math.sqrt(len(e))
    # IWAE_1 is the ELBO (one-sample estimate); IWAE_k rises with k (Burda et al. 2015, theorem 1).
    assert abs(iw[1].mean() - e.mean()) < 4 * (se + iw[1].std() / math.sqrt(len(e)))
    assert e.mean() < iw[10].mean() < iw[200].mean()
    assert (iw[200] >= e - 1e-4).float().mean() > 0.95  # per example too, up to Monte Carlo noise


@pytest.mark.parametrize("prior", PRIORS)
def test_marginal_likelihood_sums_to_one_over_all_binary_images(prior):
    """sum_x p(x) over all 2^D binary x is 1: (1/k) sum_i w_i is an unbiased estimate of p(x) when
    q covers the posterior, so the proposals are widened (scale about 2.6 for z2, 1.7 for z1)."""
    d = 5
    model = tiny(prior, d=d)
    with torch.no_grad():
        model.encoder2.head.bias[2:] = 2.5
        model.encoder1.head.bias[3:] = 1.5
    x = torch.tensor(list(itertools.product([0.0, 1.0], repeat=d)))  # (32, 5)
    total = hv.log_likelihood(model, x, k=2000).double().exp().sum()
    assert abs(total - 1.0) < 0.05


def test_log_likelihood_is_deterministic_and_chunking_consistent():
    model, x = tiny("vamp"), binary_data(20)
    state = torch.get_rng_state()
    a = hv.log_likelihood(model, x, k=300, seed=3)
    assert torch.equal(state, torch.get_rng_state())  # the caller's random stream is untouched
    assert torch.equal(a, hv.log_likelihood(model, x, k=300, seed=3))
    b = hv.log_likelihood(model, x, k=300, seed=3, samples_per_chunk=128)  # several chunks per example
    assert a.shape == b.shape == (20,)
    assert abs(a.mean() - b.mean()) < 0.1 and (a - b).abs().max() < 1.0  # same estimate, other draws
    assert model.training  # restored


def test_fit_with_hierarchical_objectives_learns_and_dataset_elbo_agrees():
    data = binary_data(768)
    x, x_val = data[:512], data[512:]
    results = {}
    for name, objective in (("elbo", hv.elbo), ("iwae", functools.partial(hv.iwae_bound, k=5))):
        model = tiny()
        before = dataset_elbo(model, x_val, objective=hv.elbo)["elbo"]
        cfg = TrainConfig(epochs=10, batch_size=64, lr=1e-2, progress=False, kl_schedule="linear",
                          warmup_steps=40, seed=0)
        history = fit(model, x, x_val=x_val, config=cfg, objective=objective)
        after = dataset_elbo(model, x_val, objective=hv.elbo)["elbo"]
        assert len(history.records) == 10
        assert after > before + 1.0, (name, before, after)
        results[name] = (model, after)
    # Two noisy prototypes: about 12 * H(0.1) = 3.9 nats of noise + 0.7 for the prototype.
    model, after = results["elbo"]
    assert after > -7.0
    ll = hv.log_likelihood(model, x_val, k=500).mean().item()
    assert after <= ll + 0.05
    assert sum(hv.active_units(model, x_val).values()) >= 1
    recon = model.reconstruct(x_val[:8])
    assert recon.shape == (8, 12) and ((recon > 0.5).float() == x_val[:8]).float().mean() > 0.8
    assert model.sample(4).shape == (4, 12)


def test_bad_input_is_named():
    model, x = tiny(), binary_data(4)
    with pytest.raises(ValueError, match="unconditional"):
        hv.elbo(model, x, torch.zeros(4))
    with pytest.raises(ValueError, match="positive number"):
        hv.log_likelihood(model, x, k=0)
    with pytest.raises(ValueError, match="Unknown prior"):
        hv.HierarchicalVAE.mlp(12, prior="flat")


@pytest.mark.parametrize("prior", ["normal", "vamp"])
def test_save_load_roundtrip_and_clear_errors(tmp_path, prior):
    from vaekit.hierarchical_io import load_hierarchical, save_hierarchical

    model, x = tiny(prior), binary_data(10)
    save_hierarchical(model, tmp_path / "m", extra={"note": "test"})
    loaded, extra = load_hierarchical(tmp_path / "m")
    assert extra == {"note": "test"}
    torch.testing.assert_close(hv.log_likelihood(loaded, x, k=50), hv.log_likelihood(model, x, k=50))
    with pytest.raises(ValueError, match="already holds"):
        save_hierarchical(model, tmp_path / "m")
    with pytest.raises(FileNotFoundError, match="No saved hierarchical model"):
        load_hierarchical(tmp_path / "nowhere")
    (tmp_path / "m" / "model.safetensors").write_bytes(b"garbage")
    with pytest.raises(ValueError, match="damaged"):
        load_hierarchical(tmp_path / "m")
