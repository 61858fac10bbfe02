"""Synthetic tables: the mixture column likelihood, the table stack's opt-in kinds, TabularSynthesizer
(fidelity, conditions, seeds, save/load, bad input), the quality report, augmentation and the CLI.

Small tables made here; one synthesizer is trained per module."""

from __future__ import annotations

import argparse
import math
import warnings

import numpy as np
import pandas as pd
import pytest
import torch
from scipy import stats

import vaekit
from vaekit.apps.tables import TabularSynthesizer, quality_report
from vaekit.apps.tables.cli import add_commands
from vaekit.data import tabular
from vaekit.likelihoods.table import TableLikelihood

FAST = {"latent_dim": 8, "hidden": (64, 64), "components": 5, "steps": 300, "batch_size": 128, "k": 20}


def mixed_table(n: int = 600, seed: int = 0) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    mode = rng.random(n) < 0.5
    frame = pd.DataFrame({
        "bimodal": np.where(mode, rng.normal(-4, 0.5, n), rng.normal(4, 0.5, n)),
        "count": rng.poisson(2, n).astype("int64"),
        "amount": np.round(rng.lognormal(3, 1, n), 2),
        "colour": rng.choice(["red", "green", "blue", "violet"], n, p=[0.5, 0.3, 0.15, 0.05]),
        "member": rng.random(n) < 0.3,
        "joined": pd.Timestamp("2021-01-01") + pd.to_timedelta(rng.integers(0, 100, n), unit="D"),
        "kind": np.where(mode, "low", "high"),
        "gain": np.where(rng.random(n) < 0.85, 0, np.round(rng.lognormal(8, 1, n))).astype("int64"),
    })
    frame.loc[rng.random(n) < 0.2, "amount"] = np.nan
    frame["colour"] = frame["colour"].astype("category")
    return frame


@pytest.fixture(scope="module")
def fitted():
    frame = mixed_table()
    frame["customer"] = [f"c{i:04d}" for i in range(len(frame))]
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        syn = TabularSynthesizer(random_state=0, **FAST).fit(frame)
    return syn, frame, [str(w.message) for w in caught]


# -- the mixture likelihood ------------------------------------------------------------------------
def mixture_px(columns, seed=0, batch=3):
    lik = TableLikelihood(columns=columns, min_scale=1e-3)
    torch.manual_seed(seed)
    h = torch.randn(batch, lik.n_params, lik.layout.width)
    return lik, lik(h, 1)


def test_discrete_mixture_is_a_probability_over_the_integers_in_range():
    # integers 0..20 standardised with mean 5, std 4: bins of width 1/4, support [-0.5, 20.5]
    col = {"kind": "numeric", "components": 4, "bin_width": 0.25, "low": (-0.5 - 5) / 4, "high": (20.5 - 5) / 4}
    lik, px = mixture_px([col])
    assert lik.n_params == 13  # one model-array value, 1 + 3 x 4 decoder outputs
    values = torch.arange(0, 21, dtype=torch.float32)
    x = ((values - 5) / 4).reshape(-1, 1, 1)  # (21, 1, 1) against batch 3
    p = px.log_prob(x).exp()  # (21, 3)
    np.testing.assert_allclose(p.sum(0).numpy(), np.ones(3), atol=1e-4)


def test_atoms_add_point_masses_and_the_law_still_sums_to_one():
    # discrete: integers 0..20 (mean 5, std 4) with atoms at 0 and 7
    col = {"kind": "numeric", "components": 2, "bin_width": 0.25, "low": -5.5 / 4, "high": 15.5 / 4,
           "atoms": [-5 / 4, 2 / 4]}
    _, px = mixture_px([col])
    p = px.log_prob(((torch.arange(0, 21.0) - 5) / 4).reshape(-1, 1, 1)).exp()
    np.testing.assert_allclose(p.sum(0).numpy(), np.ones(3), atol=1e-4)
    # continuous with an atom at 0: the density integrates to 1 - w_atom, the atom holds w_atom
    col = {"kind": "numeric", "components": 2, "low": -2.0, "high": 3.0, "atoms": [0.0]}
    _, px = mixture_px([col])
    grid = torch.linspace(-2, 3, 20001)
    grid = grid[grid != 0]
    dens = np.trapezoid(px.log_prob(grid.reshape(-1, 1, 1)).exp().numpy(), grid.numpy(), axis=0)
    w_atom = px.mixture()[0][..., -1].exp().reshape(-1).numpy()
    np.testing.assert_allclose(dens + w_atom, np.ones(3), atol=2e-3)
    np.testing.assert_allclose(px.log_prob(torch.zeros(1, 1)).exp().numpy(), w_atom, rtol=1e-5)
    torch.manual_seed(0)
    draws = px.sample((4000,))[:, :, 0]
    np.testing.assert_allclose((draws == 0).float().mean(0).numpy(), w_atom, atol=0.03)


def test_continuous_mixture_density_integrates_to_one_and_matches_scipy():
    col = {"kind": "numeric", "components": 3, "low": -2.0, "high": 3.0}
    _, px = mixture_px([col])
    grid = torch.linspace(-2, 3, 20001)
    dens = px.log_prob(grid.reshape(-1, 1, 1)).exp()  # (G, 3)
    np.testing.assert_allclose(np.trapezoid(dens.numpy(), grid.numpy(), axis=0), np.ones(3), atol=2e-3)
    # one untruncated component is scipy's logistic
    _, px1 = mixture_px([{"kind": "numeric", "components": 1}], batch=1)
    _, loc, scale = px1.mixture()
    v = torch.tensor([[0.7]])
    ref = stats.logistic.logpdf(0.7, loc=float(loc[0, 0, 0]), scale=float(scale[0, 0, 0]))
    assert float(px1.log_prob(v)) == pytest.approx(ref, abs=1e-5)


def test_mixture_samples_stay_in_range_and_follow_the_truncated_law():
    col = {"kind": "numeric", "components": 3, "low": -1.0, "high": 2.0}
    _, px = mixture_px([col], batch=1)
    torch.manual_seed(1)
    s = px.sample((20000,)).reshape(-1)
    assert float(s.min()) >= -1.0 and float(s.max()) <= 2.0
    grid = torch.linspace(-1, 2, 3001)
    cdf = np.cumsum(px.log_prob(grid.reshape(-1, 1, 1)).exp().reshape(-1).numpy()) * 0.001
    ks = stats.kstest(s.numpy(), lambda q: np.interp(q, grid.numpy(), cdf / cdf[-1]))
    assert ks.pvalue > 1e-3


def test_mixture_gradients_are_finite_far_in_the_tails():
    col = {"kind": "numeric", "components": 2, "bin_width": 1e-4, "low": -1.0, "high": 40.0}
    lik = TableLikelihood(columns=[col], min_scale=1e-3)
    h = torch.zeros(2, lik.n_params, 1, requires_grad=True)
    with torch.no_grad():
        h[:, :, :] = -30.0
    lp = lik(h, 1).log_prob(torch.tensor([[39.9], [-0.99]]))
    lp.sum().backward()
    assert torch.isfinite(lp).all() and torch.isfinite(h.grad).all()


def test_categorical_blocks_are_log_softmax_over_each_block_with_extreme_logits_and_missing_cells():
    columns = [{"kind": "categorical", "size": 3}, {"kind": "numeric"}, {"kind": "categorical", "size": 1},
               {"kind": "categorical", "size": 5}]
    lik = TableLikelihood(columns=columns)
    h = (torch.randn(4, lik.n_params, lik.layout.width) * 40).requires_grad_(True)
    h.data[0, 0, 5:10] = torch.tensor([300.0, -300.0, 0.0, 90.0, -1e4])  # far apart within a block
    x = torch.tensor([[0, 0, 1, 0.5, 1, 0, 0, 0, 0, 1],
                      [1, 0, 0, -1.0, 1, 0, 1, 0, 0, 0],
                      [math.nan] * 3 + [0.0, 1, 0, 0, 0, 1, 0],  # first block missing
                      [0, 1, 0, 2.0, 1] + [math.nan] * 5])
    px = lik(h, 1)
    got = px.feature_log_prob(x)
    want = torch.zeros(4, 4)
    for i in range(4):  # each block by itself: log_softmax of its logits at the one-hot category
        for col, (start, size) in zip((0, 2, 3), ((0, 3), (4, 1), (5, 5))):
            block = x[i, start:start + size]
            if not torch.isnan(block).any():
                want[i, col] = torch.log_softmax(h[i, 0, start:start + size].double(), -1)[block.argmax()].float()
    assert torch.allclose(got[:, [0, 2, 3]], want[:, [0, 2, 3]], atol=1e-4, rtol=1e-5)
    assert got[2, 0] == 0 and got[3, 3] == 0  # missing blocks are left out
    got[:, [0, 2, 3]].sum().backward()
    assert torch.isfinite(h.grad).all()


def test_tail_safe_softplus_and_logsumexp_agree_with_torch():
    from vaekit.likelihoods.table import logsumexp, softplus

    t = torch.tensor([-1e4, -100.0, -16.0, -3.0, 0.0, 5.0, 50.0, 1e4])
    assert (softplus(t) - torch.nn.functional.softplus(t)).abs().max() < 4e-7
    rows = torch.tensor([[0.0, -math.inf, -3.0], [-200.0, -1000.0, -250.0], [-math.inf] * 3, [1e4, 0.0, -1e4]])
    got, want = logsumexp(rows), torch.logsumexp(rows, -1)
    assert torch.isneginf(got[2]) and torch.allclose(got[[0, 1, 3]], want[[0, 1, 3]])


def test_mixture_terms_match_the_plain_formula_where_it_is_stable():
    col = {"kind": "numeric", "components": 3, "atoms": [0.0]}
    lik, px = mixture_px([col], seed=2, batch=5)
    v = torch.tensor([[0.0], [0.3], [-2.0], [5.0], [1e-3]])
    got = px.mixture_log_prob(v)  # (5, 1)
    log_w, loc, scale = px.mixture()
    t = (v.unsqueeze(-1) - loc) / scale  # (5, 1, 3)
    dens = -t - scale.log() - 2 * torch.nn.functional.softplus(-t)  # logistic log-density, torch's own softplus
    at = v.unsqueeze(-1) == 0  # at the atom only the atom's weight counts
    terms = torch.cat([dens.masked_fill(at, -math.inf), torch.where(at, 0.0, -math.inf)], -1)
    assert torch.allclose(got, torch.logsumexp(log_w + terms, -1), atol=1e-5)


# -- the table stack's opt-in kinds ----------------------------------------------------------------
def test_rich_spec_round_trips_types_dates_and_missing_cells():
    frame = mixed_table(50)
    spec = tabular.fit_table(frame, components=3, missing="model", keep_types=True)
    kinds = {c["name"]: c for c in spec["columns"]}
    assert kinds["joined"]["datetime"] == "D" and kinds["count"]["integer"] and "amount (missing)" in kinds
    back = tabular.decode_table(tabular.encode_table(frame, spec), spec)
    for c in frame.columns:
        assert str(back[c].dtype) == str(frame[c].dtype), c
    pd.testing.assert_frame_equal(back, frame, check_exact=False, rtol=1e-5, check_categorical=False)
    # discrete columns carry no Jacobian, continuous ones do
    assert tabular.log_jacobian(spec) == pytest.approx(-math.log(kinds["bimodal"]["std"]) - math.log(kinds["amount"]["std"]))


def test_observed_decimals_are_relative_to_each_value():
    from vaekit.data.tabular import observed_decimals

    assert observed_decimals(np.array([43.8, 12.1], dtype=np.float32).astype(np.float64)) == 1  # float32 storage
    assert observed_decimals(np.array([0.0, 1.25, -3.5])) == 2
    assert observed_decimals(np.array([1e-8, 2.5e-9, 3e-8])) is None  # tiny values are not rounded to 0
    assert observed_decimals(np.array([0.1234567, 2.0])) is None  # more than 6 decimals: left alone


def test_default_spec_is_unchanged_by_the_new_options():
    frame = mixed_table(50).drop(columns=["joined"])
    spec = tabular.fit_table(frame)
    assert all("components" not in c and "dtype" not in c for c in spec["columns"] if c["kind"] != "numeric")
    assert not any(c["kind"] == "missing" for c in spec["columns"])
    assert TableLikelihood(columns=tabular.likelihood_columns(spec)).n_params == 1


# -- the synthesizer -------------------------------------------------------------------------------
def test_samples_keep_columns_dtypes_categories_ranges_and_patterns(fitted):
    syn, frame, _ = fitted
    fake = syn.sample(3000, random_state=0)
    assert list(fake.columns) == list(frame.columns)
    for c in frame.columns:
        assert str(fake[c].dtype) == str(frame[c].dtype), c
    assert set(fake["colour"].dropna()) == set(frame["colour"]) and set(fake["kind"]) == {"low", "high"}
    for c in ("bimodal", "count", "amount", "joined"):
        assert fake[c].min() >= frame[c].min() and fake[c].max() <= frame[c].max(), c
    assert (fake["count"] >= 0).all()
    # amounts kept to cents come back in cents (the other float column has no such precision)
    amounts = fake["amount"].dropna()
    assert (amounts == amounts.round(2)).all() and (amounts != amounts.round(1)).any()
    assert (fake["bimodal"] != fake["bimodal"].round(6)).any()
    # both modes, and little mass between them (a single Gaussian would put a third of it there)
    assert 0.35 < (fake["bimodal"] > 0).mean() < 0.65 and (fake["bimodal"].abs() < 2).mean() < 0.05
    # a spike (85% zeros, the rest in the thousands) is reproduced by its atom
    assert abs((fake["gain"] == 0).mean() - (frame["gain"] == 0).mean()) < 0.05 and fake["gain"].max() > 100
    # the missing pattern is reproduced, not imputed away
    assert abs(fake["amount"].isna().mean() - frame["amount"].isna().mean()) < 0.05
    assert abs(fake["member"].mean() - frame["member"].mean()) < 0.07
    # the rare category (5%) is there; the ID column is new, unique and not a real ID
    assert (fake["colour"] == "violet").mean() > 0.01
    assert fake["customer"].is_unique and not set(fake["customer"]) & set(frame["customer"])


def test_id_column_is_warned_about_and_left_out(fitted):
    syn, _, caught = fitted
    assert syn.id_columns_ == ["customer"]
    assert any("'customer'" in m and "ID" in m for m in caught)


def test_conditional_sampling_returns_only_the_asked_value_and_shifts_the_rest(fitted):
    syn, _, _ = fitted
    rows = syn.sample(400, conditions={"kind": "high"}, random_state=3)
    assert (rows["kind"] == "high").all()
    assert (rows["bimodal"] > 0).mean() > 0.8  # "high" rows have the upper mode in the data
    both = syn.sample(50, conditions={"colour": "violet", "member": True}, random_state=3)
    assert (both["colour"] == "violet").all() and both["member"].all()


def test_sampling_is_reproducible_with_a_seed(fitted):
    syn, _, _ = fitted
    a, b, c = syn.sample(200, random_state=7), syn.sample(200, random_state=7), syn.sample(200, random_state=8)
    pd.testing.assert_frame_equal(a, b)
    assert not a.drop(columns=["customer"]).equals(c.drop(columns=["customer"]))


def test_score_samples_prefers_real_rows_and_survives_save_load(fitted, tmp_path):
    syn, frame, _ = fitted
    real = frame.iloc[:100]
    broken = real.copy()
    broken["bimodal"] = 0.0  # the valley between the two modes
    s_real, s_broken = syn.score_samples(real), syn.score_samples(broken)
    assert np.isfinite(s_real).all() and (s_real > s_broken).mean() > 0.95
    syn.save(tmp_path / "syn")
    back = vaekit.load(tmp_path / "syn")
    assert isinstance(back, TabularSynthesizer)
    pd.testing.assert_frame_equal(back.sample(100, random_state=1), syn.sample(100, random_state=1))
    np.testing.assert_allclose(back.score_samples(real), s_real, rtol=1e-6)
    with pytest.raises(ValueError, match="already holds"):
        syn.save(tmp_path / "syn")


def test_score_samples_is_a_density_in_the_original_units():
    rng = np.random.default_rng(0)
    frame = pd.DataFrame({"x": rng.normal(size=200), "c": rng.choice(["a", "b"], 200)})
    params = {"latent_dim": 2, "hidden": (16,), "components": 2, "steps": 20, "k": 5}
    a = TabularSynthesizer(**params).fit(frame)
    b = TabularSynthesizer(**params).fit(frame.assign(x=frame["x"] * 1000))
    diff = b.score_samples(frame.assign(x=frame["x"] * 1000)[:20]) - a.score_samples(frame[:20])
    np.testing.assert_allclose(diff, -math.log(1000), atol=1e-3)


def assert_mixture_prior_round_trips(syn, frame, path, *, n, rows, seed):
    """Samples and finite scores under the model's mixture prior, identical after save/load; the samples."""
    from vaekit.priors import MixtureOfGaussians

    fake = syn.sample(n, random_state=seed)
    s = syn.score_samples(frame.iloc[:rows])
    assert np.isfinite(s).all()
    syn.save(path)
    back = vaekit.load(path)
    assert isinstance(back.model_.prior, MixtureOfGaussians)
    pd.testing.assert_frame_equal(back.sample(n, random_state=seed), fake)
    np.testing.assert_allclose(back.score_samples(frame.iloc[:rows]), s, rtol=1e-6)
    return fake


def test_mixture_prior_is_learned_sampled_from_and_scored_under(tmp_path):
    from vaekit.priors import MixtureOfGaussians

    frame = mixed_table(300)
    syn = TabularSynthesizer(random_state=0, prior="mixture", prior_components=4, **{**FAST, "steps": 60}).fit(frame)
    prior = syn.model_.prior
    assert isinstance(prior, MixtureOfGaussians) and prior.loc.shape == (4, FAST["latent_dim"])
    start = MixtureOfGaussians(FAST["latent_dim"], n_components=4).loc
    assert not torch.allclose(prior.loc, start)  # trained with the model
    fake = assert_mixture_prior_round_trips(syn, frame, tmp_path / "mix", n=50, rows=30, seed=3)
    assert list(fake.columns) == list(frame.columns) and len(fake) == 50
    with pytest.raises(ValueError, match="prior must be one of 'normal', 'mixture', 'fitted'"):
        TabularSynthesizer(prior="vamp").fit(frame)


def test_fitted_prior_matches_the_aggregate_posterior_and_is_what_samples_and_scores_use(tmp_path):
    from vaekit.priors import MixtureOfGaussians

    frame = mixed_table(400)
    syn = TabularSynthesizer(random_state=0, prior="fitted", prior_components=5, **{**FAST, "steps": 80}).fit(frame)
    prior = syn.model_.prior
    assert isinstance(prior, MixtureOfGaussians) and prior.loc.shape == (5, FAST["latent_dim"])
    with torch.no_grad():
        qz = syn.model_.encode(syn._model_inputs(frame)[0])
        loc, scale = qz.base_dist.loc, qz.base_dist.scale
        z = prior().sample((20000,))
    # the mixture's moments are those of the aggregate posterior (1/N) sum_n q(z | x_n)
    np.testing.assert_allclose(z.mean(0), loc.mean(0), atol=0.2)  # one draw per row: about 0.05 noise
    np.testing.assert_allclose(z.var(0), loc.var(0) + scale.pow(2).mean(0), rtol=0.25, atol=0.02)
    assert syn.get_params()["prior"] == "fitted" and syn.model_config_.prior == "mixture"
    assert_mixture_prior_round_trips(syn, frame, tmp_path / "fitted", n=40, rows=20, seed=2)



# -- bad input: one sentence each --------------------------------------------------------------------
@pytest.mark.parametrize("frame, match", [
    (pd.DataFrame({"x": [1.0]}), "1 row"),
    (pd.DataFrame({"x": [1, "a", 2.5] * 10}), "mixes types"),
    (np.zeros((10, 2)), "pandas DataFrame"),
])
def test_bad_tables_get_one_clear_sentence(frame, match):
    with pytest.raises(ValueError, match=match):
        TabularSynthesizer(**FAST).fit(frame)


def test_all_missing_column_is_warned_about_and_comes_back_missing(tmp_path):
    frame = mixed_table(100)[["bimodal", "kind"]].assign(empty=np.nan)
    with pytest.warns(UserWarning, match="'empty'.*entirely missing"):
        syn = TabularSynthesizer(**{**FAST, "steps": 5}).fit(frame)
    fake = syn.sample(20, random_state=0)
    assert list(fake.columns) == ["bimodal", "kind", "empty"] and fake["empty"].isna().all()
    with warnings.catch_warnings():  # the report draws the empty column without numpy's 0 / 0 warning
        warnings.simplefilter("error", RuntimeWarning)
        quality_report(frame, fake).to_html(tmp_path / "report.html")
    assert (tmp_path / "report.html").stat().st_size > 0


def test_bad_conditions_get_one_clear_sentence(fitted):
    syn, _, _ = fitted
    for conditions, match in [({"colour": "purple"}, "never took the value 'purple'"),
                              ({"height": 3}, "not a column"), ({"count": 10_000}, "outside"),
                              ({"customer": "c0001"}, "ID column"), ({"kind": None}, "missing")]:
        with pytest.raises(ValueError, match=match):
            syn.sample(5, conditions=conditions)


def test_auto_training_length_is_passes_over_the_rows_within_the_step_bounds(fitted):
    from vaekit.apps.tables.synthesizer import auto_epochs

    assert auto_epochs(3000, 500, most=2000) == 100  # 6 batches a pass, 100 passes: 600 steps
    assert auto_epochs(30000, 500, most=2000) == 34  # 60 batches a pass: stops at ~2,000 steps
    assert auto_epochs(200, 200, most=2000) == 300  # a tiny table still gets 300 steps
    assert auto_epochs(3000, 500, most=120) == 20  # the user's ``steps`` is the most
    syn, frame, _ = fitted  # 600 rows in batches of 128: 5 a pass, 300 steps is both least and most
    assert len(syn.history_.records) == 60


def test_auto_precision_takes_bf16_from_where_it_is_faster_on_cpus_that_have_it(monkeypatch):
    """Both CPU kinds simulated. The table model trains in bf16 from BF16_FASTER_WORK, below the
    library-wide threshold; other estimators keep BF16_MIN_WORK; precision='fp32' is always float32."""
    import vaekit.runtime as rt

    frame = mixed_table(200)
    opts = {"latent_dim": 8, "hidden": (512, 512), "components": 3, "epochs": 1, "batch_size": 200, "k": 5}
    syn = TabularSynthesizer(**opts).fit(frame)
    work = rt.matmul_work(syn.model_, 200)
    assert rt.BF16_FASTER_WORK <= work < rt.BF16_MIN_WORK
    monkeypatch.setattr(rt, "cpu_has_fast_bf16", lambda: True)
    assert TabularSynthesizer(**opts).fit(frame).history_.precision == "bf16"
    assert TabularSynthesizer(**opts, precision="fp32").fit(frame).history_.precision == "fp32"
    small = TabularSynthesizer(**{**opts, "hidden": (64, 64)}).fit(frame)
    assert rt.matmul_work(small.model_, 200) < rt.BF16_FASTER_WORK and small.history_.precision == "fp32"
    assert rt.autocast_dtype("auto", torch.device("cpu"), work=work) is None  # the library-wide rule
    monkeypatch.setattr(rt, "cpu_has_fast_bf16", lambda: False)
    assert TabularSynthesizer(**opts).fit(frame).history_.precision == "fp32"


def test_early_stopping_holds_out_rows_and_keeps_the_best_epoch():
    frame = mixed_table(400)
    opts = {**FAST, "steps": 2000, "epochs": 60}
    plain = TabularSynthesizer(**opts).fit(frame)
    assert "val_elbo" not in plain.history_.records[-1] and len(plain.history_.records) == 60
    syn = TabularSynthesizer(**opts, patience=3, validation_fraction=0.25).fit(frame)
    h = syn.history_
    vals = [r["val_elbo"] for r in h.records]
    assert h.stopped_early and len(vals) < 60  # three epochs without a better validation ELBO
    assert h.best_epoch == int(np.argmax(vals)) + 1 and len(vals) - h.best_epoch == 3
    # 300 training rows in batches of 128: 3 steps an epoch
    assert h.records[0]["step"] == 3
    assert syn.sample(50, random_state=0).shape == (50, frame.shape[1])
    with pytest.raises(ValueError, match="validation_fraction"):
        TabularSynthesizer(patience=2, validation_fraction=0.6).fit(frame)


def test_unfitted_and_bad_parameters():
    from sklearn.exceptions import NotFittedError

    with pytest.raises(NotFittedError):
        TabularSynthesizer().sample(3)
    with pytest.raises(ValueError, match="components"):
        TabularSynthesizer(components=0).fit(mixed_table(30))


# -- quality report, augmentation, CLI ---------------------------------------------------------------
def test_exact_copies_count_rows_equal_in_every_column_missing_included():
    from vaekit.apps.tables.quality import exact_copies

    train = pd.DataFrame({"a": [1, 2, np.nan], "b": ["x", "y", None]})
    rows = pd.DataFrame({"a": [1, 2, np.nan, 1], "b": ["x", "x", None, None]})
    assert exact_copies(rows, train) == 0.5  # (1, x) and (NaN, None) repeat; (2, x), (1, None) do not


@pytest.mark.slow  # SDMetrics' reports, four classifiers, DCR and two figures: ~10 s on a quiet machine
def test_quality_report_scores_copies_and_broken_pairs(tmp_path):
    real = mixed_table(300, seed=1)
    holdout = mixed_table(300, seed=2)
    same = quality_report(real, real.sample(frac=1.0, random_state=0), holdout=holdout, privacy_rows=200)
    assert same.score > 0.99 and same.value("exact copies of training rows (synthetic, %)") == 100.0
    assert same.value("exact copies of training rows (held-out real, %)") < 1.0
    rng = np.random.default_rng(0)
    shuffled = real.apply(lambda col: col.to_numpy()[rng.permutation(len(col))])  # same columns, no joint law
    broken = quality_report(real, shuffled, holdout=holdout, target="kind", privacy_rows=200)
    assert broken.value("column shapes") > 0.99 and broken.value("column pair trends") < 0.8
    # "kind" follows "bimodal" exactly: real rows teach it, shuffled rows cannot
    assert broken.value("ML efficacy F1 (train real)") > 0.95 > 0.7 > broken.value("ML efficacy F1 (train synthetic)")
    page = broken.to_html(tmp_path / "r.html").read_text()
    assert page.count("data:image/png;base64,") == 2 and "Quality score" in page and "bimodal" in page


def test_vaekit_augment_adds_rows_of_the_chosen_class(fitted):
    syn, frame, _ = fitted
    extra = vaekit.augment(frame, "kind", 30, classes=["high"], model=syn)
    assert len(extra) == 30 and (extra["kind"] == "high").all() and list(extra.columns) == list(frame.columns)


def run_cli(argv):
    parser = argparse.ArgumentParser()
    add_commands(parser.add_subparsers(dest="command"))
    args = parser.parse_args(argv)
    return args.func(args)


@pytest.mark.slow  # a fit, a conditional sample and an SDMetrics report with figures
def test_cli_fit_sample_report(tmp_path, capsys):
    frame = mixed_table(300)
    frame.to_csv(tmp_path / "t.csv", index=False)
    assert run_cli(["synth", "fit", str(tmp_path / "t.csv"), "--out", str(tmp_path / "syn"), "--quiet", "--no-report",
                    "--dates", "joined", "--set", "steps=30", "--set", "hidden=[32]"]) == 0
    assert "saved to" in capsys.readouterr().out and not (tmp_path / "syn" / "report.html").exists()
    assert run_cli(["synth", "sample", str(tmp_path / "syn"), "-n", "40", "--out", str(tmp_path / "f.csv"),
                    "--where", "kind=high", "--seed", "1"]) == 0
    fake = pd.read_csv(tmp_path / "f.csv")
    assert len(fake) == 40 and (fake["kind"] == "high").all() and list(fake.columns) == list(frame.columns)
    assert run_cli(["synth", "report", str(tmp_path / "t.csv"), str(tmp_path / "f.csv"), "--out",
                    str(tmp_path / "r.html"), "--dates", "joined"]) == 0
    assert "quality score" in capsys.readouterr().out and (tmp_path / "r.html").stat().st_size > 10_000
    from vaekit.cli_common import UserError

    with pytest.raises(UserError, match="already exists"):
        run_cli(["synth", "report", str(tmp_path / "t.csv"), str(tmp_path / "f.csv"), "--out", str(tmp_path / "r.html")])
    with pytest.raises(ValueError, match="never took the value"):
        run_cli(["synth", "sample", str(tmp_path / "syn"), "-n", "5", "--out", str(tmp_path / "g.csv"),
                 "--where", "kind=medium"])
