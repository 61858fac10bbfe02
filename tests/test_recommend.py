"""Recommendation: metrics against hand-computed cases, the strong-generalisation split, the model
family, a planted-cluster quality floor, save/load, content and hybrid models, bad input, the CLI."""

from __future__ import annotations

import argparse
import math
import shutil
import warnings

import numpy as np
import pandas as pd
import pytest
import scipy.sparse as sp
import torch
from torch.distributions import Independent, Normal

from vaekit.apps.recommend import Recommender, evaluate_scores, ndcg_at_k, recall_at_k, strong_split
from vaekit.apps.recommend.batches import phased_loader, sparse_loader
from vaekit.apps.recommend.cli import add_commands
from vaekit.apps.recommend.composite import OldPosterior, composite_elbo, composite_prior
from vaekit.apps.recommend.content import ContentRecommender
from vaekit.apps.recommend.data import synthetic_clusters
from vaekit.apps.recommend.estimator import init_popularity_bias
from vaekit.apps.recommend.metrics import coverage, exclude, top_k
from vaekit.apps.recommend.model import FAMILY
from vaekit.apps.recommend.training import model_scores
from vaekit.config import ModelConfig, build_model
from vaekit.evaluate import log_likelihood
from vaekit.objectives import elbo
from vaekit.serve.recommender import RecommenderScores

SMALL = {"latent_dim": 8, "hidden": (32,), "epochs": 40, "batch_size": 64, "patience": 0, "device": "cpu",
         "n_models": 1}  # one model unless a test is about ensembles (the default mixes 5)


# -- metrics ----------------------------------------------------------------------------------------
def test_ndcg_and_recall_match_hand_computed_values():
    scores = np.array([[5.0, 4, 3, 2, 1], [1.0, 2, 3, 4, 5]])
    held = sp.csr_matrix(np.array([[0, 1, 0, 1, 0], [0, 0, 0, 0, 1]]))
    # user 0: hits at ranks 2 and 4; ideal: ranks 1 and 2. user 1: its one item at rank 1.
    expected0 = (1 / math.log2(3) + 1 / math.log2(5)) / (1 + 1 / math.log2(3))
    np.testing.assert_allclose(ndcg_at_k(scores, held, 5), [expected0, 1.0])
    np.testing.assert_allclose(ndcg_at_k(scores, held, 2), [(1 / math.log2(3)) / (1 + 1 / math.log2(3)), 1.0])
    np.testing.assert_allclose(recall_at_k(scores, held, 1), [0.0, 1.0])
    np.testing.assert_allclose(recall_at_k(scores, held, 2), [0.5, 1.0])  # 1 hit / min(2, 2)
    np.testing.assert_allclose(recall_at_k(scores, held, 5), [1.0, 1.0])  # normalised by min(k, n_held)
    assert coverage(scores, 2) == pytest.approx(4 / 5)  # items {0, 1} and {4, 3}


def test_history_is_excluded_and_users_without_held_out_items_are_nan():
    scores = np.array([[3.0, 2, 1], [1.0, 2, 3]])
    history = sp.csr_matrix(np.array([[1, 0, 0], [0, 0, 0]]))
    held = sp.csr_matrix(np.array([[0, 1, 0], [0, 0, 0]]))
    s = exclude(scores, history)
    assert top_k(s, 1)[0, 0] == 1 and np.isneginf(s[0, 0])
    r = recall_at_k(s, held, 1)
    assert r[0] == 1.0 and np.isnan(r[1])
    assert evaluate_scores(scores, history, held)["recall@20"] == 1.0


def test_strong_split_holds_out_users_and_a_fifth_of_their_clicks():
    X, _ = synthetic_clusters(300, 60, clicks=15, seed=1)
    s = strong_split(X, n_val=30, n_test=40, seed=0)
    assert s.train.shape[0] == 230 and len(s.val.users) == 30 and len(s.test.users) == 40
    assert len(set(s.train_users) & set(s.test.users)) == 0 and len(set(s.val.users) & set(s.test.users)) == 0
    full = X[s.test.users][:, s.items]
    assert (s.test.history + s.test.held_out - full).nnz == 0  # a partition of each user's clicks
    assert s.test.history.multiply(s.test.held_out).nnz == 0
    n = np.asarray(full.sum(1)).ravel()
    np.testing.assert_array_equal(np.asarray(s.test.held_out.sum(1)).ravel(), np.floor(0.2 * n) * (n >= 5))


# -- model family ----------------------------------------------------------------------------------
def test_family_builds_through_the_registry_and_gives_true_multinomial_nats():
    cfg = ModelConfig(family=FAMILY, input_shape=(12,), latent_dim=3, hidden=(8,), activation="tanh",
                      likelihood="multinomial", options={"dropout": 0.0, "stochastic": True, "encoder": "mlp",
                                                         "decoder_hidden": None})
    model = build_model(cfg).eval()
    x = torch.tensor([[2.0, 1] + [0] * 10, [0] * 11 + [1.0]])
    out = model(x)
    probs = torch.softmax(model.logits(out.z), -1)
    # log p(x|z) of counts (2, 1): log(3! / (2! 1!)) + 2 log p0 + log p1
    expected = math.log(3) + 2 * torch.log(probs[0, 0]) + torch.log(probs[0, 1])
    assert out.px.log_prob(x)[0].item() == pytest.approx(expected.item(), rel=1e-5)
    terms = elbo(model, x)
    assert terms.elbo.shape == (2,) and torch.isfinite(terms.loss)
    terms.loss.backward()
    assert all(p.grad is not None for p in model.decoder.parameters())


# -- end to end on planted clusters ----------------------------------------------------------------
@pytest.fixture(scope="module")
def clusters():
    X, _ = synthetic_clusters(500, 80, n_clusters=4, clicks=12, seed=0)
    split = strong_split(X, n_val=50, n_test=100, seed=0)
    rec = Recommender(random_state=0, **SMALL).fit(split.train, X_val=split.val)
    return split, rec


def test_recommender_beats_popularity_by_a_wide_margin(clusters):
    split, rec = clusters
    test = split.test
    ours = evaluate_scores(rec.predict(test.history), test.history, test.held_out)
    pop = np.tile(rec.item_popularity_, (test.history.shape[0], 1))
    base = evaluate_scores(pop, test.history, test.held_out)
    assert ours["recall@20"] >= base["recall@20"] + 0.4, (ours, base)
    assert ours["ndcg@100"] >= 1.5 * base["ndcg@100"], (ours, base)
    assert rec.val_ndcg_ is not None and rec.curve_[0]["val_ndcg@100"] < rec.val_ndcg_


def test_recommend_excludes_history_and_scores_are_log_probabilities(clusters):
    split, rec = clusters
    H = split.test.history
    ids, scores = rec.recommend(H, n=5)
    assert ids.shape == scores.shape == (H.shape[0], 5)
    assert not any(H[i, j] for i in range(H.shape[0]) for j in ids[i])
    assert np.all(np.diff(scores, axis=1) <= 0)
    np.testing.assert_allclose(np.exp(rec.predict(H[:3])).sum(1), 1.0, rtol=1e-5)
    z = rec.transform(H[:4])
    assert z.shape == (4, SMALL["latent_dim"]) and np.array_equal(z, rec.transform(H[:4]))


def test_score_samples_are_nats_and_favour_histories_from_the_planted_structure(clusters):
    split, rec = clusters
    H = split.test.history[:20]
    rng = np.random.default_rng(0)
    shuffled = sp.csr_matrix(rng.permuted(H.toarray(), axis=1))  # same click counts, random items
    real, fake = rec.score_samples(H), rec.score_samples(shuffled)
    assert np.all(real <= 1e-6) and np.all(np.isfinite(real))
    assert real.mean() > fake.mean() + 2  # per user, in nats


def test_save_load_gives_the_same_recommendations(clusters, tmp_path):
    split, rec = clusters
    rec.save(tmp_path / "rec")
    again = Recommender.load(tmp_path / "rec")
    a, b = rec.recommend(split.test.history, n=10), again.recommend(split.test.history, n=10)
    np.testing.assert_array_equal(a[0], b[0])
    np.testing.assert_allclose(a[1], b[1], rtol=1e-6)
    with pytest.raises(ValueError, match="already holds"):
        rec.save(tmp_path / "rec")


def test_an_ensemble_is_the_mixture_of_its_members_and_saves_and_loads(clusters, tmp_path):
    split, single = clusters
    rec = Recommender(random_state=0, **{**SMALL, "n_models": 3}).fit(split.train, X_val=split.val)
    H = split.test.history[:30]
    members = np.stack([model_scores(model, H) for model in rec.models_])  # (M, U, I) log-probabilities
    np.testing.assert_allclose(members[0], single.predict(H), rtol=1e-5)  # member 0 is the seed-0 model
    assert np.abs(members[1] - members[0]).max() > 1e-3  # seeds 1 and 2 learn other weights
    np.testing.assert_allclose(rec.predict(H), np.log(np.exp(members.astype(np.float64)).mean(0)), rtol=1e-5)
    np.testing.assert_allclose(np.exp(rec.predict(H)).sum(1), 1.0, rtol=1e-5)
    rec.save(tmp_path / "ens")
    again = Recommender.load(tmp_path / "ens")
    a, b = rec.recommend(split.test.history, n=10), again.recommend(split.test.history, n=10)
    np.testing.assert_array_equal(a[0], b[0])
    np.testing.assert_allclose(a[1], b[1], rtol=1e-6)
    np.testing.assert_allclose(rec.score_samples(H[:4]), again.score_samples(H[:4]), rtol=1e-6)
    shutil.rmtree(tmp_path / "ens" / "members" / "2")
    with pytest.raises(ValueError, match="3 ensemble members"):
        Recommender.load(tmp_path / "ens")
    with pytest.raises(ValueError, match="n_models"):
        Recommender(**{**SMALL, "n_models": 0}).fit(split.train)


def test_a_mixed_ensemble_takes_the_model_names_in_turn_and_saves_each_member(clusters, tmp_path, capsys):
    from vaekit.cli import main

    split, _ = clusters
    rec = Recommender(model="vae+recvae", random_state=0, **{**SMALL, "n_models": 3, "epochs": 4})
    rec.fit(split.train, X_val=split.val)
    linear = [sum(isinstance(m, torch.nn.Linear) for m in model.decoder) == 1 for model in rec.models_]  # RecVAE: linear
    assert linear == [False, True, False] and [c.options["decoder_hidden"] for c in rec.member_configs_] == [None, [], None]
    assert Recommender().model == "vae+recvae" and Recommender().n_models == 5  # the default: 3 "vae", 2 "recvae"
    H = split.test.history[:20]
    rec.save(tmp_path / "mixed")
    again = Recommender.load(tmp_path / "mixed")
    assert [sum(isinstance(m, torch.nn.Linear) for m in model.decoder) == 1 for model in again.models_] == linear
    np.testing.assert_allclose(again.predict(H), rec.predict(H), rtol=1e-5)
    np.testing.assert_allclose(again.score_samples(H[:3]), rec.score_samples(H[:3]), rtol=1e-6)
    with pytest.raises(ValueError, match="Unknown model 'vae\\+foo'.*joined by"):
        Recommender(model="vae+foo", **SMALL).fit(split.train)
    with pytest.raises(ValueError, match="not a density model"):
        Recommender(model="vae+mult-dae", random_state=0, **{**SMALL, "n_models": 2, "epochs": 1}).fit(
            split.train).score_samples(H[:2])
    assert main(["recommend", "fit", "ratings.csv", "--out", str(tmp_path / "r"), "--model", "vae+foo"]) == 2
    assert "unknown model 'vae+foo'" in capsys.readouterr().err
    assert not (tmp_path / "r").exists()


def test_ensemble_log_likelihood_is_the_mixture_density(clusters):
    split, _ = clusters
    rec = Recommender(random_state=0, **{**SMALL, "n_models": 2, "epochs": 3}).fit(split.train, X_val=split.val)
    H = split.test.history[:6]
    loader = sparse_loader(H, batch_size=10)
    per_model = np.stack([log_likelihood(model, loader, k=rec.k).double().numpy() for model in rec.models_])  # (M, U)
    mixture = np.log(np.exp(per_model - per_model.max(0)).mean(0)) + per_model.max(0)
    np.testing.assert_allclose(rec.score_samples(H), mixture, rtol=1e-6)


def test_mult_dae_trains_and_is_not_a_density_model():
    X, _ = synthetic_clusters(200, 40, seed=2)
    rec = Recommender(model="mult-dae", random_state=0, **{**SMALL, "epochs": 5}).fit(X)
    assert rec.predict(X[:3]).shape == (3, 40)
    with pytest.raises(ValueError, match="not a density model"):
        rec.score_samples(X[:3])


# -- RecVAE: composite prior, alternating updates, popularity bias ----------------------------------
def small_model(n_items: int = 12, **options) -> torch.nn.Module:
    cfg = ModelConfig(family=FAMILY, input_shape=(n_items,), latent_dim=3, hidden=(8,), activation="tanh",
                      likelihood="multinomial", options={"dropout": 0.5, "stochastic": True, "encoder": "dense",
                                                         "decoder_hidden": [], **options})
    return build_model(cfg)


def test_composite_prior_is_the_per_dimension_mixture_of_the_paper():
    old = Independent(Normal(torch.tensor([[0.5, -1.0]]), torch.tensor([[0.3, 2.0]])), 1)
    z = torch.tensor([[0.2, 1.5]])
    w = (3 / 20, 3 / 4, 1 / 10)

    def pdf(v, mu, var):
        return math.exp(-0.5 * (v - mu) ** 2 / var) / math.sqrt(2 * math.pi * var)

    expected = sum(math.log(w[0] * pdf(v, 0, 1) + w[1] * pdf(v, m, s**2) + w[2] * pdf(v, 0, math.exp(10)))
                   for v, m, s in ((0.2, 0.5, 0.3), (1.5, -1.0, 2.0)))
    assert composite_prior(old).log_prob(z).item() == pytest.approx(expected, rel=1e-6)


@pytest.mark.parametrize("phase, moved, fixed", [(0, "encoder", "decoder"), (1, "decoder", "encoder")])
def test_an_alternating_step_updates_only_its_own_half(phase, moved, fixed):
    torch.manual_seed(0)
    model = small_model().train()
    x = torch.tensor(np.random.default_rng(0).integers(0, 2, (6, 12)), dtype=torch.float32)
    x[:, 0] = 1  # no empty history
    terms = composite_elbo(model, x, torch.full((6,), phase), old=OldPosterior(model))
    terms.loss.backward()
    assert all(p.grad is None for p in getattr(model, fixed).parameters())
    assert any(p.grad is not None and p.grad.abs().sum() > 0 for p in getattr(model, moved).parameters())
    kl = torch.distributions.kl_divergence(model.encode(x), model.prior()).detach()  # reported KL: to N(0, I), in nats
    assert terms.kl.shape == (6,) and bool((terms.kl >= 0).all()) and terms.elbo.shape == (6,)
    assert float(terms.kl.mean()) == pytest.approx(float(kl.mean()), rel=0.5)  # dropout differs in phase 0


def test_encoder_steps_see_dropout_and_decoder_steps_do_not():
    torch.manual_seed(0)
    model = small_model(dropout=0.9).train()
    x = torch.ones(4, 12)
    assert torch.equal(model(x, dropout=False).qz.mean, model(x, dropout=False).qz.mean)
    assert not torch.equal(model(x).qz.mean, model(x).qz.mean)


def test_old_posterior_is_frozen_until_refreshed():
    torch.manual_seed(0)
    model = small_model()
    old = OldPosterior(model)
    x = torch.ones(2, 12)
    before = old(x).mean.clone()
    with torch.no_grad():
        model.encoder.head.bias.add_(1.0)
    assert torch.equal(old(x).mean, before) and not any(p.requires_grad for p in old.encoder.parameters())
    old.refresh({}, model)
    model.eval()
    assert torch.allclose(old(x).mean, model.encode(x).mean)


def test_phased_loader_makes_encoder_passes_then_decoder_passes():
    X = sp.csr_matrix(np.eye(10, dtype=np.float32))
    loader = phased_loader(X, batch_size=4, encoder_passes=2, decoder_passes=1, seed=0)
    batches = list(loader)
    assert len(loader) == len(batches) == 9
    phases = [int(y[0]) for _, y in batches]
    assert phases == [0] * 6 + [1] * 3
    for part in (batches[:3], batches[3:6], batches[6:]):  # each pass shows every user once
        rows = torch.cat([xb for xb, _ in part]).argmax(1)
        assert sorted(rows.tolist()) == list(range(10))


def test_recvae_learns_the_planted_clusters_and_saves(tmp_path):
    X, _ = synthetic_clusters(400, 60, n_clusters=4, clicks=12, seed=6)
    split = strong_split(X, n_val=40, n_test=80, seed=0)
    rec = Recommender(model="recvae", random_state=0, **{**SMALL, "epochs": 12}).fit(split.train, X_val=split.val)
    test = split.test
    ours = evaluate_scores(rec.predict(test.history), test.history, test.held_out)
    base = evaluate_scores(np.tile(rec.item_popularity_, (test.history.shape[0], 1)), test.history, test.held_out)
    assert ours["recall@20"] >= base["recall@20"] + 0.3, (ours, base)
    assert rec.model_config_.options["decoder_hidden"] == []  # RecVAE's linear decoder
    assert np.all(np.isfinite(rec.score_samples(test.history[:5])))
    rec.save(tmp_path / "recvae")
    np.testing.assert_allclose(Recommender.load(tmp_path / "recvae").predict(test.history[:5]),
                               rec.predict(test.history[:5]), rtol=1e-5)


def test_popularity_bias_ranks_by_popularity_before_training():
    X, _ = synthetic_clusters(200, 40, seed=7)
    pop = np.asarray(X.sum(0)).ravel()
    model = small_model(40)
    init_popularity_bias(model, pop)
    with torch.no_grad():
        model.decoder[-1].weight.zero_()  # leave only the bias
    probs = torch.softmax(model.logits(torch.zeros(1, 3)), -1)[0].detach().numpy()
    np.testing.assert_allclose(probs, (pop + 1) / (pop + 1).sum(), rtol=1e-5)
    for bias, wanted in ((None, True), (False, False)):  # the default model's recipe starts there
        rec = Recommender(popularity_bias=bias, random_state=0, **{**SMALL, "epochs": 1}).fit(X)
        b = rec.model_.decoder[-1].bias.detach().numpy()
        assert (np.corrcoef(b, np.log(rec.item_popularity_ + 1))[0, 1] > 0.9) == wanted


# -- data frames and bad input ---------------------------------------------------------------------
def frame_of(X: sp.csr_matrix, *, prefix: str = "m") -> pd.DataFrame:
    u, i = X.nonzero()
    return pd.DataFrame({"user_id": u + 1000, "item_id": [f"{prefix}{j}" for j in i], "stars": 5.0})


@pytest.fixture(scope="module")
def frame_model():
    X, _ = synthetic_clusters(200, 40, seed=3)
    frame = frame_of(X)
    low = pd.DataFrame({"user_id": [1000, 1001], "item_id": ["m0", "m1"], "stars": [1.0, 2.0]})
    rec = Recommender(user="user_id", item="item_id", rating="stars", min_rating=4, random_state=0,
                      **{**SMALL, "epochs": 5})
    return rec.fit(pd.concat([frame, low]))


def test_frame_labels_come_back_and_unknown_items_are_counted(frame_model):
    rec = frame_model
    hist = pd.DataFrame({"user_id": ["a", "a", "b"], "item_id": ["m1", "zzz", "m2"], "stars": [5, 5, 5]})
    with pytest.warns(UserWarning, match="1 interaction.*1 item"):
        ids, _ = rec.recommend(hist, n=3)
    assert all(str(v).startswith("m") for v in ids.ravel()) and "m1" not in ids[0]


def test_users_without_history_get_popular_items_with_a_warning(frame_model):
    rec = frame_model
    hist = pd.DataFrame({"user_id": ["a"], "item_id": ["unknown"], "stars": [5]})
    with pytest.warns(UserWarning, match="no known history"):
        ids, _ = rec.recommend(hist, n=3)
    popular = np.asarray(rec.items_, dtype=object)[np.argsort(-rec.item_popularity_, kind="stable")[:3]]
    assert list(ids[0]) == list(popular)


def test_bad_interaction_data_gives_one_clear_sentence():
    ok = pd.DataFrame({"user": [1, 1, 2, 2], "item": [1, 2, 1, 3], "rating": [5, 4, 5, 3]})
    with pytest.raises(ValueError, match="negative rating"):
        Recommender(**SMALL).fit(ok.assign(rating=[5, -1, 5, 3]))
    with pytest.raises(ValueError, match="no interactions"):
        Recommender(**SMALL).fit(ok.iloc[:0])
    with pytest.raises(ValueError, match="no column"):
        Recommender(**SMALL).fit(ok.rename(columns={"item": "movie"}))
    with pytest.raises(ValueError, match="NaN"):
        Recommender(**SMALL).fit(sp.csr_matrix(np.array([[1.0, np.nan]])))
    with pytest.warns(UserWarning, match="2 duplicate"), warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        Recommender(**{**SMALL, "epochs": 1}).fit(pd.concat([ok, ok.iloc[:2]]))
    with pytest.warns(UserWarning, match="missing or non-numeric rating"):
        Recommender(**{**SMALL, "epochs": 1}).fit(ok.assign(rating=[5, np.nan, 5, 4]))
    with pytest.raises(ValueError, match="item columns"):
        Recommender(**{**SMALL, "epochs": 1}).fit(sp.csr_matrix(np.eye(4))).predict(np.ones((1, 3)))


# -- content and hybrid ----------------------------------------------------------------------------
def genre_items(n_items: int, n_clusters: int, *, seed: int = 0) -> pd.DataFrame:
    """Item i of cluster block c has genre g{c}, a random second genre, and a year near 1950 + 15 c."""
    rng = np.random.default_rng(seed)
    block = n_items // n_clusters
    genres = [f"g{i // block} {'g' + str(rng.integers(n_clusters)) + 'x'}" for i in range(n_items)]
    years = 1950 + 15 * (np.arange(n_items) // block) + rng.integers(0, 12, n_items)
    return pd.DataFrame({"item": range(n_items), "genres": genres, "year": years})


def test_content_embeddings_find_items_of_the_same_genre():
    items = genre_items(80, 4)
    content = ContentRecommender(latent_dim=4, hidden=(32,), epochs=60, device="cpu").fit(items)
    ids, sims = content.similar_items(5, n=10)
    assert 5 not in ids and np.all(np.diff(sims) <= 1e-6)
    assert np.mean([i // 20 == 0 for i in ids]) >= 0.8


def test_hybrid_recommends_items_nobody_clicked_from_their_content(tmp_path):
    X, cluster = synthetic_clusters(400, 80, n_clusters=4, clicks=12, noise=0.0, seed=4)
    cold = np.arange(80) % 20 >= 17  # three items per cluster block get no clicks at all
    frame = frame_of(X[:, ~cold].tocsr(), prefix="")
    frame["item_id"] = np.flatnonzero(~cold)[frame["item_id"].astype(int)]
    items = genre_items(80, 4).rename(columns={"item": "item_id"})
    rec = Recommender(user="user_id", item="item_id", rating=None, random_state=0, **{**SMALL, "n_models": 2})
    rec.fit(frame, item_features=items)  # the default mix: one regression per member, hidden widths 32 and 8
    assert rec.n_warm_ == int((~cold).sum()) and rec.n_items_ == 80
    scores = rec.predict(frame.iloc[:0].pipe(lambda f: pd.concat([f, frame[frame.user_id < 1100]])))
    users = pd.unique(frame[frame.user_id < 1100].user_id) - 1000
    cold_ids = np.asarray(rec.items_[rec.n_warm_:])
    best_cold = cold_ids[np.argmax(scores[:, rec.n_warm_:], 1)]
    assert np.mean(best_cold // 20 == cluster[users]) >= 0.7
    rec.save(tmp_path / "hybrid")
    again = Recommender.load(tmp_path / "hybrid")
    np.testing.assert_allclose(again.predict(X[:5, ~cold]), rec.predict(X[:5, ~cold]), rtol=1e-5)
    graph = RecommenderScores(rec).eval()  # the exported graph, before ONNX
    with torch.no_grad():
        exported = graph(torch.as_tensor(X[:5, ~cold].toarray(), dtype=torch.float32)).numpy()
    np.testing.assert_allclose(exported, rec.predict(X[:5, ~cold]), rtol=1e-4, atol=1e-5)


# -- command line ----------------------------------------------------------------------------------
def run_cli(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="vaekit")
    add_commands(parser.add_subparsers(dest="command", required=True))
    args = parser.parse_args(argv)
    return args.func(args)


def test_cli_fit_top_evaluate(tmp_path, capsys):
    X, _ = synthetic_clusters(200, 40, seed=5)
    frame = frame_of(X)
    frame.to_csv(tmp_path / "ratings.csv", index=False)
    frame[frame.user_id < 1003].to_csv(tmp_path / "history.csv", index=False)
    common = ["--user", "user_id", "--item", "item_id", "--rating", "stars", "--min-rating", "3.5"]
    assert run_cli(["recommend", "fit", str(tmp_path / "ratings.csv"), *common, "--epochs", "5",
                    "--out", str(tmp_path / "rec")]) == 0
    assert "validation NDCG@100" in (tmp_path / "rec" / "report.md").read_text()
    assert run_cli(["recommend", "top", str(tmp_path / "rec"), str(tmp_path / "history.csv"), "-n", "4",
                    "--out", str(tmp_path / "recs.csv")]) == 0
    recs = pd.read_csv(tmp_path / "recs.csv")
    assert len(recs) == 12 and set(recs.user_id) == {1000, 1001, 1002} and list(recs["rank"][:4]) == [1, 2, 3, 4]
    assert run_cli(["recommend", "evaluate", str(tmp_path / "rec"), str(tmp_path / "ratings.csv")]) == 0
    assert '"ndcg@100"' in capsys.readouterr().out


def test_cli_reports_an_empty_file_in_one_line(tmp_path, capsys):
    from vaekit.cli import main

    (tmp_path / "empty.csv").write_text("")
    assert main(["recommend", "fit", str(tmp_path / "empty.csv"), "--out", str(tmp_path / "r")]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error:") and "empty" in err and len(err.strip().splitlines()) == 1


def test_cli_model_names_match_the_estimator():
    from vaekit.apps.recommend.cli import MODELS as CLI_MODELS
    from vaekit.apps.recommend.estimator import MODELS as EST_MODELS

    assert set(CLI_MODELS) == set(EST_MODELS)
