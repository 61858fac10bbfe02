"""Each likelihood's log_prob against scipy, and its samples against its law (STYLE.md tests 5)."""

import math

import numpy as np
import pytest
import torch
from scipy import special, stats

from vaekit.likelihoods import (
    BernoulliLikelihood,
    CategoricalLikelihood,
    GaussianLikelihood,
    LaplaceLikelihood,
    MultinomialLikelihood,
    NegativeBinomialLikelihood,
    PoissonLikelihood,
    positive,
)

B, D = 4, 6


def params(n):
    return torch.randn(B, n, D, dtype=torch.float64).float()


def np64(t):
    return t.detach().double().numpy()


def test_bernoulli_matches_scipy():
    h = params(1)
    x = (torch.rand(B, D) > 0.5).float()
    px = BernoulliLikelihood()(h, 1)
    p = special.expit(np64(h[:, 0]))
    ref = stats.bernoulli.logpmf(np64(x), p).sum(-1)
    np.testing.assert_allclose(np64(px.log_prob(x)), ref, rtol=1e-5)
    assert px.event_shape == (D,) and px.batch_shape == (B,)



@pytest.mark.parametrize("event_shape", [(D,), (1, 3, 4)])
def test_bernoulli_scored_against_several_decodings_matches_scipy(event_shape):
    """The importance-weighted estimator's call: logits (k, B, *event) against data (B, *event) takes a
    matrix-vector path of its own; it must give the same log-probabilities (and torch's for grey values)."""
    k, n_event = 5, len(event_shape)
    h = torch.randn(k, B, 1, *event_shape, dtype=torch.float64).float() * 4
    x = (torch.rand(B, *event_shape) > 0.5).float()
    px = BernoulliLikelihood()(h, n_event)
    p = special.expit(np64(h[:, :, 0]))
    ref = stats.bernoulli.logpmf(np64(x)[None], p).reshape(k, B, -1).sum(-1)
    np.testing.assert_allclose(np64(px.log_prob(x)), ref, rtol=1e-5)
    grey = torch.rand(B, *event_shape)
    torch_ref = torch.distributions.Independent(
        torch.distributions.Bernoulli(logits=h[:, :, 0], validate_args=False), n_event)
    torch.testing.assert_close(px.log_prob(grey), torch_ref.log_prob(grey), rtol=1e-5, atol=1e-4)
    assert px.log_prob(x.expand(k, *x.shape)).shape == (k, B)  # the same call without broadcasting
@pytest.mark.parametrize("scale", ["predicted", "learned", "shared", 0.7])
def test_gaussian_matches_scipy(scale):
    """log N(x | loc, sd) against scipy, with the scale computed here by hand (not by the library)."""
    lik = GaussianLikelihood(event_shape=(D,), scale=scale)
    h = params(lik.n_params)
    x = torch.randn(B, D)
    px = lik(h, 1)
    if scale == "predicted":  # softplus of the raw output above the floor of 0.02 data units
        sd = np.log1p(np.exp(np64(h[:, 1]))) + 0.02
    elif scale in ("learned", "shared"):
        assert lik.raw_scale.shape == ((D,) if scale == "learned" else ())
        sd = np.broadcast_to(np.log1p(np.exp(np64(lik.raw_scale.detach()))) + 0.02, (B, D))
    else:
        sd = np.full((B, D), 0.7)
    ref = stats.norm.logpdf(np64(x), np64(h[:, 0]), sd).sum(-1)
    np.testing.assert_allclose(np64(px.log_prob(x)), ref, rtol=1e-5)


def test_laplace_matches_scipy():
    h = params(2)
    x = torch.randn(B, D)
    ref = stats.laplace.logpdf(np64(x), np64(h[:, 0]), np64(positive(h[:, 1]))).sum(-1)
    np.testing.assert_allclose(np64(LaplaceLikelihood()(h, 1).log_prob(x)), ref, rtol=1e-5)


def test_categorical_matches_log_softmax_and_mean():
    K = 5
    h = torch.randn(B, K, D)
    x = torch.randint(0, K, (B, D)).float()
    px = CategoricalLikelihood(n_classes=K)(h, 1)
    logp = special.log_softmax(np64(h), axis=1)
    ref = np.take_along_axis(logp, np64(x).astype(int)[:, None], 1)[:, 0].sum(-1)
    np.testing.assert_allclose(np64(px.log_prob(x)), ref, rtol=1e-5)
    mean = (special.softmax(np64(h), axis=1) * np.arange(K)[None, :, None]).sum(1)
    np.testing.assert_allclose(np64(CategoricalLikelihood(n_classes=K).mean(px)), mean, rtol=1e-5)


def test_poisson_matches_scipy():
    h = params(1)
    x = torch.poisson(torch.full((B, D), 3.0))
    ref = stats.poisson.logpmf(np64(x), np.exp(np64(h[:, 0]))).sum(-1)
    np.testing.assert_allclose(np64(PoissonLikelihood()(h, 1).log_prob(x)), ref, rtol=1e-5)


def test_negative_binomial_matches_scipy():
    h = params(2)
    x = torch.randint(0, 10, (B, D)).float()
    r = np64(positive(h[:, 0]))
    p_success = special.expit(np64(h[:, 1]))  # torch's probs: the per-trial count probability
    ref = stats.nbinom.logpmf(np64(x), r, 1 - p_success).sum(-1)
    np.testing.assert_allclose(np64(NegativeBinomialLikelihood()(h, 1).log_prob(x)), ref, rtol=1e-4)


def test_multinomial_matches_scipy_for_any_total():
    h = params(1)
    x = torch.randint(0, 5, (B, D)).float()
    p = special.softmax(np64(h[:, 0]), -1)
    ref = [stats.multinomial.logpmf(np64(x[i]), int(x[i].sum()), p[i]) for i in range(B)]
    np.testing.assert_allclose(np64(MultinomialLikelihood()(h, 1).log_prob(x)), ref, rtol=1e-5)


@pytest.mark.parametrize("lik", [BernoulliLikelihood(), GaussianLikelihood(event_shape=(D,), scale="predicted"),
                                 LaplaceLikelihood(), PoissonLikelihood(), NegativeBinomialLikelihood()],
                         ids=lambda lk: lk.name)
def test_samples_fit_the_mean(lik):
    """Sample means agree with the likelihood's mean within 5 standard errors."""
    h = 0.5 * torch.randn(1, lik.n_params, D)
    px = lik(h, 1)
    n = 20000
    xs = px.sample((n,)).double()  # (n, 1, D)
    se = xs.std(0) / math.sqrt(n)
    assert ((xs.mean(0) - lik.mean(px).double()).abs() <= 5 * se + 1e-6).all()


def test_extreme_decoder_output_stays_finite():
    h = torch.tensor([[[-1e4, 1e4, 0.0]], [[1e4, -1e4, 0.0]]]).repeat(1, 2, 1)
    x = torch.ones(2, 3)
    for lik in (LaplaceLikelihood(), GaussianLikelihood(event_shape=(3,), scale="predicted"),
                NegativeBinomialLikelihood()):
        assert torch.isfinite(lik(h, 1).log_prob(x)).all()
    assert torch.isfinite(PoissonLikelihood()(h[:, :1], 1).log_prob(x)).all()


def test_a_shared_scale_starts_at_the_spread_of_all_values():
    """init_from_data: one scale for every value (the root mean square deviation from each feature's
    mean), not one per feature."""
    x = torch.cat([torch.randn(500, 3) * 0.1, torch.randn(500, 3) * 2.0], 1)
    lik = GaussianLikelihood(event_shape=(6,), scale="shared")
    lik.init_from_data(x)
    got = float(positive(lik.raw_scale.detach(), 0.02))
    assert got == pytest.approx(float((x - x.mean(0)).pow(2).mean().sqrt()), rel=1e-4)
    per_feature = GaussianLikelihood(event_shape=(6,))
    per_feature.init_from_data(x)
    assert positive(per_feature.raw_scale.detach(), 0.02)[:3].max() < 0.2 < got
