"""The scikit-learn front door: conventions, shapes, units, bad input, an end-to-end quality floor."""

import warnings

import numpy as np
import pandas as pd
import pytest
import torch
from sklearn.base import clone
from sklearn.datasets import load_digits
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import make_pipeline

import vaekit


@pytest.fixture(scope="module")
def digits():
    X, y = load_digits(return_X_y=True)
    return (X / 16.0).astype(np.float32), y


@pytest.fixture(scope="module")
def binary_model(digits):
    X, _ = digits
    Xb = (X[:1500] > 0.5).astype(np.float32)
    return vaekit.VAE(latent_dim=8, hidden=(128,), epochs=25, random_state=0, k=200).fit(Xb), Xb


def test_init_only_stores_parameters_and_clone_works():
    est = vaekit.VAE(latent_dim=3, epochs=2)
    assert est.get_params()["latent_dim"] == 3 and not hasattr(est, "model_")
    c = clone(est.set_params(latent_dim=5))
    assert c.latent_dim == 5


def test_auto_likelihood_and_end_to_end_quality_floor(binary_model, digits):
    model, _ = binary_model
    assert model.likelihood_ == "bernoulli"
    X_test = (digits[0][1500:] > 0.5).astype(np.float32)
    ll = model.score_samples(X_test)
    assert ll.shape == (len(X_test),) and np.isfinite(ll).all()
    # A uniform Bernoulli model scores 64 log(1/2) = -44.4 nats; the trained VAE must be far better.
    assert model.score(X_test) > -30.0
    record = model.evaluate(X_test, k=50)
    assert record["elbo"] <= record["log_likelihood"] + 0.5  # IWAE_50 is the tighter bound
    assert record["bits_per_dim"] == pytest.approx(-record["log_likelihood"] / (64 * np.log(2)))


def test_transform_is_deterministic_and_shapes(binary_model):
    model, Xb = binary_model
    Z = model.transform(Xb[:10])
    np.testing.assert_array_equal(Z, model.transform(Xb[:10]))
    assert Z.shape == (10, 8)
    assert model.inverse_transform(Z).shape == (10, 64)
    assert model.reconstruct(Xb[:3]).shape == (3, 64)
    s = model.sample(4, random_state=1)
    assert s.shape == (4, 64) and ((s >= 0) & (s <= 1)).all()
    np.testing.assert_array_equal(s, model.sample(4, random_state=1))
    np.testing.assert_array_equal(model.score_samples(Xb[:5]), model.score_samples(Xb[:5]))


def test_reconstructions_are_better_than_the_mean_image(binary_model, digits):
    model, Xb = binary_model
    err = np.abs(model.reconstruct(Xb[:200]) - Xb[:200]).mean()
    baseline = np.abs(Xb[:200].mean(0) - Xb[:200]).mean()
    assert err < 0.75 * baseline  # measured: about 0.64 of the mean-image error after 25 epochs


def test_gaussian_scores_are_in_original_units(digits):
    """Scaling the data by c shifts log p(x) by -D log c: the standardisation is accounted for."""
    X = digits[0][:400]
    a = vaekit.VAE(latent_dim=2, hidden=(32,), epochs=3, random_state=0, k=20).fit(X)
    b = vaekit.VAE(latent_dim=2, hidden=(32,), epochs=3, random_state=0, k=20).fit(X * 10)
    assert a.likelihood_ == "gaussian"
    varying = int((X.std(0) > 1e-8).sum())  # constant pixels are left unscaled, so they do not shift
    np.testing.assert_allclose(b.score_samples(X[:20] * 10), a.score_samples(X[:20]) - varying * np.log(10),
                               rtol=1e-3, atol=1e-2)
    assert b.reconstruct(X[:5] * 10).max() > 5  # outputs come back in the original units


def test_grey_images_get_one_standardisation_and_one_shared_scale(digits):
    """Images (N, H, W) are mapped onto [0, 1] with one offset and one scale for all pixels and modelled with one
    learned scale (a flat array of the same pixels keeps per-feature ones); log p(x) stays in the
    original units: scaling the images by c shifts it by -D log c for every pixel, constant ones too."""
    X = digits[0][:400]
    images = X.reshape(-1, 8, 8)
    a = vaekit.VAE(latent_dim=2, channels=(4,), hidden=(16,), epochs=2, random_state=0, k=20).fit(images)
    b = vaekit.VAE(latent_dim=2, channels=(4,), hidden=(16,), epochs=2, random_state=0, k=20).fit(images * 10)
    assert a.model_config_.gaussian_scale == "shared" and a.model_.likelihood.raw_scale.shape == ()
    assert len(set(a.inputs_.scale[0])) == 1 and a.inputs_.scale[0][0] == pytest.approx(float(X.max() - X.min()))
    np.testing.assert_allclose(b.score_samples(images[:20] * 10), a.score_samples(images[:20]) - 64 * np.log(10),
                               rtol=1e-3, atol=1e-2)
    with pytest.warns(UserWarning, match=r"flattened 8x8 images; pass them as an \(N, 8, 8\) array"):
        flat = vaekit.VAE(latent_dim=2, hidden=(16,), epochs=1).fit(X)  # a user who flattened them is told
    assert flat.model_config_.gaussian_scale == "learned"
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # no such warning for images, or for a table of 64 real numbers
        vaekit.VAE(latent_dim=2, channels=(4,), hidden=(16,), epochs=1).fit(images)
        vaekit.VAE(latent_dim=2, hidden=(16,), epochs=1).fit(np.random.default_rng(0).normal(size=(50, 64)))
    chosen = vaekit.VAE(latent_dim=2, channels=(4,), hidden=(16,), epochs=1, gaussian_scale="learned").fit(images)
    assert chosen.model_.likelihood.raw_scale.shape == (1, 8, 8)
    with pytest.raises(ValueError, match="gaussian_scale"):
        vaekit.VAE(gaussian_scale="per-pixel").fit(images)


def test_save_load_round_trip(binary_model, tmp_path):
    model, Xb = binary_model
    model.save(tmp_path / "vae")
    loaded = vaekit.VAE.load(tmp_path / "vae")
    np.testing.assert_array_equal(loaded.transform(Xb[:5]), model.transform(Xb[:5]))
    np.testing.assert_array_equal(loaded.score_samples(Xb[:5]), model.score_samples(Xb[:5]))
    assert loaded.get_params() == model.get_params()


def test_accepts_pandas_torch_and_images(digits):
    X = digits[0][:200]
    frame = pd.DataFrame(X, columns=[f"p{i}" for i in range(64)])
    est = vaekit.VAE(latent_dim=2, hidden=(16,), epochs=1).fit(frame)
    assert est.transform(torch.from_numpy(X[:3])).shape == (3, 2)
    images = (X.reshape(-1, 8, 8) > 0.5).astype(np.float32)
    conv = vaekit.VAE(latent_dim=2, channels=(4,), hidden=(16,), epochs=1).fit(images)
    assert conv.model_config_.network == "conv"
    assert conv.reconstruct(images[:3]).shape == (3, 8, 8) and conv.sample(2).shape == (2, 8, 8)


def test_inside_a_pipeline(digits):
    X, y = digits
    pipe = make_pipeline(vaekit.VAE(latent_dim=8, hidden=(64,), epochs=10, random_state=0),
                         LogisticRegression(max_iter=500))
    pipe.fit(X[:1200], y[:1200])
    assert pipe.score(X[1200:], y[1200:]) > 0.6  # chance is 0.1


@pytest.mark.parametrize("bad,match", [
    (np.array([[1.0, np.nan], [0.0, 1.0]]), "NaN or infinite"),
    (np.array([[1.0, np.inf], [0.0, 1.0]]), "NaN or infinite"),
    (np.zeros((0, 3)), "empty"),
    (np.zeros(5), "1-D"),
    (np.array([["a", "b"]]), "numeric"),
])
def test_bad_input_at_fit(bad, match):
    with pytest.raises(ValueError, match=match):
        vaekit.VAE(epochs=1).fit(bad)


def test_wrong_number_of_features_at_transform(binary_model):
    model, _ = binary_model
    with pytest.raises(ValueError, match="fitted on"):
        model.transform(np.zeros((2, 10)))
    with pytest.raises(ValueError, match="latent vector has 8"):
        model.inverse_transform(np.zeros((2, 3)))
