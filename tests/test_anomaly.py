"""Anomaly detection: tabular detector, time-series detector, metrics and the `detect` CLI.

Small synthetic data only; each detector is trained once per module."""

from __future__ import annotations

import argparse

import numpy as np
import pandas as pd
import pytest
from sklearn.metrics import roc_auc_score

from vaekit.apps.anomaly import AnomalyDetector, TimeSeriesDetector
from vaekit.apps.anomaly.cli import add_commands
from vaekit.apps.anomaly.metrics import best_f1, detection_metrics, point_adjust

FAST = {"latent_dim": 2, "hidden": (32, 32), "steps": 300, "k": 32, "patience": 0}


def planted(n_in=600, n_out=30, seed=0):
    """Inliers on a 2-D linear manifold in 6-D plus small noise; outliers off the manifold."""
    rng = np.random.default_rng(seed)
    A = rng.standard_normal((2, 6))
    x_in = rng.standard_normal((n_in, 2)) @ A + 0.1 * rng.standard_normal((n_in, 6))
    x_out = rng.uniform(-3, 3, (n_out, 6))
    return x_in, x_out


@pytest.fixture(scope="module")
def table():
    x_in, x_out = planted()
    det = AnomalyDetector(contamination=0.05, **FAST).fit(x_in[:400])
    return det, x_in[400:], x_out


def test_planted_outliers_reach_auc_095(table):
    det, x_in, x_out = table
    s = det.decision_function(np.vstack([x_in, x_out]))
    y = np.r_[np.zeros(len(x_in)), np.ones(len(x_out))]
    assert roc_auc_score(y, s) >= 0.95
    for score in ("elbo", "recon_prob", "recon_error"):
        det.set_params(scoring=score)
        assert roc_auc_score(y, det.decision_function(np.vstack([x_in, x_out]))) >= 0.9, score
    det.set_params(scoring="nll")


def test_scores_are_deterministic_and_follow_conventions(table):
    det, x_in, x_out = table
    X = np.vstack([x_in[:20], x_out[:5]])
    s = det.decision_function(X)
    np.testing.assert_array_equal(s, det.decision_function(X))
    np.testing.assert_array_equal(det.score_samples(X), -s)
    np.testing.assert_array_equal(det.predict(X), (s > det.threshold_).astype(int))
    p = det.predict_proba(X)
    assert p.shape == (25, 2) and np.allclose(p.sum(1), 1) and (p >= 0).all() and (p <= 1).all()
    # contamination sets the threshold: about 5% of the training rows are above it
    assert abs(det.labels_.mean() - 0.05) < 0.01
    assert det.predict(x_out).mean() > 0.8 and det.predict(x_in).mean() < 0.15


def test_explain_names_the_shifted_feature(table):
    det, x_in, _ = table
    row = x_in[:1].copy()
    row[0, 3] += 8 * det.table_["columns"][3]["std"]
    contrib = det.explain(row)
    assert list(contrib.columns) == det.feature_names_
    assert contrib.iloc[0].idxmax() == det.feature_names_[3]


def test_missing_value_is_masked_not_imputed(table):
    det, x_in, _ = table
    row = x_in[:1].copy()
    row[0, 2] += 8 * det.table_["columns"][2]["std"]  # an outlier only through feature 2
    masked = row.copy()
    masked[0, 2] = np.nan
    s_out, s_masked = det.decision_function(np.vstack([row, masked]))
    inlier_scores = det.decision_function(x_in)
    assert s_out > det.threshold_ and s_masked < np.quantile(inlier_scores, 0.9)
    assert det.explain(masked).iloc[0, 2] == 0.0


def test_nll_is_in_original_units():
    """Rescaling the data by c leaves the standardised fit unchanged and shifts -log p(x) by D log c."""
    x_in, _ = planted(n_in=200, seed=1)
    kw = dict(FAST, steps=100)
    a = AnomalyDetector(**kw).fit(x_in).decision_function(x_in[:10])
    b = AnomalyDetector(**kw).fit(10 * x_in).decision_function(10 * x_in[:10])
    np.testing.assert_allclose(b - a, 6 * np.log(10), atol=0.05)


def test_mixed_table_with_categories_constants_and_missing_values():
    rng = np.random.default_rng(0)
    n = 500
    u = rng.standard_normal(n)
    frame = pd.DataFrame({"u": u, "v": 2 * u + 0.1 * rng.standard_normal(n),
                          "kind": np.where(u > 0, "high", "low"), "const": 7.0})
    frame.loc[::10, "v"] = np.nan
    det = AnomalyDetector(trim=0.0, **FAST).fit(frame)  # clean training rows: nothing to trim
    assert det.feature_names_ == ["u", "v", "kind", "const"] and [c["name"] for c in det.table_["columns"] if c["kind"] == "constant"] == ["const"]
    test = pd.DataFrame({"u": [1.5, 1.5, 1.5, 1.5, 1.5], "v": [3.0, 3.0, np.nan, 3.0, 3.0],
                         "kind": ["high", "low", "never", "high", "high"], "const": [7.0, 7.0, 7.0, 7.5, np.nan]})
    s = det.decision_function(test)
    assert np.isfinite(s).all() and s[1] > s[0] + 2 and s[2] > s[0] + 2
    why = det.explain(test)
    assert (why.iloc[1] - why.iloc[0]).idxmax() == "kind"  # what grew against the same row with "high"
    # a column constant at fit time that changes is an unseen event; missing there is just masked
    assert s[3] > s[0] + 5 and why.iloc[3].idxmax() == "const"
    assert abs(s[4] - s[0]) < 0.5
    with pytest.raises(ValueError, match="lacks column"):
        det.decision_function(test.rename(columns={"v": "w"}))


def test_save_load_roundtrip_and_no_silent_overwrite(table, tmp_path):
    det, x_in, x_out = table
    det.save(tmp_path / "det")
    again = AnomalyDetector.load(tmp_path / "det")
    X = np.vstack([x_in[:10], x_out[:3]])
    np.testing.assert_array_equal(again.decision_function(X), det.decision_function(X))
    assert again.threshold_ == det.threshold_
    with pytest.raises(ValueError, match="already holds"):
        det.save(tmp_path / "det")
    with pytest.raises(ValueError, match="columns"):
        det.decision_function(x_in[:, :5])


# -- time series ---------------------------------------------------------------------------------
def seasonal(T=700, seed=0):
    rng = np.random.default_rng(seed)
    t = np.arange(T)
    v = np.sin(2 * np.pi * t / 40) + 0.05 * rng.standard_normal(T)
    return pd.DataFrame({"timestamp": pd.date_range("2024-01-01", periods=T, freq="5min"), "cpu": v})


@pytest.fixture(scope="module")
def series():
    df = seasonal()
    labels = np.zeros(len(df), int)
    labels[100:103] = 1
    df.loc[100:102, "cpu"] += 5  # a known anomaly in the training part, masked by its labels
    det = TimeSeriesDetector(window=20, **FAST).fit(df.iloc[:450], labels=labels[:450])
    return det, df


def test_injected_spike_is_flagged_at_its_timestamp(series):
    det, df = series
    new = df.copy()
    new.loc[600, "cpu"] += 3
    s = det.decision_function(new)
    assert s.shape == (len(new),) and np.isfinite(s).all()
    assert int(np.argmax(s[450:])) + 450 == 600
    flags = det.predict(new)
    assert flags[600] == 1 and flags[450:].sum() <= 5
    assert det.explain(new).index[600] == new["timestamp"][600]


def test_series_bad_input_gives_one_clear_sentence(series):
    det, df = series
    with pytest.raises(ValueError, match="duplicated timestamps"):
        det.decision_function(pd.concat([df.iloc[:50], df.iloc[49:60]]))
    with pytest.raises(ValueError, match="not in increasing order"):
        det.decision_function(df.iloc[::-1])
    with pytest.raises(ValueError, match="fewer than the window"):
        det.decision_function(df.iloc[:10])
    with pytest.raises(ValueError, match="metric columns"):
        det.decision_function(df.rename(columns={"cpu": "mem"}))


def test_metrics_and_point_adjustment():
    labels = np.array([0, 0, 1, 1, 1, 0, 0, 1, 0])
    scores = np.array([0.1, 0.2, 0.3, 0.9, 0.1, 0.0, 0.2, 0.05, 0.1])
    np.testing.assert_array_equal(point_adjust(labels, scores), [0.1, 0.2, 0.9, 0.9, 0.9, 0.0, 0.2, 0.05, 0.1])
    f1, thr = best_f1(labels, scores)
    assert f1 == pytest.approx(2 / 3) and thr in (0.05, 0.3)  # tie: 2 of 4 found, or all 4 with 4 false
    m = detection_metrics(labels, scores)
    assert m["best_f1_pa"] == pytest.approx(2 * 1 * 0.75 / 1.75)  # the segment of 3 counts as found
    # ROC AUC by hand: P(score of an anomaly > score of a normal point), ties counting 1/2, over the
    # 4 x 5 pairs: anomalies 0.3, 0.9, 0.1, 0.05 against normals 0.1, 0.2, 0.0, 0.2, 0.1
    assert m["roc_auc"] == pytest.approx((5 + 5 + (1 + 0.5 + 0.5) + 1) / 20)
    with pytest.raises(ValueError, match="one class"):
        detection_metrics(np.zeros(4), np.arange(4.0))


# -- CLI ------------------------------------------------------------------------------------------
def cli(argv):
    parser = argparse.ArgumentParser()
    add_commands(parser.add_subparsers(dest="command", required=True))
    args = parser.parse_args(argv)
    return args.func(args)


def test_cli_table_fit_and_score(tmp_path):
    x_in, x_out = planted(n_in=300)
    cols = [f"f{i}" for i in range(6)]
    pd.DataFrame(x_in, columns=cols).assign(id=range(300)).to_csv(tmp_path / "train.csv", index=False)
    new = pd.DataFrame(np.vstack([x_in[:20], x_out[:5]]), columns=cols).assign(id=0)
    new.to_csv(tmp_path / "new.csv", index=False)
    assert cli(["detect", "fit", str(tmp_path / "train.csv"), "--out", str(tmp_path / "m"), "--ignore", "id",
                "--latent-dim", "2", "--epochs", "30"]) == 0
    assert cli(["detect", "score", str(tmp_path / "m"), str(tmp_path / "new.csv"),
                "--out", str(tmp_path / "s.csv")]) == 0
    out = pd.read_csv(tmp_path / "s.csv")
    assert list(out.columns) == ["row", "score", "flag", "top_feature"] and len(out) == 25
    assert out["flag"].iloc[20:].sum() >= 4 and out["flag"].iloc[:20].sum() <= 4
    assert (tmp_path / "s.png").stat().st_size > 1000
    with pytest.raises(ValueError, match="already exists"):
        cli(["detect", "score", str(tmp_path / "m"), str(tmp_path / "new.csv"), "--out", str(tmp_path / "s.csv")])
    new.drop(columns=["f5"]).to_csv(tmp_path / "bad.csv", index=False)
    with pytest.raises(ValueError, match="lacks column"):
        cli(["detect", "score", str(tmp_path / "m"), str(tmp_path / "bad.csv"), "--out", str(tmp_path / "b.csv")])
    with pytest.raises(FileNotFoundError, match="No saved model"):
        cli(["detect", "score", str(tmp_path / "nope"), str(tmp_path / "new.csv"), "--out", str(tmp_path / "c.csv")])


def test_cli_time_series_fit_and_score(tmp_path):
    df = seasonal(T=400)
    df.iloc[:300].to_csv(tmp_path / "train.csv", index=False)
    new = df.copy()
    new.loc[350, "cpu"] += 4
    new.to_csv(tmp_path / "new.csv", index=False)
    assert cli(["detect", "fit", str(tmp_path / "train.csv"), "--out", str(tmp_path / "m"), "--window", "16",
                "--latent-dim", "2", "--epochs", "30"]) == 0
    assert cli(["detect", "score", str(tmp_path / "m"), str(tmp_path / "new.csv"),
                "--out", str(tmp_path / "s.csv")]) == 0
    out = pd.read_csv(tmp_path / "s.csv")
    assert list(out.columns) == ["timestamp", "score", "flag"] and len(out) == 400
    assert out["score"].iloc[300:].idxmax() == 350 and out["flag"][350] == 1
    assert (tmp_path / "s.png").stat().st_size > 1000
    new.iloc[:8].to_csv(tmp_path / "short.csv", index=False)
    with pytest.raises(ValueError, match="fewer than the window"):
        cli(["detect", "score", str(tmp_path / "m"), str(tmp_path / "short.csv"), "--out", str(tmp_path / "x.csv")])


def test_through_vaekit_cli_main(tmp_path, capsys):
    from vaekit.cli import main

    seasonal(T=100).to_csv(tmp_path / "s.csv", index=False)
    code = main(["detect", "score", str(tmp_path / "missing_model"), str(tmp_path / "s.csv"),
                 "--out", str(tmp_path / "o.csv")])
    assert code == 2 and "error:" in capsys.readouterr().err


def test_trimmed_objective_leaves_the_worst_rows_out_of_the_loss():
    import torch

    from vaekit.apps.anomaly.scores import trimmed_elbo
    from vaekit.config import ModelConfig, build_model

    torch.manual_seed(0)
    columns = [{"kind": "numeric"}] * 4
    model = build_model(ModelConfig(input_shape=(4,), latent_dim=2, hidden=(8,), likelihood="table",
                                    likelihood_options={"columns": columns}))
    x = torch.randn(10, 4)
    x[0] = 50.0  # one far outlier dominates the plain loss
    torch.manual_seed(1)
    full = trimmed_elbo(model, x)
    torch.manual_seed(1)
    trimmed = trimmed_elbo(model, x, trim=0.1)
    assert torch.allclose(full.elbo, trimmed.elbo)  # every row's bound is still reported
    per_row = -full.elbo
    assert torch.isclose(trimmed.loss, per_row.sort().values[:9].mean(), rtol=1e-5)
    assert trimmed.loss < full.loss
    with pytest.raises(ValueError, match="trim must be"):
        AnomalyDetector(trim=1.5, **FAST).fit(np.random.default_rng(0).standard_normal((50, 3)))


def test_series_plot_shades_labelled_windows(tmp_path):
    from vaekit.apps.anomaly.plot import label_spans, plot_series

    labels = np.array([0, 1, 1, 0, 0, 1, 0, 1])
    assert label_spans(labels) == [(1, 2), (5, 5), (7, 7)]
    assert label_spans(np.zeros(4)) == []
    frame = seasonal(T=120)
    known = np.zeros(120, int)
    known[50:60] = 1
    path = plot_series(frame["timestamp"], frame[["cpu"]], np.abs(frame["cpu"].to_numpy()), 0.9,
                       tmp_path / "s.png", labels=known)
    assert path.exists() and path.stat().st_size > 1000


def test_layouts_saved_before_constant_columns_were_modelled_still_load():
    from vaekit.apps.anomaly.detector import table_from_layout
    from vaekit.data.tabular import encode_table, feature_names, width

    old = table_from_layout({"columns": ["a", "c"], "numeric": ["a"], "mean": [0.0], "scale": [1.0],
                             "constant": ["c"], "categorical": {}, "from_frame": False})
    assert feature_names(old) == ["a"] and width(old) == 1
    assert encode_table(np.array([[1.0, 5.0]]), old).shape == (1, 1)
