"""ONNX export (vaekit.serve.export): every graph matches torch on random and real inputs, has a dynamic
batch axis and no random operator, and computes what the library computes (log p(x) in nats)."""

import json

import numpy as np
import pandas as pd
import pytest
import torch

pytest.importorskip("onnxruntime")
import onnx
import onnxruntime as ort

from vaekit.serve.cli import main as serve_cli
from vaekit.serve.export import export
from vaekit.serve.loading import open_model

RANDOM_OPS = {"RandomNormal", "RandomNormalLike", "RandomUniform", "RandomUniformLike", "Multinomial", "Bernoulli"}


def close(a, b):
    """The issue's parity rule: |a - b| <= 1e-4 + 1e-5 |b| elementwise."""
    a, b = np.asarray(a, np.float64), np.asarray(b, np.float64)
    return a.shape == b.shape and bool(np.all(np.abs(a - b) <= 1e-4 + 1e-5 * np.abs(b)))


def agree(a, b):
    """Two independent 1000-sample estimates of log p(x): they differ by noise of a few tenths of a nat per
    row, not by a constant (a missing term such as log K = 6.9 nats or the log-Jacobian would show)."""
    diff = np.asarray(a, np.float64) - np.asarray(b, np.float64)
    assert abs(diff.mean()) < 0.15 and np.abs(diff).max() < 1.0, diff


def train(tmp, data, sets):
    from vaekit.run import resolve_config, train_run

    cfg = resolve_config(data=str(data), sets=["epochs=2", "hidden=[32]", "latent_dim=3", "progress=false", *sets])
    train_run(cfg, tmp, eval_k=5, pictures=False)
    return tmp


@pytest.fixture(scope="module")
def digits(tmp_path_factory):
    """A tiny digits run, exported through the command line."""
    root = tmp_path_factory.mktemp("digits")
    run = train(root / "run", "digits", ["data.max_examples=400"])
    assert serve_cli(["export", str(run), "--out", str(root / "onnx")]) == 0
    return run, root / "onnx"


@pytest.fixture(scope="module")
def table(tmp_path_factory):
    root = tmp_path_factory.mktemp("table")
    rng = np.random.default_rng(0)
    n = 240
    kind = rng.choice(["a", "b", "c"], n)
    frame = pd.DataFrame({"size": rng.normal(10, 3, n) + (kind == "a") * 5, "weight": rng.normal(70, 9, n),
                          "colour": rng.choice(["red", "green"], n), "kind": kind})
    frame.to_csv(root / "t.csv", index=False)
    run = train(root / "run", root / "t.csv", ["data.label=kind"])
    return run, export(run, root / "onnx")


def session(path, name):
    return ort.InferenceSession(str(path / f"{name}.onnx"), providers=["CPUExecutionProvider"])


def test_digits_export_writes_three_graphs_and_a_card(digits):
    _, out = digits
    card = json.loads((out / "card.json").read_text())
    assert set(card["graphs"]) == {"encoder", "decoder", "score"}
    text = (out / "MODEL_CARD.md").read_text()
    for needle in ("encoder.onnx", "log_px", "nats", "onnxruntime", "test ELBO", "Parity"):
        assert needle in text
    for name in card["graphs"]:
        graph = onnx.load(str(out / f"{name}.onnx")).graph
        assert not RANDOM_OPS & {node.op_type for node in graph.node}, name
        batch_axis = [i.type.tensor_type.shape.dim[0 if i.name != "eps" else 1] for i in graph.input]
        assert all(d.dim_param and not d.dim_value for d in batch_axis), name  # symbolic, not a fixed size


def test_digits_graphs_match_torch_on_real_rows_and_any_batch(digits):
    run, out = digits
    served = open_model(run)
    model = served.model
    x = served.examples()[0][:37]
    loc, scale = session(out, "encoder").run(None, {"x": x.numpy()})
    with torch.inference_mode():
        q = model.encode(x)
    assert close(loc, q.base_dist.loc) and close(scale, q.base_dist.scale)
    for b in (1, 2, 37):  # the batch axis is dynamic
        z = 2 * torch.randn(b, 3)
        outputs = session(out, "decoder").run(None, {"z": z.numpy()})
        with torch.inference_mode():
            px = model.decode(z)
        assert close(outputs[-1], model.likelihood.mean(px))
        assert close(outputs[0], px.base_dist.loc)


def test_score_graph_is_log_px_in_nats(digits):
    """Same noise: equal to torch's importance weights; many samples: agrees with vaekit's estimator."""
    from vaekit.evaluate import log_likelihood

    run, out = digits
    served = open_model(run)
    model, x = served.model, served.examples()[0][:20]
    eps = torch.randn(9, len(x), 3)
    (log_px,) = session(out, "score").run(None, {"x": x.numpy(), "eps": eps.numpy()})
    with torch.inference_mode():
        q = model.encode(x)
        z = q.base_dist.loc + q.base_dist.scale * eps
        log_w = model.decode(z).log_prob(x) + model.prior().log_prob(z) - q.log_prob(z)
    assert close(log_px, torch.logsumexp(log_w, 0) - np.log(9))
    (log_px,) = session(out, "score").run(None, {"x": x.numpy(), "eps": np.random.default_rng(0).standard_normal(
        (1000, len(x), 3)).astype(np.float32)})
    reference = log_likelihood(model, x, k=1000).numpy()
    agree(log_px, reference)


def test_table_export_scores_in_original_units(table):
    from vaekit.evaluate import log_likelihood

    run, out = table
    served = open_model(run)
    x = served.examples()[0][:16]
    eps = np.random.default_rng(1).standard_normal((1000, len(x), 3)).astype(np.float32)
    (log_px,) = session(out, "score").run(None, {"x": x.numpy(), "eps": eps})
    shift = served.shift(x)
    reference = log_likelihood(served.model, x, k=1000).numpy() + shift
    assert np.all(np.abs(shift) > 1)  # standardising size and weight moves densities by several nats
    agree(log_px, reference)
    card = json.loads((out / "card.json").read_text())
    assert card["preprocessing"]["data"]["table"]["order"] == ["size", "weight", "colour"]


def test_detector_export_scores_rows_with_missing_cells(tmp_path):
    from vaekit.apps.anomaly import AnomalyDetector
    from vaekit.data.tabular import encode_table

    rng = np.random.default_rng(0)
    frame = pd.DataFrame({"a": rng.normal(size=200), "b": rng.normal(5, 2, 200), "c": rng.choice(["x", "y"], 200)})
    det = AnomalyDetector(epochs=5, latent_dim=2, hidden=(16,)).fit(frame)
    det.k = 1000  # the reference below: 1,000 importance samples, like the graph's
    rows = frame.head(12).copy()
    rows.loc[0, "a"] = np.nan
    rows.loc[1, "c"] = None
    rows.loc[2, "b"] = 40.0  # an outlier
    out = export(det, tmp_path / "onnx", examples=rows)
    x = torch.from_numpy(encode_table(rows, det.table_))
    eps = np.random.default_rng(2).standard_normal((1000, len(x), 2)).astype(np.float32)
    score, flag = session(out, "score").run(None, {"x": x.numpy(), "eps": eps})
    reference = det.decision_function(rows)
    assert np.all(np.isfinite(score))
    agree(score, reference)  # the detector's own -log p(x), in nats of the original units
    assert np.array_equal(flag, score > det.threshold_) and flag[2]


def saved(path, **options):
    from vaekit.config import ModelConfig, build_model
    from vaekit.io import save_model

    torch.manual_seed(0)
    cfg = ModelConfig(input_shape=(6,), latent_dim=2, hidden=(16,), likelihood="bernoulli", **options)
    return save_model(build_model(cfg), cfg, path)


def conditional_model(path):
    return saved(path, family="m2", n_classes=3)


def test_m2_takes_the_label_as_an_input_and_exports_its_classifier(tmp_path):
    out = export(conditional_model(tmp_path / "m2"), tmp_path / "onnx")
    (logits,) = session(out, "classifier").run(None, {"x": np.eye(6, dtype=np.float32)[:4]})
    assert logits.shape == (4, 3)
    decoder = session(out, "decoder")
    assert [i.name for i in decoder.get_inputs()] == ["z", "y"]
    z = np.zeros((3, 2), np.float32)
    logits, mean = decoder.run(None, {"z": z, "y": np.arange(3)})
    assert not np.allclose(logits[0], logits[1])  # the label reaches the decoder
    assert close(mean, 1 / (1 + np.exp(-logits)))
    assert [i.name for i in session(out, "score").get_inputs()] == ["x", "y", "eps"]


def test_hierarchical_decoder_takes_every_layers_z(tmp_path):
    model_dir = saved(tmp_path / "hvae", family="hierarchical", latent_dims=(2, 3))
    out = export(model_dir, tmp_path / "onnx")
    decoder = session(out, "decoder")
    assert [(i.name, i.shape[1]) for i in decoder.get_inputs()] == [("z2", 2), ("z1", 3)]  # top layer first
    z = np.random.default_rng(0).standard_normal((4, 5)).astype(np.float32)
    _, mean = decoder.run(None, {"z2": z[:, :2], "z1": z[:, 2:]})
    model = open_model(model_dir).model
    with torch.inference_mode():
        assert close(mean, model.likelihood.mean(model.decode(torch.from_numpy(z))))
    loc, _ = session(out, "encoder").run(None, {"x": np.ones((4, 6), np.float32)})
    assert loc.shape == (4, 5)
    assert not (out / "score.onnx").exists()  # a score with explicit noise needs each layer's sampling


@pytest.mark.slow
def test_pt2_format_is_written_and_checked(tmp_path):
    out = export(conditional_model(tmp_path / "cvae"), tmp_path / "export", format="pt2")
    program = torch.export.load(str(out / "decoder.pt2")).module()
    z, y = torch.zeros(2, 2), torch.tensor([0, 2])
    with torch.inference_mode():
        logits, mean = program(z, y)
    assert close(mean, torch.sigmoid(logits)) and "pt2" in json.loads((out / "card.json").read_text())["formats"]


def test_export_refuses_to_overwrite_and_bad_input(digits, tmp_path, capsys):
    run, out = digits
    with pytest.raises(ValueError, match="already holds an export"):
        export(run, out)
    with pytest.raises(ValueError, match="format"):
        export(run, tmp_path / "x", format="tflite")
    assert serve_cli(["export", str(tmp_path / "missing"), "--out", str(tmp_path / "y")]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: ") and len(err.strip().splitlines()) == 1


# -- the semi-supervised classifier's default, M1+M2: M1 models x, M2 reads M1's code z1 -------------
@pytest.fixture(scope="module")
def m1m2(tmp_path_factory):
    """M1+M2 on two planted classes, saved and exported through the command line."""
    from vaekit import SemiSupervisedClassifier

    root = tmp_path_factory.mktemp("m1m2")
    rng = np.random.default_rng(0)
    cls = rng.integers(0, 2, 200)
    X = (rng.normal(size=(200, 6)) + np.where(cls[:, None] == 1, 2.0, -2.0)).astype(np.float32)
    y = np.where(np.arange(200) < 10, cls, -1)
    est = SemiSupervisedClassifier(latent_dim=2, m1_latent_dim=3, hidden=(16,), epochs=100, random_state=0).fit(X, y)
    est.save(root / "model")
    np.save(root / "rows.npy", X[:40])
    assert serve_cli(["export", str(root / "model"), "--out", str(root / "onnx"), "--data", str(root / "rows.npy")]) == 0
    return est, X, root / "onnx"


def test_m1_plus_m2_exports_m1s_codec_and_score_its_classifier_and_a_sampler(m1m2):
    from vaekit.estimators.inputs import from_model, to_model

    est, X, out = m1m2
    card = json.loads((out / "card.json").read_text())
    assert set(card["graphs"]) == {"encoder", "decoder", "score", "classifier", "sampler"}
    assert "M1's importance-weighted log p(x)" in card["model"]["unit"]
    x = to_model(est.inputs_, X[:30]).numpy()
    (logits,) = session(out, "classifier").run(None, {"x": x})
    assert close(torch.softmax(torch.from_numpy(logits), -1), est.predict_proba(X[:30]))  # x -> E[z1|x] -> q(y|z1)
    loc, _ = session(out, "encoder").run(None, {"x": x})
    assert close(loc, est.transform(X[:30]))
    # the sampler with the z that est.sample draws: the estimator's class-conditional rows
    z = torch.randn(6, 2, generator=torch.Generator().manual_seed(3))
    z1, mean = session(out, "sampler").run(None, {"z": z.numpy(), "y": np.ones(6, np.int64)})
    assert close(from_model(est.inputs_, torch.from_numpy(mean)), est.sample(6, y=1, random_state=3))
    assert close(session(out, "decoder").run(None, {"z": z1})[-1], mean)  # z1 is the decoder's latent
    eps = np.random.default_rng(0).standard_normal((1000, 16, 3)).astype(np.float32)
    (log_px,) = session(out, "score").run(None, {"x": x[:16], "eps": eps})
    agree(log_px, est.score_samples(X[:16]))  # M1's log p(x) in nats of the original units
    assert set(card["parity"]["max_abs_error"]) == set(card["graphs"])  # every graph checked against torch


def test_m1_plus_m2_on_a_table_exports_rows_with_missing_cells(tmp_path):
    from vaekit import SemiSupervisedClassifier
    from vaekit.data.tabular import encode_table

    rng = np.random.default_rng(0)
    cls = rng.integers(0, 2, 160)
    frame = pd.DataFrame({"amount": np.where(cls == 1, 50.0, -50.0) + 10 * rng.normal(size=160),
                          "colour": np.where(cls == 1, "red", "blue")})
    y = np.full(160, -1, dtype=object)
    y[:10] = np.where(cls[:10] == 1, "yes", "no")
    est = SemiSupervisedClassifier(latent_dim=2, m1_latent_dim=3, hidden=(16,), epochs=20, random_state=0).fit(frame, y)
    rows = frame.head(12).copy()
    rows.loc[0, "amount"] = np.nan
    rows.loc[1, "colour"] = None
    out = export(est, tmp_path / "onnx", examples=rows)  # fails unless every graph matches torch on these rows
    x = encode_table(rows, est.inputs_.table)
    (logits,) = session(out, "classifier").run(None, {"x": x})
    assert close(torch.softmax(torch.from_numpy(logits), -1), est.predict_proba(rows))
    eps = np.random.default_rng(1).standard_normal((1000, len(x), 3)).astype(np.float32)
    (log_px,) = session(out, "score").run(None, {"x": x, "eps": eps})
    assert np.all(np.isfinite(log_px))
    agree(log_px, est.score_samples(rows))


# -- applications: the sequence model's encoder and decoding step, the recommender's scores ----------
MOLECULES = ["CCO", "CCN", "CCC", "CCCO", "CCCN", "CC(C)O", "CC(=O)O", "CC(=O)N", "c1ccccc1", "c1ccncc1",
             "Cc1ccccc1", "Oc1ccccc1", "Nc1ccccc1", "CCOC(=O)C", "CC(=O)Nc1ccccc1", "C1CCCCC1", "C1CCNCC1"]


def card_code(out) -> str:
    import re

    return re.search(r"```python\n(.*?)```", (out / "MODEL_CARD.md").read_text(), re.S).group(1)


@pytest.fixture(scope="module")
def molecules(tmp_path_factory):
    pytest.importorskip("rdkit")
    from vaekit.apps.molecules import MoleculeVAE

    root = tmp_path_factory.mktemp("molecules")
    vae = MoleculeVAE(latent_dim=4, hidden=(16, 24), embed_dim=8, epochs=20, batch_size=8, device="cpu",
                      k=8, random_strings=0).fit(MOLECULES)
    vae.save(root / "model")
    assert serve_cli(["export", str(root / "model"), "--out", str(root / "onnx")]) == 0
    return vae, root


def test_molecule_encoder_graph_takes_any_batch_and_length(molecules):
    vae, root = molecules
    out = root / "onnx"
    card = json.loads((out / "card.json").read_text())
    assert set(card["graphs"]) == {"encoder", "decoder_init", "decoder_step"}
    encoder = session(out, "encoder")
    assert [(i.name, i.shape) for i in encoder.get_inputs()] == [("tokens", ["batch", "length"])]
    for name in card["graphs"]:
        assert not RANDOM_OPS & {node.op_type for node in onnx.load(str(out / f"{name}.onnx")).graph.node}
    vocab = card["preprocessing"]["vocabulary"]
    assert vocab == vae.vocabulary_.tokens
    model = vae.model_.eval()
    for smiles, extra in ((MOLECULES[:1], 0), (MOLECULES, 0), (MOLECULES[3:9], 7)):  # padding past the end is inert
        rows = torch.nn.functional.pad(vae._to_rows(smiles), (0, extra))
        loc, scale = encoder.run(None, {"tokens": rows.numpy()})
        with torch.inference_mode():
            q = model.encode(rows)
        assert close(loc, q.base_dist.loc) and close(scale, q.base_dist.scale)
        assert close(loc, vae.transform(smiles))


def test_molecule_decoding_step_and_the_cards_greedy_loop(molecules, monkeypatch):
    from vaekit.apps.molecules import tokens as tk

    vae, root = molecules
    out = root / "onnx"
    dec = vae.model_.decoder
    z = 2 * torch.randn(5, 4)
    with torch.inference_mode():
        h = dec.initial_state(z)
        logits, h2 = dec.step(torch.tensor([1, 4, 5, 6, 1]), h, z)
    (state,) = session(out, "decoder_init").run(None, {"z": z.numpy()})
    assert close(state, h)
    got_logits, got_state = session(out, "decoder_step").run(None, {"token": np.array([1, 4, 5, 6, 1]), "state": h.numpy(),
                                                                   "z": z.numpy()})
    assert close(got_logits, logits) and close(got_state, h2)
    text = (out / "MODEL_CARD.md").read_text()
    assert "greedy" in text.lower() and "decoder_step.onnx" in text
    monkeypatch.chdir(root)  # the card's code names the files relative to the export's parent
    scope = {}
    exec(card_code(out), scope)  # the loop exactly as a user copies it from the card
    smiles = [tk.from_tokens(t, vae.representation) for t in scope["tokens"]]
    assert smiles == vae.inverse_transform(scope["z"])


def test_molecule_export_refuses_pt2_before_writing(molecules, tmp_path):
    vae, _ = molecules
    with pytest.raises(ValueError, match="onnx"):
        export(vae, tmp_path / "pt2", format="pt2")
    assert not (tmp_path / "pt2").exists()


def test_recommender_scores_graph_is_predict(tmp_path, monkeypatch):
    import warnings

    import scipy.sparse as sp

    from vaekit.apps.recommend import Recommender
    from vaekit.apps.recommend.data import synthetic_clusters

    X, _ = synthetic_clusters(120, 40, seed=0)
    rec = Recommender(latent_dim=4, hidden=(16,), epochs=5, batch_size=32, device="cpu").fit(X)
    out = export(rec, tmp_path / "onnx")
    histories = sp.vstack([X[:6], sp.csr_matrix((1, 40), dtype=np.float32)]).tocsr()  # the last row is empty
    (scores,) = session(out, "scores").run(None, {"histories": histories.toarray()})
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # the empty row's popularity fallback
        expected = rec.predict(histories)
    assert scores.shape == (7, 40) and close(scores, expected)
    assert np.argmax(scores[-1]) == np.argmax(rec.item_popularity_)
    monkeypatch.chdir(tmp_path)
    scope = {}
    exec(card_code(out), scope)  # the card's code: one history, the top 10 unseen items
    ids, _ = rec.recommend(sp.csr_matrix(np.isin(np.arange(40), [0, 3])[None].astype(np.float32)), n=10)
    assert [int(i) for i in np.array(scope["items"], dtype=object)[scope["top"]]] == ids[0].tolist()
