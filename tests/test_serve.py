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


@pytest.mark.parametrize("name", ["digits", "detector"])  # the detector covers table rows
def test_schema_driven_fuzzing_finds_no_server_error(runs, name):
    schemathesis = pytest.importorskip("schemathesis")
    from hypothesis import HealthCheck, given, settings
    from hypothesis.errors import Unsatisfiable

    app = create_app(runs[name])
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
    assert len(seen) > 60 and {code for _, code in seen} >= {200, 422}


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
LAYERS = [("rows",), ("served",), ("graphs", "tables"), ("detector",), ("loading",),
          ("card", "explorer"), ("export", "service"), ("cli",)]


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
