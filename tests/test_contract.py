"""The model contract: one generic test body over every model family (in the manner of timm's generic
model tests), one file format opened by one loader, and a layout whose imports only go down."""

from __future__ import annotations

import ast
import json
import math
import types
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch

import vaekit
from vaekit import ModelConfig, build_model
from vaekit.cli import main
from vaekit.evaluate import evaluate, kl_per_dimension, log_likelihood
from vaekit.generate import sample
from vaekit.io import load_model, save_model
from vaekit.objectives import elbo, iwae_bound

FIXTURES = Path(__file__).parent / "fixtures" / "format1"
TABLE = [{"kind": "numeric"}, {"kind": "categorical", "size": 3}, {"kind": "numeric"}, {"kind": "numeric"}]

# (name, config, needs a label y): every family the core builds, and the likelihoods that shape them
FAMILIES = [
    ("vae-bernoulli", ModelConfig(input_shape=(6,), latent_dim=3, hidden=(16,)), False),
    ("vae-gaussian-vamp", ModelConfig(input_shape=(6,), latent_dim=3, hidden=(16,), likelihood="gaussian",
                                      prior="vamp", prior_components=4), False),
    ("vae-conv-categorical", ModelConfig(input_shape=(1, 6, 5), latent_dim=3, network="conv", channels=(4,),
                                         hidden=(8,), likelihood="categorical", n_categories=4), False),
    ("vae-table", ModelConfig(input_shape=(6,), latent_dim=3, hidden=(16,), likelihood="table",
                              likelihood_options={"columns": TABLE, "min_scale": 0.05}), False),
    ("conditional", ModelConfig(input_shape=(6,), latent_dim=3, hidden=(16,), n_classes=3), True),
    ("hierarchical", ModelConfig(family="hierarchical", input_shape=(6,), latent_dims=(2, 3), hidden=(16, 8)), False),
    ("hierarchical-vamp", ModelConfig(family="hierarchical", input_shape=(6,), latent_dims=(2, 2), hidden=(8,),
                                      likelihood="gaussian", prior="vamp", prior_components=3), False),
    ("m2", ModelConfig(family="m2", input_shape=(6,), latent_dim=3, hidden=(16,), n_classes=3), True),
    # the applications' families: recommendation (click counts) and molecules (token rows)
    ("multvae", ModelConfig(family="multvae", input_shape=(6,), latent_dim=3, hidden=(16,), likelihood="multinomial",
                            options={"dropout": 0.0}), False),
    ("sequence", ModelConfig(family="sequence", input_shape=(7,), latent_dim=3, hidden=(16, 16), n_categories=9,
                             likelihood="autoregressive_categorical", options={"embed_dim": 8}), False),
]


def data_for(cfg: ModelConfig, n: int = 7) -> torch.Tensor:
    g = torch.Generator().manual_seed(0)
    if cfg.family == "sequence":  # tokens 4..8, then the end token (2) and padding (0)
        x = torch.zeros(n, cfg.input_shape[0], dtype=torch.long)
        for i in range(n):
            length = 1 + i % (cfg.input_shape[0] - 1)
            x[i, :length] = torch.randint(4, cfg.n_categories, (length,), generator=g)
            x[i, length] = 2
        return x
    if cfg.likelihood == "multinomial":
        return torch.randint(0, 3, (n, *cfg.input_shape), generator=g).float()
    if cfg.likelihood == "categorical":
        return torch.randint(0, cfg.n_categories, (n, *cfg.input_shape), generator=g).float()
    if cfg.likelihood == "bernoulli":
        return (torch.rand(n, *cfg.input_shape, generator=g) > 0.5).float()
    x = torch.randn(n, *cfg.input_shape, generator=g)
    if cfg.likelihood == "table":
        x[:, 1:4] = torch.nn.functional.one_hot(torch.arange(n) % 3, 3).float()
        x[0, 0] = math.nan  # a missing cell, masked out
    return x


@pytest.mark.parametrize("name,cfg,conditional", FAMILIES, ids=[f[0] for f in FAMILIES])
def test_every_family_through_the_core(name, cfg, conditional, tmp_path):
    torch.manual_seed(0)
    model = build_model(cfg)
    x = data_for(cfg)
    y = torch.arange(len(x)) % 3 if conditional else None
    args = (x,) if y is None else (x, y)
    out = model(*args)
    assert sum(layer.z.shape[-1] for layer in out.layers) == model.latent_dim
    assert out.px.batch_shape == (len(x),)
    assert cfg.family == "sequence" or tuple(out.px.event_shape) == tuple(cfg.input_shape)
    assert len(model.layer_sizes) == len(out.layers)
    # the ELBO: finite, its terms add up, gradients reach every parameter
    t = elbo(model, *args)
    assert torch.isfinite(t.elbo).all() and torch.allclose(t.elbo, t.log_px_z - t.kl)
    if cfg.family == "m2":  # M2's own objective also trains the classifier q(y|x)
        from vaekit.apps.semisupervised.objective import m2_objective

        t = m2_objective(model, x, torch.where(torch.arange(len(x)) < 3, y, -1), alpha=1.0)
    t.loss.backward()
    grads = {n: p.grad for n, p in model.named_parameters() if p.requires_grad}
    missing = [n for n, g in grads.items() if g is None or not torch.isfinite(g).all()]
    assert not missing, missing
    # IWAE with k = 1 is the ELBO with a Monte Carlo KL at the same sample
    torch.manual_seed(5)
    e1 = elbo(model, *args, analytic_kl=False).elbo
    torch.manual_seed(5)
    i1 = iwae_bound(model, *args, k=1).elbo
    torch.testing.assert_close(e1, i1, rtol=1e-5, atol=1e-4)
    ll = log_likelihood(model, x, y, k=20)
    assert ll.shape == (len(x),) and torch.isfinite(ll).all()
    # generation from the generative model, then save -> load -> the same outputs
    z = model.sample_latent(4) if y is None else model.sample_latent(4, y[:4])
    assert z.shape == (4, model.latent_dim)
    px = model.decode(z) if y is None else model.decode(z, y[:4])
    assert model.likelihood.mean(px).shape[0] == 4
    save_model(model, cfg, tmp_path / name)
    loaded, cfg2, _ = load_model(tmp_path / name)
    assert cfg2 == cfg
    torch.testing.assert_close(log_likelihood(loaded, x, y, k=20), log_likelihood(model, x, y, k=20))
    torch.testing.assert_close(loaded.encode(*args).mean, model.encode(*args).mean)
    if y is None:
        record = evaluate(model, x, k=5)
        assert record["active_units"] <= model.latent_dim and record["latent_dim"] == model.latent_dim
        kl = kl_per_dimension(model, x)
        assert kl is None or kl.shape == (model.latent_dim,)
        assert len(sample(model, 3)) == 3


def test_only_the_objectives_module_defines_the_bounds():
    src = Path(vaekit.__file__).parent
    defs = [p.relative_to(src).as_posix() for p in src.rglob("*.py")
            for node in ast.walk(ast.parse(p.read_text()))
            if isinstance(node, ast.FunctionDef) and node.name in ("elbo", "iwae_bound", "log_weights")]
    assert sorted(set(defs)) == ["objectives.py"]
    assert not (src / "hierarchical_io.py").exists()
    assert isinstance(vaekit.evaluate, types.ModuleType)


def imports_of(path: Path, package: str) -> set[str]:
    """Modules of ``package`` that a file imports (at any level of the file)."""
    out = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom) and node.module and node.module.startswith(package):
            out.add(node.module)
            out.update(f"{node.module}.{a.name}" for a in node.names)
        elif isinstance(node, ast.Import):
            out.update(a.name for a in node.names if a.name.startswith(package))
    return out


def test_no_module_imports_one_that_imports_it_back():
    src = Path(vaekit.__file__).parent
    modules = {}
    for p in src.rglob("*.py"):
        name = "vaekit." + ".".join(p.relative_to(src).with_suffix("").parts)
        modules[name.removesuffix(".__init__")] = p
    graph = {m: {i for i in imports_of(p, "vaekit") if i in modules and i != m} for m, p in modules.items()}
    # a package's __init__ re-exporting its own modules is not a cycle
    cycles = [(a, b) for a, deps in graph.items() for b in deps
              if a in graph.get(b, ()) and not (b.startswith(a + ".") or a.startswith(b + "."))]
    assert not cycles, cycles
    # the core never imports the layers above it
    core = ("vaekit.nets", "vaekit.likelihoods", "vaekit.priors", "vaekit.models", "vaekit.objectives",
            "vaekit.schedules", "vaekit.runtime", "vaekit.hierarchical")
    above = ("vaekit.train", "vaekit.evaluate", "vaekit.io", "vaekit.estimators", "vaekit.run", "vaekit.cli",
             "vaekit.apps", "vaekit.serve", "vaekit.loading")
    bad = [(m, d) for m in graph if m.startswith(core) for d in graph[m] if d.startswith(above)]
    assert not bad, bad


# -- one file format, one loader ------------------------------------------------------------------
@pytest.fixture(scope="module")
def written(tmp_path_factory):
    """A directory from every writer vaekit has, trained for a moment."""
    root = tmp_path_factory.mktemp("writers")
    rng = np.random.default_rng(0)
    X = (rng.random((80, 6)) > 0.5).astype(np.float32)
    y = rng.integers(0, 2, 80)
    y[12:] = -1
    table = pd.DataFrame({"a": rng.normal(size=80), "c": rng.choice(["x", "y"], 80)})
    series = pd.DataFrame({"timestamp": pd.date_range("2024-01-01", periods=100, freq="h"),
                           "v": np.sin(np.arange(100) / 5)})
    quick = {"epochs": 1, "hidden": (8,), "latent_dim": 2}
    assert main(["train", "digits", "--out", str(root / "run"), "--set", "epochs=1", "--set", "hidden=[8]",
                 "--k", "3", "--set", "progress=false"]) == 0
    assert main(["train", "digits", "--out", str(root / "hrun"), "--set", "model.family=hierarchical",
                 "--set", "epochs=1", "--set", "hidden=[8]", "--k", "3", "--set", "progress=false"]) == 0
    vaekit.VAE(**quick).fit(X).save(root / "vae")
    vaekit.VAE(family="hierarchical", **quick).fit(X).save(root / "hvae")
    cfg = ModelConfig(family="hierarchical", input_shape=(6,), latent_dims=(2, 2), hidden=(8,))
    save_model(build_model(cfg), cfg, root / "hmodel")
    vaekit.SemiSupervisedClassifier("m2", **quick).fit(X, y).save(root / "m2")
    vaekit.SemiSupervisedClassifier("m1+m2", m1_latent_dim=3, **quick).fit(X, y).save(root / "m1m2")
    vaekit.AnomalyDetector(steps=20, hidden=(8,), latent_dim=2).fit(table).save(root / "detector")
    vaekit.TimeSeriesDetector(window=6, steps=20, hidden=(8,), latent_dim=2).fit(series).save(root / "series")
    np.save(root / "X.npy", X)
    table.to_csv(root / "table.csv", index=False)
    series.to_csv(root / "series.csv", index=False)
    return root


DIRS = {"run": "digits", "hrun": "digits", "vae": "X.npy", "hvae": "X.npy", "hmodel": "X.npy", "m2": "X.npy",
        "m1m2": "X.npy", "detector": "table.csv", "series": "series.csv"}
OLD = {"run": "digits", "vae": "X.npy", "hierarchical": "X.npy", "m2": "X.npy", "m1m2": "X.npy",
       "detector": "table.csv", "series": "series.csv"}


@pytest.mark.parametrize("where,name", [("new", n) for n in DIRS] + [("old", n) for n in OLD])
def test_every_directory_opens_with_one_loader_and_the_cli(where, name, written, tmp_path, capsys):
    root = written if where == "new" else FIXTURES
    path = root / name
    data = (DIRS if where == "new" else OLD)[name]
    meta = json.loads((path / "config.json").read_text())
    assert meta["format_version"] == (2 if where == "new" else 1)
    model, config, _ = load_model(path)
    assert isinstance(model, torch.nn.Module) and config.family in ("vae", "hierarchical", "m2")
    obj = vaekit.load(path)
    assert vaekit.as_model(obj) is not None
    assert main(["info", str(path)]) == 0
    data_arg = data if data == "digits" else str(root / data)
    assert main(["evaluate", str(path), data_arg, "--k", "3", "--json", str(tmp_path / "e.json")]) == 0
    record = json.loads((tmp_path / "e.json").read_text())
    assert math.isfinite(record["log_likelihood"])
    capsys.readouterr()


def test_format1_directories_give_the_numbers_the_previous_release_gave():
    """The fixtures were written, and these reference outputs computed, by the previous release."""
    ref = json.loads((FIXTURES / "reference.json").read_text())
    X = np.load(FIXTURES / "X.npy")
    np.testing.assert_allclose(vaekit.VAE.load(FIXTURES / "vae").transform(X[:5]), ref["vae_transform"], atol=1e-6)
    np.testing.assert_allclose(vaekit.load(FIXTURES / "m2").predict_proba(X[:5]), ref["m2_proba"], atol=1e-6)
    np.testing.assert_allclose(vaekit.load(FIXTURES / "m1m2").predict_proba(X[:5]), ref["m1m2_proba"], atol=1e-6)
    table = pd.read_csv(FIXTURES / "table.csv")
    np.testing.assert_allclose(vaekit.load(FIXTURES / "detector").decision_function(table.iloc[:5]),
                               ref["detector_scores"], rtol=1e-6)
    series = pd.read_csv(FIXTURES / "series.csv")
    np.testing.assert_allclose(vaekit.load(FIXTURES / "series").decision_function(series)[-5:],
                               ref["series_scores"], rtol=1e-6)
    from vaekit.generate import reconstruct

    h = vaekit.load(FIXTURES / "hierarchical")
    np.testing.assert_allclose(reconstruct(h, torch.from_numpy(X[:3])).numpy(), ref["hierarchical_mean"], atol=1e-6)


def test_a_detector_evaluated_through_the_core_gives_its_own_numbers():
    det = vaekit.load(FIXTURES / "detector")
    table = pd.read_csv(FIXTURES / "table.csv")
    record = det.evaluate(table, k=int(det.k))
    assert record["log_likelihood"] == pytest.approx(-det.decision_function(table).mean(), rel=1e-9)


def test_save_refuses_to_overwrite_and_a_failed_save_leaves_nothing(written, tmp_path):
    est = vaekit.load(written / "vae")
    with pytest.raises(ValueError, match="overwrite=True"):
        est.save(written / "vae")
    est.save(written / "vae", overwrite=True)
    with pytest.raises(ValueError, match="is a file"):
        (tmp_path / "f").write_text("x")
        est.save(tmp_path / "f")
    from sklearn.exceptions import NotFittedError

    for cls in (vaekit.VAE, vaekit.AnomalyDetector, vaekit.TimeSeriesDetector, vaekit.SemiSupervisedClassifier):
        with pytest.raises(NotFittedError):
            cls().save(tmp_path / "never")
    assert not (tmp_path / "never").exists()


def test_renamed_parameters_keep_their_old_names_with_a_warning():
    with pytest.warns(DeprecationWarning, match="scoring"):
        det = vaekit.AnomalyDetector(score="elbo")
    assert det.scoring == "elbo" and "score" not in det.get_params()  # no parameter shadows score()
