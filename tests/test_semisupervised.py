"""Semi-supervised VAE (M2, M1+M2), the SemiSupervisedClassifier front door, augmentation and the CLI."""

from __future__ import annotations

import argparse
import dataclasses
import functools
import math

import numpy as np
import pandas as pd
import pytest
import torch
from sklearn.neural_network import MLPClassifier

from vaekit import ModelConfig, TrainConfig, build_model
from vaekit.apps.semisupervised.augment import augment, conditional_sample
from vaekit.apps.semisupervised.estimator import SemiSupervisedClassifier
from vaekit.apps.semisupervised.objective import labelled_bound, m2_objective, unlabelled_bound
from vaekit.batching import LabelledUnlabelled

CLASSES = np.array([3, 7, 9])  # non-contiguous labels: classes_ must map them back


def stripes(n: int, seed: int = 0):
    """Three long parallel stripes in 10-D: clusters are obvious, but with two labels per class a
    supervised network sees mostly the long (uninformative) direction."""
    rng = np.random.default_rng(seed)
    k = rng.integers(3, size=n)
    plane = np.stack([rng.uniform(-10, 10, size=n), 3.0 * k], 1)
    W = np.linalg.qr(np.random.default_rng(0).normal(size=(10, 10)))[0][:2]
    return (plane @ W + 0.3 * rng.normal(size=(n, 10))).astype(np.float32), CLASSES[k]


@pytest.fixture(scope="module", autouse=True)
def one_thread():
    """The cores are shared: one torch and one BLAS thread avoid oversubscription (which is many
    times slower than one thread on a busy machine)."""
    from threadpoolctl import threadpool_limits
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    with threadpool_limits(1):
        yield
    torch.set_num_threads(threads)


@pytest.fixture(scope="module")
def data():
    X, y = stripes(900)
    X_train, y_train, X_test, y_test = X[:600], y[:600], X[600:], y[600:]
    rng = np.random.default_rng(1)
    labelled = np.concatenate([rng.choice(np.flatnonzero(y_train == c), 2, replace=False) for c in CLASSES])
    y_semi = np.full(len(y_train), -1)
    y_semi[labelled] = y_train[labelled]
    return X_train, y_semi, X_test, y_test, labelled, y_train


@pytest.fixture(scope="module")
def clf(data):
    X_train, y_semi = data[:2]
    return SemiSupervisedClassifier("m2", latent_dim=2, hidden=(64,), epochs=40, batch_size=64).fit(X_train, y_semi)


def tiny_m2(likelihood="gaussian", shape=(6,), network="mlp"):
    torch.manual_seed(0)
    return build_model(ModelConfig(family="m2", input_shape=shape, latent_dim=3, hidden=(16,), channels=(4, 8),
                                   network=network, likelihood=likelihood, n_classes=4))


@pytest.mark.parametrize("likelihood,shape,network", [("gaussian", (6,), "mlp"), ("bernoulli", (6,), "mlp"),
                                                      ("bernoulli", (1, 8, 8), "conv")])
def test_objective_shapes_gradients_and_mixed_batches(likelihood, shape, network):
    model = tiny_m2(likelihood, shape, network)
    x = torch.rand(8, *shape).round() if likelihood == "bernoulli" else torch.randn(8, *shape)
    y = torch.tensor([0, 1, -1, 3, -1, -1, 2, -1])
    terms = m2_objective(model, x, y, alpha=10.0, labelled_fraction=0.5)
    assert terms.elbo.shape == terms.kl.shape == terms.log_px_z.shape == (8,)
    assert torch.isfinite(terms.loss) and torch.isfinite(terms.elbo).all()
    terms.loss.backward()
    for part in (model.classifier, model.vae.encoder, model.vae.decoder):
        grads = [p.grad for p in part.parameters()]
        assert all(g is not None and torch.isfinite(g).all() for g in grads)
        assert sum(float(g.abs().sum()) for g in grads) > 0
    only_labelled = m2_objective(model, x[y >= 0], y[y >= 0], alpha=10.0)
    assert torch.isfinite(only_labelled.loss)


def test_unlabelled_bound_sums_over_classes_and_is_below_the_best_mixture():
    """U(x) = sum_y q(y|x) L(x,y) + H(q) (eq. 7), and by Gibbs' inequality U(x) <= log sum_y exp L(x,y),
    with equality when q(y|x) is the posterior over classes."""
    model = tiny_m2()
    x = torch.randn(5, 6)
    qy = model.classify(x)
    torch.manual_seed(1)
    u, _, _, _ = unlabelled_bound(model, x, qy)
    torch.manual_seed(1)  # the same draws of z, class by class
    ys = torch.arange(4).repeat_interleave(5)
    bound = labelled_bound(model, x.repeat(4, 1), ys)[0].reshape(4, 5)
    manual = (qy.probs.T * bound).sum(0) + qy.entropy()
    torch.testing.assert_close(u, manual)
    assert (u <= torch.logsumexp(bound, 0) + 1e-5).all()
    best = torch.distributions.Categorical(logits=bound.T)
    torch.manual_seed(1)
    torch.testing.assert_close(unlabelled_bound(model, x, best)[0], torch.logsumexp(bound, 0))


def test_labelled_bound_includes_log_prior_of_the_class():
    model = tiny_m2()
    x, y = torch.randn(4, 6), torch.tensor([0, 1, 2, 3])
    torch.manual_seed(0)
    bound, log_px_z, kl, log_py = labelled_bound(model, x, y)
    torch.testing.assert_close(bound, log_px_z - kl - math.log(4))
    torch.testing.assert_close(log_py, torch.full((4,), -math.log(4)))
    shares = [0.1, 0.2, 0.3, 0.4]  # a class prior p(y) given in the model config
    torch.manual_seed(0)
    skewed = build_model(ModelConfig(family="m2", input_shape=(6,), latent_dim=3, hidden=(16,), likelihood="gaussian",
                                     n_classes=4, options={"class_prior": shares}))
    skewed.load_state_dict(model.state_dict())  # the prior is not a weight: the same weights load
    torch.manual_seed(0)
    b2, lp2, kl2, _ = labelled_bound(skewed, x, y)
    torch.testing.assert_close(b2, lp2 - kl2 + torch.log(torch.tensor(shares)))
    with pytest.raises(ValueError, match="class_prior must be 4 positive probabilities"):
        build_model(ModelConfig(family="m2", input_shape=(6,), n_classes=4, options={"class_prior": [0.5, 0.5]}))


def test_class_prior_is_the_labelled_shares_and_is_used_for_sampling_and_density(data, tmp_path):
    """class_prior="labelled" (the default): p(y) = (n_c + 1) / (n + K) over the labelled rows, the same as
    uniform when the classes have as many labels; unlabelled y are drawn from it and log p(x) mixes over it."""
    from vaekit.apps.semisupervised.estimator import class_shares

    assert class_shares(np.array([0, 0, 1, 1, -1, 2, 2]), 3) == pytest.approx([1 / 3] * 3)
    assert class_shares(np.array([0, 0, 0, 1, -1]), 2) == pytest.approx([4 / 6, 2 / 6])
    X_train, y_full = data[0], data[5]
    y = np.full(len(X_train), -1)
    major, minor = np.flatnonzero(y_full == 3)[:24], np.flatnonzero(y_full == 9)[:4]
    y[major], y[minor] = 3, 9
    kw = {"method": "m2", "latent_dim": 2, "hidden": (32,), "epochs": 2, "random_state": 0}
    clf = SemiSupervisedClassifier(**kw).fit(X_train, y)
    expected = np.log([25 / 30, 5 / 30])
    np.testing.assert_allclose(clf.model_.log_class_prior.numpy(), expected, rtol=1e-6)
    drawn = clf.sample(3000, random_state=0, mean=True)
    assert drawn.shape == (3000, 10)
    codes = clf.model_.sample_labels(3000, generator=torch.Generator().manual_seed(0))
    assert abs(float((codes == 0).float().mean()) - 25 / 30) < 0.03
    assert np.isfinite(clf.evaluate(X_train[:5], k=10)["log_likelihood"])
    clf.save(tmp_path / "skewed")
    back = SemiSupervisedClassifier.load(tmp_path / "skewed")
    np.testing.assert_allclose(back.model_.log_class_prior.numpy(), expected, rtol=1e-6)
    np.testing.assert_allclose(back.score_samples(X_train[:5], k=10), clf.score_samples(X_train[:5], k=10), rtol=1e-6)
    uniform = SemiSupervisedClassifier(**kw, class_prior="uniform").fit(X_train, y)
    np.testing.assert_allclose(uniform.model_.log_class_prior.numpy(), np.log([0.5, 0.5]), rtol=1e-6)
    with pytest.raises(ValueError, match="class_prior must be one of"):
        SemiSupervisedClassifier(class_prior="data").fit(X_train, y)


def test_a_learned_class_prior_starts_at_the_labelled_shares_trains_and_reloads(data, tmp_path):
    """class_prior="learned": p(y) is a weight of the model (softmax of K logits) that starts at the
    labelled shares and is fitted with the rest, unlabelled rows included; it is saved with the weights."""
    X_train, y_full = data[0], data[5]
    y = np.full(len(X_train), -1)
    y[np.flatnonzero(y_full == 3)[:24]], y[np.flatnonzero(y_full == 9)[:4]] = 3, 9
    kw = {"method": "m2", "latent_dim": 2, "hidden": (32,), "random_state": 0, "class_prior": "learned"}
    start = SemiSupervisedClassifier(**kw, epochs=1, lr=1e-12).fit(X_train, y)  # (almost) no step taken
    np.testing.assert_allclose(start.model_.log_class_prior.detach().numpy(), np.log([25 / 30, 5 / 30]), rtol=1e-5)
    clf = SemiSupervisedClassifier(**kw, epochs=3, lr=0.05).fit(X_train, y)
    p = clf.model_.log_class_prior.detach().exp().numpy()
    assert "class_logits" in dict(clf.model_.named_parameters())
    assert abs(p.sum() - 1) < 1e-6 and np.abs(p - [25 / 30, 5 / 30]).max() > 1e-3  # trained away from its start
    clf.save(tmp_path / "learned")
    back = SemiSupervisedClassifier.load(tmp_path / "learned")
    np.testing.assert_allclose(back.model_.log_class_prior.detach().exp().numpy(), p, rtol=1e-6)
    np.testing.assert_allclose(back.predict_proba(X_train[:5]), clf.predict_proba(X_train[:5]), rtol=1e-5)
    fixed = SemiSupervisedClassifier(**{**kw, "class_prior": "labelled"}, epochs=3, lr=0.05).fit(X_train, y)
    assert "class_logits" not in dict(fixed.model_.named_parameters())


def test_a_linear_classifier_is_one_softmax_regression_and_reloads(data, tmp_path):
    """classifier="linear": q(y|x) is a single linear layer on the input (M1's code for M1+M2), learns,
    and survives save/load; an unknown kind is refused in one sentence."""
    X_train, y_full = data[0], data[5]
    y = np.full(len(X_train), -1)
    for c in (3, 9):
        y[np.flatnonzero(y_full == c)[:10]] = c
    kw = {"latent_dim": 2, "m1_latent_dim": 4, "hidden": (32,), "epochs": 3, "random_state": 0}
    clf = SemiSupervisedClassifier(**kw, classifier="linear").fit(X_train, y)
    linears = [m for m in clf.model_.classifier.modules() if isinstance(m, torch.nn.Linear)]
    assert len(linears) == 1 and linears[0].in_features == 4  # M1's code -> 2 classes, nothing in between
    mlp = SemiSupervisedClassifier(**kw).fit(X_train, y)
    assert len([m for m in mlp.model_.classifier.modules() if isinstance(m, torch.nn.Linear)]) > 1
    labelled = y >= 0
    assert clf.score(X_train[labelled], y[labelled]) > 0.6  # two classes: better than chance on its own labels
    clf.save(tmp_path / "linear")
    back = SemiSupervisedClassifier.load(tmp_path / "linear")
    np.testing.assert_allclose(back.predict_proba(X_train[:5]), clf.predict_proba(X_train[:5]), rtol=1e-5)
    with pytest.raises(ValueError, match="classifier must be one of"):
        SemiSupervisedClassifier(classifier="tree").fit(X_train, y)


def test_m2_trains_through_the_one_loop_seeded_with_a_labelled_plan(tmp_path):
    """M2 trains through ``vaekit.fit`` with its objective and a labelled/unlabelled plan: the loss falls,
    the same seed gives the same weights, and an interrupted run resumes to the same weights."""
    from vaekit.apps.semisupervised.objective import check_labels
    from vaekit.train import fit

    x = torch.randn(64, 6)
    y = torch.full((64,), -1)
    y[:8] = torch.arange(8) % 4
    # a constant lr: the interrupted run trains 3 epochs of a 3-epoch config, then resumes under the 8-epoch one
    cfg = TrainConfig(epochs=8, batch_size=16, lr=3e-3, seed=3, progress=False, lr_schedule="none", lr_warmup=0.0)
    objective = functools.partial(m2_objective, alpha=6.4, labelled_fraction=8 / 64)
    plan = LabelledUnlabelled(y)
    assert all((y[idx] >= 0).sum() == 8 for idx in plan.epoch(64, 16, torch.Generator().manual_seed(0)))
    a, b = tiny_m2(), tiny_m2()
    history = fit(a, x, y=y, config=cfg, objective=objective, plan=plan)
    fit(b, x, y=y, config=cfg, objective=objective, plan=plan, out_dir=tmp_path)
    assert history.records[-1]["train_loss"] < history.records[0]["train_loss"]
    for p, q in zip(a.parameters(), b.parameters(), strict=True):
        torch.testing.assert_close(p, q)
    c = tiny_m2()
    fit(c, x, y=y, config=dataclasses.replace(cfg, epochs=3), objective=objective, plan=plan, out_dir=tmp_path / "c")
    fit(c, x, y=y, config=cfg, objective=objective, plan=plan, out_dir=tmp_path / "c", resume=True)
    for p, q in zip(a.parameters(), c.parameters(), strict=True):
        torch.testing.assert_close(p, q)
    with pytest.raises(ValueError, match="No labelled rows"):
        LabelledUnlabelled(torch.full((64,), -1))
    with pytest.raises(ValueError, match=r"in \[0, 4\)"):
        check_labels(torch.full((64,), 5), 64, 4)


def test_semi_supervised_clearly_beats_supervised_only(clf, data):
    X_train, _, X_test, y_test, labelled, y_train = data
    supervised = MLPClassifier((64,), max_iter=2000, random_state=0).fit(X_train[labelled], y_train[labelled])
    acc_sup, acc_ssl = supervised.score(X_test, y_test), clf.score(X_test, y_test)
    assert acc_ssl >= 0.85, acc_ssl
    assert acc_ssl >= acc_sup + 0.1, (acc_ssl, acc_sup)


def test_classifier_outputs_follow_scikit_learn(clf, data):
    X_test = data[2]
    assert clf.classes_.tolist() == CLASSES.tolist()
    proba = clf.predict_proba(X_test)
    assert proba.shape == (len(X_test), 3)
    np.testing.assert_allclose(proba.sum(1), 1.0, rtol=1e-5)
    assert set(np.unique(clf.predict(X_test))) <= set(CLASSES.tolist())
    np.testing.assert_array_equal(clf.predict(X_test), CLASSES[proba.argmax(1)])
    z = clf.transform(X_test)
    assert z.shape == (len(X_test), 3 + 2)  # q(y|x), then the mean of z
    np.testing.assert_allclose(z[:, :3], proba, rtol=1e-5, atol=1e-6)
    np.testing.assert_array_equal(z, clf.transform(X_test))


def test_conditional_samples_are_of_the_requested_class(clf):
    for c in CLASSES:
        x = clf.sample(50, y=c, random_state=0)
        assert x.shape == (50, 10)
        assert (clf.predict(x) == c).mean() >= 0.8
    np.testing.assert_array_equal(clf.sample(5, y=3, random_state=1), clf.sample(5, y=3, random_state=1))
    with pytest.raises(ValueError, match="Unknown class 4"):
        clf.sample(2, y=4)


def test_score_samples_is_log_px_in_the_units_of_x(clf, data):
    """M2: log sum_y p(y) p(x|y), the number the service's /score gives, in the units of X: the same model
    reading X in units ten times smaller puts every row 10 log 10 nats lower (10 features)."""
    import copy

    from vaekit.serve.loading import served_from

    X = data[2][:20]
    log_px = clf.score_samples(X, k=20)
    served = served_from(clf)
    np.testing.assert_allclose(served.log_px(served.to_model(X), None, k=20, seed=0), log_px, atol=1e-4)
    smaller = copy.deepcopy(clf)
    smaller.inputs_.mean = (10 * np.asarray(clf.inputs_.mean)).tolist()
    smaller.inputs_.scale = (10 * np.asarray(clf.inputs_.scale)).tolist()
    np.testing.assert_allclose(smaller.score_samples(10 * X, k=20), log_px - 10 * np.log(10), atol=1e-3)
    with pytest.raises(ValueError, match="k must be"):
        clf.score_samples(X, k=0)


def test_augment_returns_labelled_synthetic_rows(clf):
    X_new, y_new = augment(None, None, 7, model=clf)
    assert X_new.shape == (21, 10) and y_new.tolist() == [3] * 7 + [7] * 7 + [9] * 7
    assert (clf.predict(X_new) == y_new).mean() >= 0.7
    with pytest.raises(ValueError, match="n_per_class"):
        augment(None, None, 0, model=clf)


def test_conditional_sample_works_for_the_core_conditional_vae():
    torch.manual_seed(0)
    cvae = build_model(ModelConfig(input_shape=(5,), latent_dim=2, hidden=(8,), likelihood="gaussian", n_classes=3))
    x = conditional_sample(cvae, torch.tensor([0, 1, 2, 2]), seed=0)
    assert x.shape == (4, 5) and torch.isfinite(x).all()
    torch.testing.assert_close(x, conditional_sample(cvae, torch.tensor([0, 1, 2, 2]), seed=0))
    with pytest.raises(ValueError, match=r"in \[0, 3\)"):
        conditional_sample(cvae, torch.tensor([3]))
    plain = build_model(ModelConfig(input_shape=(5,), latent_dim=2, hidden=(8,), likelihood="gaussian"))
    with pytest.raises(ValueError, match="conditioned on class labels"):
        conditional_sample(plain, torch.tensor([0]))


def test_save_load_round_trip_and_clear_errors(clf, data, tmp_path):
    X_test = data[2]
    clf.save(tmp_path / "run")
    loaded = SemiSupervisedClassifier.load(tmp_path / "run")
    np.testing.assert_allclose(loaded.predict_proba(X_test), clf.predict_proba(X_test), rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(loaded.sample(4, y=9), clf.sample(4, y=9), rtol=1e-5, atol=1e-5)
    (tmp_path / "run" / "model.safetensors").write_bytes(b"not a safetensors file")
    with pytest.raises(ValueError, match="damaged"):
        SemiSupervisedClassifier.load(tmp_path / "run")
    with pytest.raises(FileNotFoundError, match="No saved model"):
        SemiSupervisedClassifier.load(tmp_path / "missing")


def test_bad_labels_give_one_clear_sentence():
    X = np.random.default_rng(0).normal(size=(20, 4)).astype(np.float32)
    model = SemiSupervisedClassifier(epochs=1)
    with pytest.raises(ValueError, match="one label per row"):
        model.fit(X, np.zeros(19))
    with pytest.raises(ValueError, match="0 labelled class"):
        model.fit(X, np.full(20, -1))
    with pytest.raises(ValueError, match="1 labelled class"):
        model.fit(X, np.r_[np.zeros(2), np.full(18, -1)])
    with pytest.raises(ValueError, match="method must be one of"):
        SemiSupervisedClassifier("m3").fit(X, np.r_[0, 1, np.full(18, -1)])


def test_m1_plus_m2_end_to_end(data, tmp_path):
    X_train, y_semi, X_test, _, _, _ = data
    model = SemiSupervisedClassifier("m1+m2", latent_dim=2, m1_latent_dim=4, hidden=(32,), epochs=3,
                                     m1_epochs=3, batch_size=128).fit(X_train, y_semi)
    assert model.transform(X_test).shape == (len(X_test), 4)  # M1 features
    assert model.predict_proba(X_test).shape == (len(X_test), 3)
    assert model.sample(6, y=7).shape == (6, 10)
    from vaekit.evaluate import log_likelihood
    mean, scale = np.asarray(model.inputs_.mean), np.asarray(model.inputs_.scale)
    x = torch.from_numpy(((X_test[:10] - mean) / scale).astype(np.float32))
    m1_log_px = log_likelihood(model.m1_, x, k=20).double().numpy() - np.log(scale).sum()
    np.testing.assert_allclose(model.score_samples(X_test[:10], k=20), m1_log_px, rtol=1e-6)  # M1's density of x
    model.save(tmp_path / "m12")
    loaded = SemiSupervisedClassifier.load(tmp_path / "m12")
    np.testing.assert_allclose(loaded.predict_proba(X_test), model.predict_proba(X_test), rtol=1e-5, atol=1e-6)
    from vaekit.io import load_model
    assert load_model(tmp_path / "m12" / "m1")[1].latent_dim == 4  # M1 is a plain saved VAE


# -- CLI ------------------------------------------------------------------------------------------
def run_cli(*argv) -> int:
    from vaekit.apps.semisupervised.cli import add_commands
    parser = argparse.ArgumentParser(prog="vaekit")
    add_commands(parser.add_subparsers(dest="command", required=True))
    args = parser.parse_args([str(a) for a in argv])
    return args.func(args)


def test_cli_train_predict_sample(data, tmp_path, capsys):
    X_train, y_semi, X_test = data[:3]
    np.save(tmp_path / "x.npy", X_train)
    (tmp_path / "labels.txt").write_text("\n".join("" if v == -1 else str(v) for v in y_semi) + "\n")
    run = tmp_path / "run"
    assert run_cli("ssl-train", tmp_path / "x.npy", "--labels", tmp_path / "labels.txt", "--out", run,
                   "--epochs", 2, "--hidden", "16", "--latent-dim", 2) == 0
    assert "6 labelled, 3 classes" in capsys.readouterr().out
    np.save(tmp_path / "test.npy", X_test[:5])
    assert run_cli("predict", run, tmp_path / "test.npy", "--out", tmp_path / "pred.csv", "--proba") == 0
    lines = (tmp_path / "pred.csv").read_text().splitlines()
    assert lines[0] == "label,p_3,p_7,p_9" and len(lines) == 6
    assert run_cli("ssl-sample", run, "--class", 7, "-n", 4, "--out", tmp_path / "s.npy") == 0
    assert np.load(tmp_path / "s.npy").shape == (4, 10)
    with pytest.raises(ValueError, match="already exists"):
        run_cli("ssl-sample", run, "--class", 7, "--out", tmp_path / "s.npy")
    with pytest.raises(ValueError, match="not a class of this model"):
        run_cli("ssl-sample", run, "--class", 5, "--out", tmp_path / "t.npy")
    with pytest.raises(ValueError, match="already holds a saved model"):
        run_cli("ssl-train", tmp_path / "x.npy", "--labels", tmp_path / "labels.txt", "--out", run)


def test_cli_labels_from_a_csv_column_and_bad_inputs(data, tmp_path):
    import pandas as pd
    table = pd.DataFrame(data[0][:60], columns=[f"f{i}" for i in range(10)])
    table["digit"] = -1
    table.loc[table.index[:3], "digit"] = [3, 7, 9]
    table.to_csv(tmp_path / "t.csv", index=False)
    assert run_cli("ssl-train", tmp_path / "t.csv", "--labels", "digit", "--out", tmp_path / "r",
                   "--epochs", 1, "--hidden", "8", "--latent-dim", 2) == 0
    with pytest.raises(ValueError, match="neither an existing label file nor a column"):
        run_cli("ssl-train", tmp_path / "t.csv", "--labels", "label", "--out", tmp_path / "r2")
    np.save(tmp_path / "short.npy", np.zeros(5))
    with pytest.raises(ValueError, match="has 5 labels but the data has 60 rows"):
        run_cli("ssl-train", tmp_path / "t.csv", "--labels", tmp_path / "short.npy", "--out", tmp_path / "r3")
    with pytest.raises(FileNotFoundError, match="does not exist"):
        run_cli("predict", tmp_path / "r", tmp_path / "nope.npy")


def test_cli_main_reports_errors_without_traceback(tmp_path, capsys):
    import vaekit.cli as cli

    try:
        code = cli.main(["predict", str(tmp_path / "no_run"), str(tmp_path / "x.npy")])
    except SystemExit as e:
        code = e.code
    assert code == 2
    err = capsys.readouterr().err
    assert "error:" in err and "Traceback" not in err


def test_linear_probe_ranks_informative_features_first(clf, data):
    from vaekit.apps.semisupervised.features import linear_probe
    X_train, _, X_test, y_test, _, y_train = data
    rng = np.random.default_rng(0)
    useful = linear_probe(X_train, y_train, X_test, y_test)
    noise = linear_probe(rng.normal(size=(600, 10)), y_train, rng.normal(size=(300, 10)), y_test)
    assert useful > 0.9 and noise < 0.6
    y_part = np.where(np.arange(600) < 300, y_train, -1)  # unlabelled rows are left out
    assert linear_probe(clf.transform(X_train), y_part, clf.transform(X_test), y_test) > 0.8
    with pytest.raises(ValueError, match="one label per row"):
        linear_probe(X_train, y_train[:5], X_test, y_test)


def planted_table(rng, n: int, shift: float):
    """A mixed table with two planted classes: amount near +-shift, colour mostly red/blue by class, a count."""
    cls = rng.integers(0, 2, n)
    frame = pd.DataFrame({"amount": np.where(cls == 1, rng.normal(shift, 1.0, n), rng.normal(-shift, 1.0, n)),
                          "colour": np.where(rng.random(n) < 0.9, np.where(cls == 1, "red", "blue"), "green"),
                          "count": rng.poisson(3, n)})
    return frame, cls


def test_a_data_frame_trains_m1_on_the_table_likelihood(tmp_path):
    rng = np.random.default_rng(0)
    n = 400
    frame, cls = planted_table(rng, n, 5.0)
    y = np.full(n, -1, dtype=object)
    labelled = np.r_[np.flatnonzero(cls == 0)[:5], np.flatnonzero(cls == 1)[:5]]
    y[labelled] = np.where(cls[labelled] == 1, "yes", "no")
    clf = SemiSupervisedClassifier(latent_dim=2, m1_latent_dim=4, hidden=(32,), epochs=200, random_state=0)
    clf.fit(frame, y)
    assert set(clf.predict(frame)) <= {"no", "yes"}
    assert np.mean(clf.predict(frame) == np.where(cls == 1, "yes", "no")) > 0.9  # the planted classes
    fake = clf.sample(20, y="yes", random_state=0)
    assert isinstance(fake, pd.DataFrame) and list(fake.columns) == list(frame.columns)
    assert set(fake["colour"]) <= {"red", "blue", "green"} and fake["count"].dtype.kind == "i"
    clf.save(tmp_path / "table")
    again = SemiSupervisedClassifier.load(tmp_path / "table")
    np.testing.assert_allclose(again.predict_proba(frame[:20]), clf.predict_proba(frame[:20]), rtol=1e-5, atol=1e-6)
    small = SemiSupervisedClassifier(latent_dim=2, m1_latent_dim=4, epochs=1, random_state=0).fit(frame, y)
    assert small.m1_config_.hidden == small.model_config_.hidden == (64,)  # hidden="auto" on a table
    assert clf.model_config_.options["classifier"] == "wide"  # classifier="auto" on a table under M1+M2
    arrays = SemiSupervisedClassifier("m2", latent_dim=2, epochs=1).fit(frame[["amount", "count"]].to_numpy(float), y)
    assert arrays.model_config_.hidden == (512, 256) and "classifier" not in arrays.model_config_.options


def test_m2_on_a_data_frame_learns_from_the_columns_with_missing_cells(tmp_path):
    rng = np.random.default_rng(1)
    n = 400
    frame, cls = planted_table(rng, n, 4.0)
    frame.loc[rng.random(n) < 0.2, "amount"] = np.nan  # missing cells reach q(y|x) as the column's mean
    frame.loc[rng.random(n) < 0.1, "colour"] = None
    y = np.full(n, -1)
    labelled = np.r_[np.flatnonzero(cls == 0)[:5], np.flatnonzero(cls == 1)[:5]]
    y[labelled] = cls[labelled]
    clf = SemiSupervisedClassifier("m2", latent_dim=2, epochs=100, random_state=0).fit(frame, y)
    assert clf.m1_ is None and clf.model_config_.options["classifier"] == "linear"
    proba = clf.predict_proba(frame)
    assert np.isfinite(proba).all()
    assert np.mean(clf.predict(frame) == cls) > 0.9  # the planted classes, from 10 labels
    assert np.isfinite(clf.score_samples(frame[:20], k=10)).all()
    fake = clf.sample(10, y=1, random_state=0)
    assert isinstance(fake, pd.DataFrame) and list(fake.columns) == list(frame.columns)
    clf.save(tmp_path / "m2table")
    again = SemiSupervisedClassifier.load(tmp_path / "m2table")
    np.testing.assert_allclose(again.predict_proba(frame), proba, rtol=1e-5, atol=1e-6)


def test_a_wide_classifier_reads_the_code_and_the_row_and_serves_and_reloads(tmp_path):
    """classifier="wide": q(y|x) is one softmax regression on [M1's code, the encoded row]; M2's VAE
    models the code only; the row's weights are penalised (less with a larger wide_c); missing cells
    reach it as 0; predictions survive save/load and the served model gives the same q(y|x)."""
    from vaekit.apps.semisupervised.objective import m2_objective
    from vaekit.serve.loading import served_from

    rng = np.random.default_rng(2)
    n = 300
    frame, cls = planted_table(rng, n, 3.0)
    frame.loc[rng.random(n) < 0.2, "amount"] = np.nan
    y = np.full(n, -1)
    labelled = np.r_[np.flatnonzero(cls == 0)[:10], np.flatnonzero(cls == 1)[:10]]
    y[labelled] = cls[labelled]
    kw = {"latent_dim": 2, "m1_latent_dim": 4, "epochs": 30, "random_state": 0, "classifier": "wide"}
    clf = SemiSupervisedClassifier(**kw).fit(frame, y)
    m2, width = clf.model_, int(np.prod(clf.inputs_.model_input_shape))
    assert m2.side_dim == width and m2.classifier.linear.in_features == 4 + width
    assert m2.event_shape == (4,)  # the VAE part models M1's code only
    proba = clf.predict_proba(frame)
    assert np.isfinite(proba).all() and np.allclose(proba.sum(1), 1)
    assert np.mean(clf.predict(frame) == cls) > 0.85
    assert clf.transform(frame).shape == (n, 4)
    assert np.isfinite(clf.evaluate(frame[:50], k=5)["log_likelihood"])
    # the penalty is in the loss, and a weaker one (larger C) leaves larger row weights
    x = clf._features(frame[:32])
    yy = torch.from_numpy(y[:32])
    with torch.no_grad():
        torch.manual_seed(0)
        with_pen = m2_objective(m2, x, yy, alpha=30.0).loss
        torch.manual_seed(0)
        l2, m2.classifier.l2 = m2.classifier.l2, 0.0
        without = m2_objective(m2, x, yy, alpha=30.0).loss
        m2.classifier.l2 = l2
        assert float(with_pen - without) == pytest.approx(float(m2.classifier.penalty()), abs=2e-5)  # float32 sums
    loose = SemiSupervisedClassifier(**{**kw, "wide_c": 1000.0}).fit(frame, y)
    tight = SemiSupervisedClassifier(**{**kw, "wide_c": 0.001}).fit(frame, y)
    row_norm = lambda c: float(c.model_.classifier.linear.weight[:, 4:].detach().norm())  # noqa: E731
    assert row_norm(tight) < 0.5 * row_norm(loose) and row_norm(loose) > 0.1
    # save / load and serving give the same q(y|x)
    clf.save(tmp_path / "wide")
    again = SemiSupervisedClassifier.load(tmp_path / "wide")
    np.testing.assert_allclose(again.predict_proba(frame), proba, rtol=1e-5, atol=1e-6)
    served = served_from(again)
    with torch.no_grad():
        probs = served.model.classify(served.to_model(frame[:20]).float()).probs.numpy()
    np.testing.assert_allclose(probs, proba[:20], rtol=1e-4, atol=1e-5)
    # wide is for a data frame under M1+M2
    with pytest.raises(ValueError, match="classifier='wide'"):
        SemiSupervisedClassifier(**{**kw, "epochs": 1}).fit(frame[["amount", "count"]].fillna(0).to_numpy(float), y)
    with pytest.raises(ValueError, match="classifier='wide'"):
        SemiSupervisedClassifier("m2", **{**kw, "epochs": 1}).fit(frame, y)


def test_cli_trains_predicts_and_samples_a_mixed_table(tmp_path, monkeypatch, capsys):
    from vaekit.cli import main

    rng = np.random.default_rng(0)
    cls = rng.integers(0, 2, 120)
    table = pd.DataFrame({"amount": np.where(cls == 1, 5.0, -5.0) + rng.normal(size=120),
                          "colour": np.where(cls == 1, "red", "blue"),
                          "label": np.where(np.arange(120) < 10, cls, -1)})
    monkeypatch.chdir(tmp_path)
    table.to_csv("t.csv", index=False)
    assert main(["ssl-train", "t.csv", "--labels", "label", "--out", "ssl", "--epochs", "2", "--hidden", "8",
                 "--latent-dim", "2", "--quiet"]) == 0
    assert main(["predict", "ssl", "t.csv", "--out", "pred.csv"]) == 0 and len(pd.read_csv("pred.csv")) == 120
    assert main(["ssl-sample", "ssl", "--class", "1", "-n", "5", "--out", "s.csv"]) == 0
    rows = pd.read_csv("s.csv")
    assert list(rows.columns) == ["amount", "colour"] and len(rows) == 5 and set(rows.colour) <= {"red", "blue"}
    capsys.readouterr()
    assert main(["ssl-sample", "ssl", "--class", "1", "-n", "5", "--out", "s.npy"]) == 2
    err = capsys.readouterr().err
    assert "write them to a .csv file" in err and len(err.strip().splitlines()) == 1 and not (tmp_path / "s.npy").exists()
