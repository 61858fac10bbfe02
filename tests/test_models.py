"""Shapes, gradients and no NaN over every likelihood x prior x network (STYLE.md test 1)."""

import pytest
import torch

from vaekit import ModelConfig, build_model, elbo, iwae_bound
from vaekit.likelihoods import LIKELIHOODS
from vaekit.nets import ConvDecoder, ConvEncoder

COUNT_DATA = {"categorical", "poisson", "negative_binomial", "multinomial"}
FLAT_ONLY = {"table"}  # likelihoods over flat rows only


def data_for(likelihood, shape, n=5):
    if likelihood == "table":  # one numeric column, then a 3-category block, ...
        x = torch.randn(n, *shape)
        x[:, 1:4] = torch.nn.functional.one_hot(torch.randint(0, 3, (n,)), 3).float()
        return x
    if likelihood in COUNT_DATA:
        return torch.randint(0, 4, (n, *shape)).float()
    if likelihood == "bernoulli":
        return (torch.rand(n, *shape) > 0.5).float()
    return torch.randn(n, *shape)


@pytest.mark.parametrize("network,shape", [("mlp", (12,)), ("conv", (2, 9, 7))])
@pytest.mark.parametrize("prior", ["normal", "mixture", "vamp"])
@pytest.mark.parametrize("likelihood", sorted(LIKELIHOODS))
def test_every_combination_trains(likelihood, prior, network, shape):
    if likelihood == "autoregressive_categorical":
        pytest.skip("token sequences are built by the sequence family (tests/test_contract.py, test_sequence.py)")
    if likelihood in FLAT_ONLY and network == "conv":
        pytest.skip("the table likelihood models flat rows")
    options = {"columns": [{"kind": "numeric"}, {"kind": "categorical", "size": 3}]
               + [{"kind": "numeric"}] * (shape[0] - 4)} if likelihood == "table" else {}
    cfg = ModelConfig(input_shape=shape, latent_dim=3, network=network, likelihood=likelihood, prior=prior,
                      hidden=(16, 8), channels=(4, 8), n_categories=4, prior_components=3, likelihood_options=options)
    model = build_model(cfg)
    x = data_for(likelihood, shape)
    out = model(x)
    qz, z, px, pz = out.qz, out.z, out.px, out.pz
    assert qz.batch_shape == (5,) and qz.event_shape == (3,) and z.shape == (5, 3)
    assert px.batch_shape == (5,) and px.event_shape == shape
    assert pz.event_shape == (3,)
    assert likelihood_mean_shape(model, px) == (5, *shape)
    terms = elbo(model, x)
    assert terms.elbo.shape == terms.kl.shape == terms.log_px_z.shape == (5,)
    terms.loss.backward()
    grads = [p.grad for p in model.parameters() if p.requires_grad]
    assert all(g is not None and torch.isfinite(g).all() for g in grads)
    assert any(g.abs().sum() > 0 for g in grads)
    iw = iwae_bound(model, x, k=4)
    assert iw.elbo.shape == (5,) and torch.isfinite(iw.elbo).all()


def likelihood_mean_shape(model, px):
    return tuple(model.likelihood.mean(px).shape)


def test_k_samples_give_k_by_batch_shapes():
    model = build_model(ModelConfig(input_shape=(12,), latent_dim=3, hidden=(8,)))
    out = model((torch.rand(5, 12) > 0.5).float(), k=7)
    z, px = out.z, out.px
    assert z.shape == (7, 5, 3) and px.batch_shape == (7, 5)


def test_posterior_is_finite_for_extreme_inputs():
    model = build_model(ModelConfig(input_shape=(12,), latent_dim=3, hidden=(8,), likelihood="gaussian"))
    x = torch.tensor([[1e30] * 12, [-1e30] * 12, [0.0] * 12])
    qz = model.encode(x)
    scale = qz.base_dist.scale
    assert torch.isfinite(scale).all() and (scale > 0).all()


@pytest.mark.parametrize("hw", [(28, 28), (8, 8), (9, 7), (32, 17), (5, 5)])
@pytest.mark.parametrize("channels", [(8,), (8, 16), (8, 16, 16)])
def test_conv_decoder_mirrors_any_size(hw, channels):
    enc = ConvEncoder((3, *hw), channels, 10, residual=True)
    dec = ConvDecoder(4, (6, *hw), channels, residual=True)
    assert enc(torch.randn(2, 3, *hw)).shape == (2, 10)
    assert dec(torch.randn(2, 4)).shape == (2, 6, *hw)


@pytest.mark.parametrize("n_classes,y", [(3, torch.tensor([0, 2, 1, 1, 0])), (0, torch.randn(5, 2))])
def test_conditional_vae(n_classes, y):
    cfg = ModelConfig(input_shape=(12,), latent_dim=3, hidden=(8,), n_classes=n_classes,
                      n_covariates=0 if n_classes else 2)
    model = build_model(cfg)
    x = (torch.rand(5, 12) > 0.5).float()
    out = model(x, y)
    z, px = out.z, out.px
    assert z.shape == (5, 3) and px.batch_shape == (5,)
    elbo(model, x, y).loss.backward()
    px_a = model.decode(z, y)
    y2 = (y + 1) % 3 if n_classes else y + 1
    assert not torch.allclose(px_a.base_dist.logits, model.decode(z, y2).base_dist.logits)


def test_vamp_pseudo_inputs_start_at_distinct_data_rows_and_spread_the_prior():
    cfg = ModelConfig(input_shape=(12,), latent_dim=3, hidden=(16,), prior="vamp", prior_components=20)
    model = build_model(cfg)
    x = torch.randn(200, 12) * 3.0
    grey = model.prior().component_distribution.mean.std(0).mean()
    model.prior.init_from_data(x, seed=1)
    u = model.prior.pseudo_inputs.detach()
    rows = [(x == r).all(1).nonzero().flatten().tolist() for r in u]
    assert all(len(r) == 1 for r in rows) and len({r[0] for r in rows}) == 20
    assert model.prior().component_distribution.mean.std(0).mean() > grey  # components spread out
    with pytest.raises(ValueError, match="at least 20 rows"):
        model.prior.init_from_data(x[:5])
    with pytest.raises(ValueError, match="input shape"):
        model.prior.init_from_data(torch.randn(50, 7))


def test_learned_gaussian_scale_starts_at_the_feature_standard_deviations():
    from vaekit.models import init_from_data

    model = build_model(ModelConfig(input_shape=(3,), latent_dim=2, hidden=(8,), likelihood="gaussian"))
    x = torch.randn(4000, 3) * torch.tensor([0.2, 1.0, 0.0])  # the last feature is constant
    init_from_data(model, x)
    scale = model.decode(torch.zeros(1, 2)).base_dist.scale[0]
    # the constant feature starts just above the scale's floor of 0.02: at 0.03
    torch.testing.assert_close(scale, torch.tensor([0.2, 1.0, 0.03]), atol=0.02, rtol=0.0)
