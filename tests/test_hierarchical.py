"""Two-stochastic-layer VAE: shapes, gradients, bounds, normalisation, training and evaluation."""

import functools
import itertools
import math

import pytest
import torch

from vaekit import ModelConfig, TrainConfig, build_model, dataset_elbo, fit
from vaekit.evaluate import active_units_per_layer, log_likelihood
from vaekit.generate import reconstruct, sample
from vaekit.io import load_model, save_model
from vaekit.objectives import elbo, iwae_bound

PRIORS = ["normal", "mixture", "vamp"]


def config(prior="normal", d=12) -> ModelConfig:
    return ModelConfig(family="hierarchical", input_shape=(d,), latent_dims=(2, 3), hidden=(16, 16),
                       activation="tanh", likelihood="bernoulli", prior=prior, prior_components=4)


def tiny(prior="normal", *, d=12, seed=0):
    torch.manual_seed(seed)
    return build_model(config(prior, d))


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
    (_, z2, _), (q1, z1, p1) = out.layers  # top layer first
    assert z2.shape == (8, 2) and z1.shape == (8, 3) and out.z is z2
    assert out.px.batch_shape == (8,) and out.px.event_shape == (12,)
    assert q1.batch_shape == p1.batch_shape == (8,)
    out = model(x, k=5)
    assert out.layers[0].z.shape == (5, 8, 2) and out.layers[1].z.shape == (5, 8, 3) and out.px.batch_shape == (5, 8)
    for objective in (elbo, functools.partial(iwae_bound, k=4)):
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
    t1 = elbo(model, x, beta=1.0)
    torch.manual_seed(1)
    t0 = elbo(model, x, beta=0.0)
    torch.testing.assert_close(t1.elbo, t1.log_px_z - t1.kl)
    torch.testing.assert_close(t1.elbo, t0.elbo)  # the reported ELBO is always the true bound
    torch.testing.assert_close(t0.loss, -t0.log_px_z.mean())
    torch.testing.assert_close(t1.loss, -t1.elbo.mean())
    assert (t1.kl > 0).all()  # analytic KL of z1 plus analytic KL of z2 against N(0, I)


@pytest.mark.parametrize("prior", ["normal", "vamp"])
def test_elbo_below_iwae_bounds_rising_in_k(prior):
    model, x = tiny(prior), binary_data(200)
    torch.manual_seed(0)
    e = torch.stack([elbo(model, x).elbo for _ in range(20)]).mean(0)  # (N,)
    iw = {k: log_likelihood(model, x, k=k, seed=k).double() for k in (1, 10, 200)}
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
    total = log_likelihood(model, x, k=2000).double().exp().sum()
    assert abs(total - 1.0) < 0.05


def test_log_likelihood_is_deterministic_and_chunking_consistent():
    model, x = tiny("vamp"), binary_data(20)
    state = torch.get_rng_state()
    a = log_likelihood(model, x, k=300, seed=3)
    assert torch.equal(state, torch.get_rng_state())  # the caller's random stream is untouched
    assert torch.equal(a, log_likelihood(model, x, k=300, seed=3))
    b = log_likelihood(model, x, k=300, seed=3, samples_per_chunk=128)  # several chunks per example
    assert a.shape == b.shape == (20,)
    assert abs(a.mean() - b.mean()) < 0.1 and (a - b).abs().max() < 1.0  # same estimate, other draws
    assert model.training  # restored


def test_fit_with_hierarchical_objectives_learns_and_dataset_elbo_agrees():
    data = binary_data(768)
    x, x_val = data[:512], data[512:]
    results = {}
    for name, objective in (("elbo", elbo), ("iwae", functools.partial(iwae_bound, k=5))):
        model = tiny()
        before = dataset_elbo(model, x_val)["elbo"]
        cfg = TrainConfig(epochs=10, batch_size=64, lr=1e-2, progress=False, kl_schedule="linear",
                          warmup_steps=40, seed=0)
        history = fit(model, x, x_val=x_val, config=cfg, objective=objective)
        after = dataset_elbo(model, x_val)["elbo"]
        assert len(history.records) == 10
        assert after > before + 1.0, (name, before, after)
        results[name] = (model, after)
    # Two noisy prototypes: about 12 * H(0.1) = 3.9 nats of noise + 0.7 for the prototype.
    model, after = results["elbo"]
    assert after > -7.0
    ll = log_likelihood(model, x_val, k=500).mean().item()
    assert after <= ll + 0.05
    per_layer = active_units_per_layer(model, x_val)
    assert len(per_layer) == 2 and sum(per_layer) >= 1
    recon = reconstruct(model, x_val[:8])
    assert recon.shape == (8, 12) and ((recon > 0.5).float() == x_val[:8]).float().mean() > 0.8
    assert sample(model, 4).shape == (4, 12)


def test_bad_input_is_named():
    model, x = tiny(), binary_data(4)
    with pytest.raises(ValueError, match="unconditional"):
        elbo(model, x, torch.zeros(4))
    with pytest.raises(ValueError, match="positive number"):
        log_likelihood(model, x, k=0)
    with pytest.raises(ValueError, match=r"model\.prior must be one of"):
        build_model(config("flat"))


@pytest.mark.parametrize("prior", ["normal", "vamp"])
def test_save_load_roundtrip_and_clear_errors(tmp_path, prior):
    model, x = tiny(prior), binary_data(10)
    save_model(model, config(prior), tmp_path / "m", extra={"note": "test"})
    loaded, cfg, extra = load_model(tmp_path / "m")
    assert extra == {"note": "test"} and cfg.family == "hierarchical"
    torch.testing.assert_close(log_likelihood(loaded, x, k=50), log_likelihood(model, x, k=50))
    with pytest.raises(ValueError, match="already holds"):
        save_model(model, config(prior), tmp_path / "m", overwrite=False)
    with pytest.raises(FileNotFoundError, match="No saved model"):
        load_model(tmp_path / "nowhere")
    (tmp_path / "m" / "model.safetensors").write_bytes(b"garbage")
    with pytest.raises(ValueError, match="damaged"):
        load_model(tmp_path / "m")
