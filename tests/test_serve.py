"""The scoring service (vaekit.serve.service): every route in-process, bad input answered with 4xx and one
sentence, a schema-driven fuzz run with zero 5xx, and a real uvicorn process on loopback under load."""

import contextlib
import os
import socket
import subprocess
import sys
import threading
import time

import numpy as np
import pandas as pd
import pytest
import torch

pytest.importorskip("fastapi")
from fastapi.testclient import TestClient

from vaekit.serve.loading import open_model
from vaekit.serve.rows import MAX_ROWS
from vaekit.serve.service import create_app


def train(tmp, data, sets):
    from vaekit.run import resolve_config, train_run

    cfg = resolve_config(data=str(data), sets=["epochs=2", "hidden=[32]", "latent_dim=3", "progress=false", *sets])
    train_run(cfg, tmp, eval_k=5, pictures=False)
    return tmp


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    """A digits run, a table run (numbers and categories, labelled) and an anomaly detector, once."""
    from vaekit.apps.anomaly import AnomalyDetector

    root = tmp_path_factory.mktemp("serve")
    rng = np.random.default_rng(0)
    n = 240
    frame = pd.DataFrame({"size": rng.normal(10, 3, n), "weight": rng.normal(70, 9, n),
                          "colour": rng.choice(["red", "green"], n), "kind": rng.choice(["a", "b"], n)})
    frame.to_csv(root / "t.csv", index=False)
    det = AnomalyDetector(epochs=5, latent_dim=2, hidden=(16,)).fit(frame.drop(columns="kind"))
    det.save(root / "detector")
    return {"digits": train(root / "digits", "digits", ["data.max_examples=400"]),
            "table": train(root / "table", root / "t.csv", ["data.label=kind"]),
            "detector": root / "detector", "det": det, "frame": frame}


@pytest.fixture(scope="module")
def digits(runs):
    return TestClient(create_app(runs["digits"]))


@pytest.fixture(scope="module")
def table(runs):
    return TestClient(create_app(runs["table"]))


@pytest.fixture(scope="module")
def detector(runs):
    return TestClient(create_app(runs["detector"]))


def refused(response, status=422, words=()):
    """A 4xx answer with one sentence naming the problem."""
    assert response.status_code == status, response.text
    detail = response.json()["detail"]
    assert isinstance(detail, str) and "\n" not in detail and detail.endswith("."), detail
    for w in words:
        assert w in detail, detail
    return detail


def test_encode_decode_reconstruct_agree_with_the_model(runs, digits):
    served = open_model(runs["digits"])
    x = served.examples()[0][:5]
    body = {"x": x.tolist()}  # nested (1, 8, 8) images
    enc = digits.post("/encode", json=body).json()
    with torch.inference_mode():
        q = served.model.encode(x)
    assert np.allclose(enc["loc"], q.base_dist.loc, atol=1e-6) and np.allclose(enc["scale"], q.base_dist.scale, atol=1e-6)
    flat = digits.post("/encode", json={"x": x.reshape(5, -1).tolist()}).json()
    assert flat == enc  # flat rows are the same images
    recon = digits.post("/reconstruct", json=body).json()["x"]
    decoded = digits.post("/decode", json={"z": enc["loc"]}).json()["x"]
    assert np.allclose(recon, decoded, atol=1e-5) and np.asarray(recon).shape == (5, 1, 8, 8)


def test_sample_is_seeded(digits):
    a = digits.post("/sample", json={"n": 3, "seed": 7}).json()["x"]
    b = digits.post("/sample", json={"n": 3, "seed": 7}).json()["x"]
    c = digits.post("/sample", json={"n": 3, "seed": 8}).json()["x"]
    assert a == b and a != c and np.asarray(a).shape == (3, 1, 8, 8)


def test_score_is_the_library_log_likelihood_in_original_units(runs, table):
    from vaekit.evaluate import log_likelihood

    served = open_model(runs["table"])
    rows = runs["frame"].drop(columns="kind").head(6)
    answer = table.post("/score", json={"x": rows.values.tolist(), "k": 50}).json()
    x = served.to_model(rows)
    expected = log_likelihood(served.model, x, k=50, seed=0).numpy() + served.shift(x)
    assert np.allclose(answer["log_px"], expected, atol=1e-4) and "nats" in answer["unit"]
    reordered = table.post("/score", json={"x": rows[["colour", "weight", "size"]].values.tolist(), "k": 50,
                                           "columns": ["colour", "weight", "size"]}).json()
    assert np.allclose(reordered["log_px"], answer["log_px"])


def test_table_rows_come_back_in_original_columns(table):
    out = table.post("/sample", json={"n": 4, "seed": 0}).json()
    assert out["columns"] == ["size", "weight", "colour"]
    assert all(isinstance(r[0], float) and r[2] in ("red", "green") for r in out["x"])
    assert 40 < np.mean([r[1] for r in out["x"]]) < 100  # kilograms, not standardised units
    info = table.get("/info").json()
    assert info["class_names"] == ["a", "b"] and info["rows"]["categories"] == {"colour": ["green", "red"]}


def test_table_rows_may_miss_cells_and_bring_new_categories(table):
    """The table likelihood leaves a missing cell out of log p(x) and has a slot for unseen categories."""
    full = table.post("/score", json={"x": [[10.0, 70.0, "red"]]}).json()["log_px"][0]
    missing = table.post("/score", json={"x": [[None, 70.0, "red"]]}).json()["log_px"][0]
    unseen = table.post("/score", json={"x": [[10.0, 70.0, "purple"]]}).json()["log_px"][0]
    assert np.isfinite([full, missing, unseen]).all()
    assert missing > full  # one cell fewer to explain: a higher density in nats
    assert unseen < full  # a category never seen in training is less likely than a common one


def test_detect_flags_rows_above_the_threshold(runs, detector):
    det, rows = runs["det"], runs["frame"].drop(columns="kind").head(8).astype(object)
    rows.iloc[0, 0] = 500.0  # an outlier
    rows.iloc[1, 1] = None  # a missing cell is allowed
    answer = detector.post("/detect", json={"x": rows.values.tolist()}).json()
    assert np.allclose(answer["score"], det.decision_function(rows.astype({"size": float, "weight": float})))
    assert answer["flag"][0] == 1 and answer["flag"] == [int(s > det.threshold_) for s in answer["score"]]
    enc = detector.post("/encode", json={"x": rows.values.tolist()})  # missing cells encode too
    assert enc.status_code == 200 and np.isfinite(enc.json()["loc"]).all()


def test_bad_requests_get_one_sentence(runs, digits, table, detector):
    refused(digits.post("/encode", json={"x": [[0.5] * 63]}), words=["shape [63]"])
    refused(digits.post("/encode", json={"x": [["a"] * 64]}), words=["numbers"])
    refused(digits.post("/encode", content=b'{"x": [[NaN]]}', headers={"content-type": "application/json"}),
            words=["NaN"])
    refused(digits.post("/encode", json={"x": [[0.5] * 64], "y": ["3"]}), words=["not conditional"])
    refused(digits.post("/encode", json={"x": [[0.1] * 64] * (MAX_ROWS + 1)}), words=["4096"])
    refused(digits.post("/encode", content=b"{not json", headers={"content-type": "application/json"}))
    refused(digits.post("/decode", json={"z": [[0.0, 1.0]]}), words=["3 items"])
    refused(digits.post("/sample", json={"n": 0}))
    refused(digits.post("/score", json={"x": [[0.5] * 64], "k": 10**6}))
    refused(digits.post("/encode", json={"x": [[0.5] * 64], "path": "/etc/passwd"}), words=["path"])
    refused(table.post("/encode", json={"x": [[1.0, "heavy", "red"]]}), words=["weight"])
    refused(table.post("/encode", json={"x": [[1.0, 70.0, "red"]], "columns": ["a", "b", "c"]}), words=["size"])
    refused(table.post("/encode", json={"x": [[[1.0], 70.0, "red"]]}), words=["nested"])
    refused(detector.post("/detect", json={"x": [[1.0, 2.0]]}), words=["3 values"])
    refused(digits.get("/explore/points/100000"), status=404)
    huge = digits.post("/score", json={"x": [[3e38] * 64], "k": 5})  # finite in float32, overflows in the model
    assert huge.status_code == 200 and len(huge.json()["log_px"]) == 1
    small = TestClient(create_app(runs["digits"], explore=False, max_body=1000))
    refused(small.post("/encode", json={"x": [[0.5] * 64] * 20}), status=413)
    assert small.get("/health").json()["status"] == "ok"


def test_openapi_schema_lists_every_route(digits, detector):
    paths = set(digits.get("/openapi.json").json()["paths"])
    assert {"/health", "/info", "/encode", "/decode", "/sample", "/reconstruct", "/score"} <= paths
    assert "/detect" not in paths and "/detect" in detector.get("/openapi.json").json()["paths"]


@pytest.mark.parametrize("name", ["digits", "detector", "recommender", "molecules", "m1m2"])  # detector: table rows
def test_schema_driven_fuzzing_finds_no_server_error(runs, request, name):
    schemathesis = pytest.importorskip("schemathesis")
    from hypothesis import HealthCheck, given, settings
    from hypothesis.errors import Unsatisfiable

    apps = request.getfixturevalue("apps") if name in ("recommender", "molecules") else {}
    if name == "m1m2":  # M1+M2 on table rows: /classify, and y read only by /sample
        app = request.getfixturevalue("m1m2")["table"].app
    else:
        app = create_app(runs[name] if name in runs else apps[name])
    schema = schemathesis.openapi.from_asgi("/openapi.json", app)
    seen = []

    def fuzz(op, mode):
        @settings(max_examples=8, deadline=None, database=None, suppress_health_check=list(HealthCheck))
        @given(case=op.as_strategy(generation_mode=mode))
        def call(case):
            response = case.call()
            seen.append((op.path, response.status_code))
            assert response.status_code < 500, (op.path, case.body, response.text)

        with contextlib.suppress(Unsatisfiable):  # e.g. no invalid request exists for GET /health
            call()

    for result in schema.get_all_operations():
        for mode in (schemathesis.GenerationMode.POSITIVE, schemathesis.GenerationMode.NEGATIVE):
            fuzz(result.ok(), mode)
    assert len(seen) > (40 if name in apps else 60) and {code for _, code in seen} >= {200, 422}
    if name in apps:  # the application's own routes were reached with valid requests, not only refused
        assert {path for path, code in seen if code == 200} >= ({"/recommend", "/encode"} if name == "recommender"
                                                                 else {"/molecules/sample", "/decode"})


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_real_uvicorn_process_under_load(runs):
    """`vaekit serve` as its own process on loopback: 200 requests from 4 clients, zero errors."""
    import httpx

    port = free_port()
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    proc = subprocess.Popen([sys.executable, "-m", "vaekit.serve.cli", "serve", str(runs["digits"]), "--port", str(port),
                             "--log-level", "warning"], env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.time() + 60
        while True:
            try:
                if httpx.get(url + "/health", timeout=1).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            assert proc.poll() is None and time.time() < deadline, proc.stdout.read().decode()
            time.sleep(0.2)
        x = np.random.default_rng(0).random((4, 64)).round(3).tolist()
        calls = [("/encode", {"x": x}), ("/decode", {"z": [[0.1, -0.2, 0.3]] * 4}), ("/sample", {"n": 4, "seed": 1}),
                 ("/score", {"x": x, "k": 20}), ("/reconstruct", {"x": x})]
        statuses, lock = [], threading.Lock()

        def client(i):
            with httpx.Client(base_url=url, timeout=30) as c:
                for j in range(50):
                    path, body = calls[(i + j) % len(calls)]
                    code = c.post(path, json=body).status_code
                    with lock:
                        statuses.append(code)

        threads = [threading.Thread(target=client, args=(i,)) for i in range(4)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        assert len(statuses) == 200 and set(statuses) == {200}
        bad = httpx.post(url + "/encode", content=b"[1, 2", headers={"content-type": "application/json"})
        assert bad.status_code == 422 and httpx.get(url + "/health").status_code == 200
    finally:
        proc.terminate()
        proc.wait(timeout=20)


# the serve package's layers, lowest first; a module may import only modules of earlier layers
LAYERS = [("rows",), ("served",), ("graphs", "tables"), ("detector", "recommender", "molecules", "semisupervised"),
          ("loading",),
          ("card", "explorer", "app_routes"), ("export", "service"), ("cli",)]


def test_serve_modules_import_only_the_layers_below():
    import ast
    from pathlib import Path

    import vaekit.serve

    src = Path(vaekit.serve.__file__).parent
    layer = {name: i for i, names in enumerate(LAYERS) for name in names}
    assert set(layer) == {p.stem for p in src.glob("*.py")} - {"__init__"}, "a new module needs a layer here"
    upward = []
    for name, at in layer.items():
        for node in ast.walk(ast.parse((src / f"{name}.py").read_text())):  # at any level, inside functions too
            modules = [node.module or ""] if isinstance(node, ast.ImportFrom) else \
                [a.name for a in node.names] if isinstance(node, ast.Import) else []
            for m in modules:
                if m.startswith("vaekit.serve."):
                    other = m.split(".")[2]
                    if layer[other] >= at and other != name:
                        upward.append(f"{name} imports {other}")
    assert not upward, upward


# -- applications: a Recommender and a MoleculeVAE ------------------------------------------------
MOLECULES = ["CCO", "CCN", "CCC", "CCCO", "CCCN", "CC(C)O", "CC(=O)O", "CC(=O)N", "c1ccccc1", "c1ccncc1",
             "Cc1ccccc1", "Oc1ccccc1", "Nc1ccccc1", "CCOC(=O)C", "CC(=O)Nc1ccccc1", "C1CCCCC1", "C1CCNCC1"]


@pytest.fixture(scope="module")
def apps(tmp_path_factory):
    """A Recommender (string item ids, from a frame), a Mult-DAE and a MoleculeVAE, small and saved once."""
    pytest.importorskip("rdkit")
    from vaekit.apps.molecules import MoleculeVAE
    from vaekit.apps.recommend import Recommender
    from vaekit.apps.recommend.data import synthetic_clusters

    root = tmp_path_factory.mktemp("apps")
    X, _ = synthetic_clusters(120, 40, seed=0)
    users, items = X.nonzero()
    frame = pd.DataFrame({"user": users, "item": [f"i{j}" for j in items]})
    small = {"latent_dim": 4, "hidden": (16,), "batch_size": 32, "device": "cpu", "k": 20}
    rec = Recommender(epochs=5, rating=None, **small).fit(frame)
    rec.save(root / "recommender")
    Recommender(model="mult-dae", epochs=1, **small).fit(X).save(root / "dae")
    vae = MoleculeVAE(latent_dim=4, hidden=(16, 24), embed_dim=8, epochs=20, batch_size=8, device="cpu",
                      k=8, random_strings=0).fit(MOLECULES)
    vae.save(root / "molecules")
    return {"recommender": root / "recommender", "dae": root / "dae", "molecules": root / "molecules",
            "rec": rec, "vae": vae}


@pytest.fixture(scope="module")
def recommender(apps):
    return TestClient(create_app(apps["recommender"]))


@pytest.fixture(scope="module")
def molecules(apps):
    return TestClient(create_app(apps["molecules"]))


def test_recommend_route_is_the_estimators_answer(apps, recommender):
    import scipy.sparse as sp

    rec = apps["rec"]
    body = {"histories": [["i1", "i2", "no-such-item", 99], [], ["nothing-known"], ["i5"]], "n": 5}
    out = recommender.post("/recommend", json=body).json()
    assert out["unknown"] == [2, 0, 1, 0] and out["fallback"] == [False, True, True, False]
    index = {v: j for j, v in enumerate(rec.items_)}
    M = sp.lil_matrix((4, rec.n_items_), dtype=np.float32)
    M[0, [index["i1"], index["i2"]]] = 1
    M[3, index["i5"]] = 1
    M = M.tocsr()
    with pytest.warns(UserWarning, match="no known history"):
        ids, scores = rec.recommend(M, n=5)
    assert out["items"] == ids.tolist() and np.allclose(out["scores"], scores, atol=1e-6)
    assert not {"i1", "i2"} & set(out["items"][0]) and "i5" not in out["items"][3]  # seen items never come back
    popular = [rec.items_[j] for j in np.argsort(-rec.item_popularity_, kind="stable")[:5]]
    assert sorted(out["items"][1]) == sorted(popular) and out["items"][1] == out["items"][2]
    assert out["scores"][0] == sorted(out["scores"][0], reverse=True)
    whole = recommender.post("/recommend", json={"histories": [["i1"]], "n": 1000}).json()
    assert len(whole["items"][0]) == rec.n_items_ - 1  # the catalogue runs out: every unseen item, once


def test_recommender_encode_and_score_are_the_estimators(apps, recommender):
    rec = apps["rec"]
    frame = pd.DataFrame({"user": [0, 0, 1, 2, 2, 2], "item": ["i1", "i2", "i7", "i20", "i21", "i22"]})
    histories = [["i1", "i2"], ["i7"], ["i20", "i21", "i22"]]
    enc = recommender.post("/encode", json={"histories": histories}).json()
    assert np.allclose(enc["loc"], rec.transform(frame), atol=1e-6) and np.all(np.asarray(enc["scale"]) > 0)
    out = recommender.post("/score", json={"histories": histories, "k": rec.k, "seed": 0}).json()
    assert np.allclose(out["log_px"], rec.score_samples(frame), atol=1e-4) and "nats" in out["unit"]
    assert out["log_px"][2] < out["log_px"][1]  # three clicks are less likely than one


def test_molecule_routes_are_the_estimators(apps, molecules):
    vae = apps["vae"]
    out = molecules.post("/molecules/sample", json={"n": 6, "seed": 3, "temperature": 0.7}).json()
    assert out["smiles"] == vae.sample(6, temperature=0.7, random_state=3)
    assert out["smiles"] == molecules.post("/molecules/sample", json={"n": 6, "seed": 3, "temperature": 0.7}).json()["smiles"]
    smiles = ["OCC", "c1ccccc1", "CC[Se]C"]  # OCC is CCO written differently; [Se] was never seen
    enc = molecules.post("/encode", json={"smiles": smiles}).json()
    with pytest.warns(UserWarning, match="not seen in training"):
        assert np.allclose(enc["loc"], vae.transform(smiles), atol=1e-6)
    assert enc["smiles"][0] == "CCO" and sum(enc["unknown_tokens"].values()) >= 1
    dec = molecules.post("/decode", json={"z": enc["loc"]}).json()
    assert dec["smiles"] == vae.inverse_transform(np.asarray(enc["loc"], np.float32))
    score = molecules.post("/score", json={"smiles": ["CCO", "c1ccccc1"], "k": 8, "seed": 0}).json()
    assert np.allclose(score["log_px"], vae.score_samples(["CCO", "c1ccccc1"]), atol=1e-4)
    assert all(v < 0 for v in score["log_px"]) and "nats" in score["unit"]


def test_bad_application_requests_get_one_sentence(apps, recommender, molecules, capsys):
    from vaekit.serve.cli import main as serve_cli

    refused(recommender.post("/recommend", json={"histories": [["i1"]], "n": 0}), words=["n"])
    refused(recommender.post("/recommend", json={"histories": []}), words=["histories"])
    refused(recommender.post("/recommend", json={"histories": [[["i1"]]]}), words=["histories"])
    refused(recommender.post("/recommend", json={"histories": [[1.5]]}))
    refused(recommender.post("/score", json={"histories": [["i1"]], "k": 0}), words=["k"])
    refused(TestClient(create_app(apps["dae"])).post("/score", json={"histories": [[1]]}), words=["Mult-DAE"])
    refused(molecules.post("/encode", json={"smiles": ["CCO", "not a molecule", ""]}),
            words=["2 of 3", "'not a molecule'"])
    refused(molecules.post("/score", json={"smiles": ["C" * 2000]}), words=["smiles"])
    refused(molecules.post("/score", json={"smiles": ["CCO"] * 200, "k": 1000}), words=["smaller k"])
    refused(molecules.post("/decode", json={"z": [[0.0, 1.0]]}), words=["4 items"])
    refused(molecules.post("/decode", content=b'{"z": [[NaN, 0, 0, 0]]}', headers={"content-type": "application/json"}),
            words=["NaN"])
    refused(molecules.post("/molecules/sample", json={"n": 2, "temperature": 0}), words=["temperature"])
    refused(molecules.post("/molecules/sample", json={"n": 5000}), words=["n"])
    paths = set(molecules.get("/openapi.json").json()["paths"])
    assert paths == {"/health", "/info", "/molecules/sample", "/encode", "/decode", "/score"}
    assert set(recommender.get("/openapi.json").json()["paths"]) == {"/health", "/info", "/recommend", "/encode", "/score"}
    info = molecules.get("/info").json()
    assert info["application"] == "molecules" and info["vocabulary_size"] == len(apps["vae"].vocabulary_)
    assert serve_cli(["explore", str(apps["molecules"]), "--no-browser", "--port", str(free_port())]) == 2
    assert "explorer" in capsys.readouterr().err


# -- the semi-supervised classifier's default, M1+M2: M1 models x, M2 reads M1's code z1 ------------
def planted(n: int = 200, seed: int = 0):
    """Two planted classes in 6-D, ten rows labelled."""
    rng = np.random.default_rng(seed)
    cls = rng.integers(0, 2, n)
    X = (rng.normal(size=(n, 6)) + np.where(cls[:, None] == 1, 2.0, -2.0)).astype(np.float32)
    y = np.full(n, -1)
    y[:10] = cls[:10]
    return X, y, cls


def mixed_frame(n: int = 160, seed: int = 0):
    rng = np.random.default_rng(seed)
    cls = rng.integers(0, 2, n)
    frame = pd.DataFrame({"amount": np.where(cls == 1, 50.0, -50.0) + 10 * rng.normal(size=n),
                          "colour": np.where(rng.random(n) < 0.9, np.where(cls == 1, "red", "blue"), "green")})
    y = np.full(n, -1, dtype=object)
    y[:10] = np.where(cls[:10] == 1, "yes", "no")
    return frame, y


@pytest.fixture(scope="module")
def m1m2(tmp_path_factory):
    """M1+M2 (the default method) on an array and on a mixed table, fitted for a moment and saved."""
    from vaekit import SemiSupervisedClassifier

    root = tmp_path_factory.mktemp("m1m2")
    X, y, cls = planted()
    est = SemiSupervisedClassifier(latent_dim=2, m1_latent_dim=3, hidden=(16,), epochs=100, random_state=0).fit(X, y)
    est.save(root / "array")
    frame, fy = mixed_frame()
    tab = SemiSupervisedClassifier(latent_dim=2, m1_latent_dim=3, hidden=(16,), epochs=20, random_state=0).fit(frame, fy)
    tab.save(root / "table")
    return {"est": est, "X": X, "cls": cls, "tab": tab, "frame": frame,
            "array": TestClient(create_app(root / "array")), "table": TestClient(create_app(root / "table"))}


def test_m1_plus_m2_is_served_with_the_estimators_numbers(m1m2):
    from vaekit.estimators.inputs import from_model, to_model

    est, X, client = m1m2["est"], m1m2["X"][:8], m1m2["array"]
    out = client.post("/classify", json={"x": X.tolist()}).json()
    assert np.allclose(out["probs"], est.predict_proba(X), atol=1e-6) and out["class_names"] == ["0", "1"]
    assert out["label"] == [str(v) for v in est.predict(X)]
    assert (np.asarray(client.post("/classify", json={"x": m1m2["X"].tolist()}).json()["label"], int)
            == m1m2["cls"]).mean() > 0.95  # the planted classes, through E[z1|x] and q(y|z1)
    enc = client.post("/encode", json={"x": X.tolist()}).json()
    assert np.allclose(enc["loc"], est.transform(X), atol=1e-6) and np.asarray(enc["loc"]).shape == (8, 3)
    with torch.inference_mode():  # reconstruction goes through M1: E[x | z1 = E[z1|x]]
        recon = from_model(est.inputs_, est.m1_.likelihood.mean(est.m1_.decode(est.m1_.encode(to_model(est.inputs_, X)).mean)))
    assert np.allclose(client.post("/reconstruct", json={"x": X.tolist()}).json()["x"], recon, atol=1e-4)
    score = client.post("/score", json={"x": X.tolist(), "k": 50}).json()
    assert np.allclose(score["log_px"], est.score_samples(X, k=50), atol=1e-4)
    assert "M1's importance-weighted log p(x)" in score["unit"] and "not x" in score["unit"]
    for label in ("0", "1"):  # class-conditional generation: z ~ p(z), z1 from M2's decoder, x from M1's
        rows = np.asarray(client.post("/sample", json={"n": 20, "y": [label], "seed": 1}).json()["x"])
        assert rows.shape == (20, 6) and (est.predict(rows.astype(np.float32)) == int(label)).mean() >= 0.9
    a, b = (client.post("/sample", json={"n": 5, "seed": 4}).json()["x"] for _ in range(2))  # classes drawn uniformly
    assert a == b and np.asarray(a).shape == (5, 6)
    info = client.get("/info").json()
    assert info["condition"] is None and info["sample_condition"] == "label" and info["latent_dim"] == 3
    assert info["m2_latent_dim"] == 2 and "M1+M2" in info["name"]
    assert client.get("/explore/map").status_code == 200


def test_m1_plus_m2_reads_a_label_only_when_sampling(m1m2):
    client = m1m2["array"]
    row = m1m2["X"][:1].tolist()
    for route, body in (("/encode", {"x": row}), ("/score", {"x": row}), ("/decode", {"z": [[0.0] * 3]}),
                        ("/classify", {"x": row})):
        refused(client.post(route, json={**body, "y": ["1"]}), words=["leave y out"])
    refused(client.post("/sample", json={"n": 2, "y": ["7"]}), words=["Unknown label"])
    assert client.post("/decode", json={"z": [[0.0] * 3]}).status_code == 200  # the explorer's call, without y


def test_m1_plus_m2_on_a_table_is_served_in_original_columns(m1m2):
    tab, client = m1m2["tab"], m1m2["table"]
    rows = m1m2["frame"].head(6).astype(object)
    rows.iloc[0, 0] = None  # a missing cell: M1's table likelihood leaves it out
    body = {"x": rows.values.tolist()}
    frame = rows.astype({"amount": float})
    out = client.post("/classify", json=body).json()
    assert np.allclose(out["probs"], tab.predict_proba(frame), atol=1e-6) and out["class_names"] == ["no", "yes"]
    assert np.allclose(client.post("/encode", json=body).json()["loc"], tab.transform(frame), atol=1e-6)
    score = client.post("/score", json={**body, "k": 50}).json()["log_px"]
    assert np.allclose(score, tab.score_samples(frame, k=50), atol=1e-4) and np.isfinite(score).all()
    sample = client.post("/sample", json={"n": 4, "y": ["yes"]}).json()
    assert sample["columns"] == ["amount", "colour"] and len(sample["x"]) == 4
    assert all(isinstance(r[0], float) and r[1] in ("red", "blue", "green") for r in sample["x"])
