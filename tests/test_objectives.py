"""KL, reparameterisation and bounds against closed forms (STYLE.md tests 2-4)."""

import itertools
import math

import torch
from torch import nn
from torch.distributions import Categorical, Independent, MixtureSameFamily, MultivariateNormal, Normal

from vaekit import elbo, iwae_bound
from vaekit.likelihoods import GaussianLikelihood, positive
from vaekit.models import VAE, GaussianEncoder
from vaekit.objectives import kl_terms
from vaekit.priors import DiagonalGaussianMixture, MixtureOfGaussians, StandardNormal
from vaekit.schedules import constant, cyclical, linear_warmup


def test_analytic_kl_matches_monte_carlo_within_standard_error():
    loc, scale = torch.randn(3, 4), positive(torch.randn(3, 4))
    qz = Independent(Normal(loc, scale), 1)
    pz = StandardNormal(4)()
    analytic, per_dim = kl_terms(qz, pz, None)
    assert per_dim.shape == (3, 4)
    z = qz.sample((200_000,))
    log_ratio = qz.log_prob(z) - pz.log_prob(z)  # (n, 3)
    mc, se = log_ratio.mean(0), log_ratio.std(0) / math.sqrt(len(z))
    assert ((analytic - mc).abs() < 4 * se).all()


def test_monte_carlo_kl_is_used_for_a_mixture_prior():
    qz = Independent(Normal(torch.zeros(2, 3), torch.ones(2, 3)), 1)
    pz = MixtureOfGaussians(3, n_components=4)()
    z = qz.sample()
    kl, per_dim = kl_terms(qz, pz, z)
    assert per_dim is None
    torch.testing.assert_close(kl, qz.log_prob(z) - pz.log_prob(z))


def test_the_fast_mixture_density_equals_torchs_in_value_and_gradient():
    # the matrix-product log-density against torch's (..., K, D) one, both in float64, on spread-out
    # components with small and large scales and points far from every component
    g = torch.Generator().manual_seed(0)
    loc = (2 * torch.randn(30, 6, generator=g, dtype=torch.float64)).requires_grad_()
    scale = (0.01 + 3 * torch.rand(30, 6, generator=g, dtype=torch.float64)).requires_grad_()
    logits = torch.randn(30, generator=g, dtype=torch.float64).requires_grad_()
    z = (5 * torch.randn(4, 9, 6, generator=g, dtype=torch.float64)).requires_grad_()
    fast = DiagonalGaussianMixture(Categorical(logits=logits), Independent(Normal(loc, scale), 1))
    slow = MixtureSameFamily(Categorical(logits=logits), Independent(Normal(loc, scale), 1))
    a, b = fast.log_prob(z), slow.log_prob(z)
    assert a.shape == (4, 9) and torch.allclose(a, b, rtol=1e-10, atol=1e-8)
    for ga, gb in zip(torch.autograd.grad(a.sum(), [loc, scale, logits, z]),
                      torch.autograd.grad(b.sum(), [loc, scale, logits, z])):
        assert torch.allclose(ga, gb, rtol=1e-8, atol=1e-8)
    # float32 in, float32 out, and no worse than torch's own float32 path against the float64 truth
    z32 = z.detach().float()
    fast32 = DiagonalGaussianMixture(Categorical(logits=logits.detach().float()),
                                     Independent(Normal(loc.detach().float(), scale.detach().float()), 1))
    slow32 = MixtureSameFamily(Categorical(logits=logits.detach().float()),
                               Independent(Normal(loc.detach().float(), scale.detach().float()), 1))
    truth = b.detach()
    assert fast32.log_prob(z32).dtype == torch.float32
    assert ((fast32.log_prob(z32).double() - truth).abs().max()
            <= (slow32.log_prob(z32).double() - truth).abs().max() + 1e-6)
    # a mixture it does not cover (batched mixture weights) takes torch's path and still answers
    batched = DiagonalGaussianMixture(Categorical(logits=torch.zeros(2, 30, dtype=torch.float64)),
                                      Independent(Normal(loc.detach().expand(2, 30, 6), scale.detach().expand(2, 30, 6)), 1))
    assert batched.log_prob(z.detach()[:, :2]).shape == (4, 2)


def test_reparameterisation_gradient_matches_closed_form():
    """d/dloc E[z^2] = 2 loc and d/dscale E[z^2] = 2 scale for z ~ N(loc, scale^2)."""
    loc = torch.tensor([0.7, -1.3], requires_grad=True)
    scale = torch.tensor([0.5, 2.0], requires_grad=True)
    z = Independent(Normal(loc, scale), 1).rsample((400_000,))
    (z**2).mean(0).sum().backward()
    torch.testing.assert_close(loc.grad, 2 * loc.detach(), atol=0.02, rtol=0.02)
    torch.testing.assert_close(scale.grad, 2 * scale.detach(), atol=0.02, rtol=0.02)


def linear_gaussian(D=5, L=2, sigma=0.5):
    """p(z) = N(0, I), p(x|z) = N(Wz + b, sigma^2 I): log p(x) = log N(x; b, W W^T + sigma^2 I)."""
    torch.manual_seed(1)
    enc_net = nn.Linear(D, 8)
    enc_net.out_features = 8
    decoder = nn.Linear(L, D)
    model = VAE(GaussianEncoder(enc_net, L), decoder, GaussianLikelihood(scale=sigma), StandardNormal(L),
                event_shape=(D,))
    W, b = decoder.weight.detach(), decoder.bias.detach()
    marginal = MultivariateNormal(b, W @ W.T + sigma**2 * torch.eye(D))
    x = marginal.sample((6,))
    return model, x, marginal.log_prob(x)


@torch.no_grad()
def test_bounds_on_a_linear_gaussian_model():
    model, x, log_px = linear_gaussian()

    def replicated(bound, reps):  # the mean of `reps` independent draws of a bound, per example
        return bound(x.repeat(reps, 1)).view(reps, len(x)).mean(0)

    # ELBO <= log p(x), in expectation: average many single-sample ELBOs
    assert (replicated(lambda xr: elbo(model, xr).elbo, 2000) < log_px).all()
    # IWAE_1 is the ELBO: with the same randomness it equals the Monte Carlo ELBO exactly
    torch.manual_seed(5)
    iw1 = iwae_bound(model, x, k=1).elbo
    torch.manual_seed(5)
    mc = elbo(model, x, analytic_kl=False).elbo
    torch.testing.assert_close(iw1, mc)
    # IWAE_k rises towards log p(x) as k grows
    means = []
    for k in (1, 10, 100, 1000):
        means.append(replicated(lambda xr, k=k: iwae_bound(model, xr, k=k).elbo, max(20, 20000 // k)))
    gaps = [(log_px - m).mean().item() for m in means]
    assert all(a > b for a, b in itertools.pairwise(gaps)), gaps
    assert all(g > -0.01 for g in gaps) and gaps[-1] < 0.1 * gaps[0]


def test_beta_and_free_bits_change_the_loss_not_the_reported_elbo():
    model, x, _ = linear_gaussian()
    torch.manual_seed(3)
    t1 = elbo(model, x, beta=1.0)
    torch.manual_seed(3)
    t2 = elbo(model, x, beta=0.1)
    torch.manual_seed(3)
    t3 = elbo(model, x, free_bits=100.0)
    torch.testing.assert_close(t1.elbo, t2.elbo)
    torch.testing.assert_close(t1.elbo, t3.elbo)
    torch.testing.assert_close(t2.loss, -t1.log_px_z.mean() + 0.1 * t1.kl.mean())
    torch.testing.assert_close(t3.loss, -t1.log_px_z.mean() + 2 * 100.0)  # 2 latent dims at the floor


def test_schedules():
    assert constant(10, beta=0.5) == 0.5
    assert [linear_warmup(s, warmup_steps=4) for s in (0, 2, 4, 100)] == [0.0, 0.5, 1.0, 1.0]
    assert [cyclical(s, warmup_steps=4, ratio=0.5) for s in (0, 1, 2, 3, 4, 5)] == [0.0, 0.5, 1.0, 1.0, 0.0, 0.5]
