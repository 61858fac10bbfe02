"""Property-based fuzzing (hypothesis) of every estimator's parameters and inputs and of the command
line's options and input files. The only allowed outcomes are success or one clear error: a
ValueError (scikit-learn's NotFittedError is one) with a one-line message in Python; exit code 0 or 2
with one ``error:`` line and no traceback at the command line, and no partial output file.

The default run is bounded (a few dozen cases per property); ``-m slow`` runs many more.
"""

from __future__ import annotations

import math
import os
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import vaekit
from vaekit.cli import main

FAST = settings(max_examples=25, deadline=None, suppress_health_check=list(HealthCheck), derandomize=True)
LONG = settings(max_examples=300, deadline=None, suppress_health_check=list(HealthCheck))
CASES = {"n": 0}  # cases tried, printed at the end of the module

# values that are wrong for most parameters, and values that are right for the kind of parameter
ODD = st.one_of(st.none(), st.booleans(), st.integers(-10**6, 10**6), st.floats(allow_nan=True, allow_infinity=True),
                st.text(max_size=5), st.lists(st.integers(-3, 3), max_size=3))


def allowed_error(e: BaseException) -> bool:
    """A clear error: a ValueError whose message is one sentence on one line."""
    return isinstance(e, ValueError) and "\n" not in str(e).strip() and len(str(e)) > 10


def run_or_clear_error(fn):
    CASES["n"] += 1
    try:
        fn()
    except Exception as e:
        if not allowed_error(e):
            raise AssertionError(f"not a clear error: {type(e).__name__}: {e}") from e


ESTIMATORS = {
    "VAE": (vaekit.VAE, {"latent_dim": 2, "hidden": (8,), "epochs": 1, "k": 4},
            ["latent_dim", "hidden", "epochs", "batch_size", "lr", "beta", "k", "prior", "network", "family",
             "precision", "patience", "steps", "random_state"]),
    "AnomalyDetector": (vaekit.AnomalyDetector, {"latent_dim": 2, "hidden": (8,), "epochs": 1, "k": 4},
                        ["scoring", "contamination", "latent_dim", "hidden", "epochs", "batch_size", "lr", "k",
                         "trim", "min_scale", "validation_fraction", "patience", "steps", "random_state"]),
    "SemiSupervisedClassifier": (vaekit.SemiSupervisedClassifier, {"latent_dim": 2, "hidden": (8,), "epochs": 1},
                                 ["method", "latent_dim", "m1_latent_dim", "hidden", "epochs", "batch_size", "lr",
                                  "alpha", "warmup_epochs", "random_state"]),
}
SMALL_OK = {"epochs": 1, "steps": 5, "k": 3, "latent_dim": 2, "m1_latent_dim": 2, "batch_size": 16, "patience": 0}


def data(rows: int = 40):
    rng = np.random.default_rng(0)
    X = (rng.random((rows, 5)) > 0.5).astype(np.float32)
    y = np.full(rows, -1)
    y[:6] = [0, 1, 0, 1, 0, 1]
    return X, y


def cap(params: dict) -> dict:
    """Valid but expensive values (a million epochs) are replaced by small ones: the property is about
    how values are checked, not about training for long."""
    out = dict(params)
    for key, small in SMALL_OK.items():
        v = out.get(key)
        if isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v) and v > 2 * small + 8:
            out[key] = small
    if isinstance(out.get("hidden"), (list, tuple)) and any(isinstance(h, int) and h > 64 for h in out["hidden"]):
        out["hidden"] = (8,)
    return out


@pytest.mark.parametrize("name", list(ESTIMATORS))
@FAST
@given(st.data())
def test_estimator_parameters_succeed_or_fail_clearly(name, data_):
    cls, base, names = ESTIMATORS[name]
    chosen = data_.draw(st.lists(st.sampled_from(names), min_size=1, max_size=3, unique=True))
    params = {**base, **cap({n: data_.draw(ODD, label=n) for n in chosen})}
    X, y = data()

    def go():
        est = cls(**params)
        est.fit(X, y) if name == "SemiSupervisedClassifier" else est.fit(X)

    run_or_clear_error(go)


ARRAYS = st.one_of(
    st.builds(lambda n, d: np.random.default_rng(n).random((n, d)).astype(np.float32), st.integers(0, 5), st.integers(0, 4)),
    st.builds(lambda s: np.full(s, np.nan), st.tuples(st.integers(1, 4), st.integers(1, 4))),
    st.builds(lambda s: np.full(s, np.inf), st.tuples(st.integers(1, 4), st.integers(1, 4))),
    st.builds(lambda v: np.full((3, 2), v), st.floats(allow_nan=False, allow_infinity=False, width=32)),
    st.builds(np.zeros, st.tuples(st.integers(0, 3))),  # 1-D
    st.builds(lambda: np.zeros((2, 3, 4, 5, 6))),
    st.builds(lambda: np.array([["a", "b"], ["c", "d"]], dtype=object)),
    st.builds(lambda: pd.DataFrame({"a": [1, 2, 3], "b": ["x", None, "y"]})),
    st.builds(lambda: pd.DataFrame()),
    st.builds(lambda: [[1, 2], [3]]),  # ragged
)


@pytest.mark.parametrize("method", ["transform", "score_samples", "inverse_transform", "reconstruct"])
@FAST
@given(X=ARRAYS)
def test_fitted_vae_inputs_succeed_or_fail_clearly(fitted_vae, method, X):
    run_or_clear_error(lambda: getattr(fitted_vae, method)(X))


@FAST
@given(X=ARRAYS)
def test_fit_inputs_succeed_or_fail_clearly(X):
    run_or_clear_error(lambda: vaekit.VAE(latent_dim=2, hidden=(8,), epochs=1, k=3).fit(X))
    run_or_clear_error(lambda: vaekit.AnomalyDetector(latent_dim=2, hidden=(8,), epochs=1, k=3).fit(X))


@pytest.fixture(scope="module")
def fitted_vae():
    X, _ = data()
    return vaekit.VAE(latent_dim=2, hidden=(8,), epochs=1, k=3).fit(X)


# -- the command line -----------------------------------------------------------------------------
def file_contents():
    good = Path("good.npy")
    return st.one_of(
        st.binary(max_size=200),  # random bytes
        st.builds(lambda n: good.read_bytes()[:n], st.integers(0, 200)),  # a truncated .npy
        st.just(b"a,b\n1,2\n3,x\n"), st.just(b""), st.just(b"\x00" * 64),
    )


OPTIONS = st.lists(st.sampled_from([
    "--set", "epochs=0", "epochs=1", "latent_dim=-1", "latent_dim=abc", "hidden=[]", "batch_size=0",
    "--k", "0", "-3", "1", "-n", "-1", "0", "2", "--steps", "0", "--threads", "-2", "--split", "nope",
    "--overwrite", "--set", "model.family=nope", "data.standardize=maybe", "--config", "missing.toml",
]), max_size=6)


def cli_outcome(argv: list[str], capsys, outputs: list[Path]) -> None:
    CASES["n"] += 1
    before = {p: p.exists() for p in outputs}
    try:
        code = main(argv)
    except SystemExit as e:  # argparse usage errors inside a sub-parser
        code = e.code
    err = capsys.readouterr().err
    assert code in (0, 2), (argv, code, err[-500:])
    assert "Traceback" not in err, (argv, err[-500:])
    if code == 2:
        assert "error" in err, (argv, err)
        for p, existed in before.items():
            assert p.exists() == existed, f"{argv} failed but left {p} behind"


@pytest.fixture(scope="module")
def cli_dir(tmp_path_factory):
    root = tmp_path_factory.mktemp("fuzzcli")
    X, y = data(60)
    np.save(root / "good.npy", X)
    np.save(root / "labels.npy", y)
    cwd = os.getcwd()
    os.chdir(root)
    try:
        assert main(["train", "good.npy", "--out", "run", "--set", "epochs=1", "--set", "hidden=[8]",
                     "--set", "progress=false", "--k", "2"]) == 0
    finally:
        os.chdir(cwd)
    return root


COMMANDS = [
    ["train", "{f}", "--out", "{o}"],
    ["evaluate", "run", "{f}", "--json", "{o}"],
    ["sample", "run", "--out", "{o}.npy"],
    ["reconstruct", "run", "{f}", "--out", "{o}.npy"],
    ["encode", "run", "{f}", "--out", "{o}.csv"],
    ["decode", "run", "{f}", "--out", "{o}.npy"],
    ["interpolate", "run", "{f}", "0", "1", "--out", "{o}.npy"],
    ["traverse", "run", "--out", "{o}.npy"],
    ["info", "{f}"],
    ["detect", "fit", "{f}", "--out", "{o}"],
    ["ssl-train", "{f}", "--labels", "labels.npy", "--out", "{o}"],
    ["compress", "run", "{f}", "{o}.vkz"],
]


@pytest.mark.parametrize("template", COMMANDS, ids=lambda t: " ".join(t[:2]))
@settings(max_examples=int(os.environ.get("VAEKIT_FUZZ_CLI", "12")), deadline=None, suppress_health_check=list(HealthCheck), derandomize=not os.environ.get("VAEKIT_FUZZ_CLI"))
@given(data_=st.data())
def test_cli_commands_exit_0_or_2_without_traceback_or_partial_output(cli_dir, capsys, monkeypatch, template, data_):
    monkeypatch.chdir(cli_dir)
    content = data_.draw(file_contents(), label="file")
    suffix = data_.draw(st.sampled_from([".npy", ".csv", ".npz", ".parquet", ".txt"]), label="suffix")
    path = Path(f"input{suffix}")
    path.write_bytes(content)
    out = Path("out_fuzz")
    argv = [a.format(f=path, o=out) for a in template]
    argv += data_.draw(OPTIONS, label="options")
    if argv[0] in ("train", "detect", "ssl-train"):
        argv += ["--set", "epochs=1"] if argv[0] == "train" else []
    outputs = [out, Path(f"{out}.npy"), Path(f"{out}.csv"), Path(f"{out}.vkz")]
    for p in outputs:  # outputs start absent
        if p.is_dir():
            import shutil

            shutil.rmtree(p)
        elif p.exists():
            p.unlink()
    cli_outcome(argv, capsys, outputs)


@pytest.mark.slow
@LONG
@given(st.data())
def test_many_estimator_parameters(data_):
    for name in ESTIMATORS:
        test_estimator_parameters_succeed_or_fail_clearly.hypothesis.inner_test(name, data_)


def test_zz_report_the_number_of_cases(capsys):
    with capsys.disabled():
        print(f"\nfuzz cases tried in this run: {CASES['n']}")
    assert CASES["n"] > 0
