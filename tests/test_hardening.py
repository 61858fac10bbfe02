"""Every case the hardening issue found, as a test: commands that ended in a traceback, data that was
silently ruined, values that were accepted without a word, and the command line's finish."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from sklearn.exceptions import NotFittedError

import vaekit
from vaekit.cli import main

QUICK = ["--set", "epochs=1", "--set", "hidden=[8]", "--set", "progress=false", "--k", "2"]


def error_of(argv, capsys) -> str:
    code = main([str(a) for a in argv])
    err = capsys.readouterr().err
    assert code == 2, (argv, err)
    assert err.startswith("error: ") and len(err.strip().splitlines()) == 1 and "Traceback" not in err, err
    return err


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory):
    out = tmp_path_factory.mktemp("hard") / "run"
    assert main(["train", "digits", "--out", str(out), *QUICK]) == 0
    return out


@pytest.mark.parametrize("sets,words", [
    (["latent_dim=abc"], "model.latent_dim must be an integer"),
    (["latent_dim=0"], "model.latent_dim must be at least 1"),
    (["latent_dim=-2"], "model.latent_dim must be at least 1"),
    (["batch_size=0"], "train.batch_size must be at least 1"),
    (["epochs=0"], "train.epochs must be at least 1"),
    (["epochs=-5"], "train.epochs must be at least 1"),
    (["epochs=1.5"], "train.epochs must be an integer"),
    (["data.standardize=maybe"], "data.standardize must be true or false"),
    (["model.family=nope"], "model.family must be one of"),
])
def test_bad_settings_are_refused_before_any_work(tmp_path, capsys, sets, words):
    argv = ["train", "digits", "--out", tmp_path / "r"] + [a for s in sets for a in ("--set", s)]
    assert words in error_of(argv, capsys)
    assert not (tmp_path / "r").exists()  # a failed start leaves nothing behind


@pytest.mark.parametrize("k", ["0", "-3"])
def test_k_below_one_is_refused_before_training(tmp_path, capsys, k):
    assert "--k must be a positive number" in error_of(["train", "digits", "--out", tmp_path / "r", "--k", k], capsys)
    assert not (tmp_path / "r").exists()


def test_values_with_a_natural_meaning_get_it(tmp_path, capsys):
    # hidden=[] is a linear network, model.hidden=64 one layer of 64, --threads -1 every core
    assert main(["train", "digits", "--out", str(tmp_path / "lin"), *QUICK, "--set", "hidden=[]", "--threads", "-1"]) == 0
    assert json.loads((tmp_path / "lin" / "config.json").read_text())["model"]["hidden"] == []
    assert "(linear: hidden=[])" in capsys.readouterr().out
    assert main(["train", "digits", "--out", str(tmp_path / "one"), *QUICK, "--set", "model.hidden=64"]) == 0
    assert json.loads((tmp_path / "one" / "config.json").read_text())["model"]["hidden"] == [64]


def test_run_commands_with_zero_or_negative_counts(run_dir, tmp_path, capsys):
    assert "-n must be 0 or more" in error_of(["sample", run_dir, "-n", "-1", "--out", tmp_path / "s.png"], capsys)
    assert main(["sample", str(run_dir), "-n", "0", "--out", str(tmp_path / "s0.png")]) == 0
    assert "nothing to do" in capsys.readouterr().out and not (tmp_path / "s0.png").exists()  # no empty PNG
    assert "-n must be 0 (every example)" in error_of(["reconstruct", run_dir, "-n", "-1", "--out", tmp_path / "r.png"],
                                                      capsys)
    for cmd in (["interpolate", str(run_dir), "digits", "0", "1"], ["traverse", str(run_dir)]):
        assert main([*cmd, "--steps", "0", "--out", str(tmp_path / f"{cmd[0]}.png")]) == 0
        assert "end points" in capsys.readouterr().out and (tmp_path / f"{cmd[0]}.png").exists()
    assert "--threads must be 1 or more" in error_of(["info", run_dir, "--threads", "-2"], capsys)


def test_application_commands_refuse_bad_values(tmp_path, capsys):
    rng = np.random.default_rng(0)
    pd.DataFrame(rng.normal(size=(60, 3)), columns=list("abc")).to_csv(tmp_path / "t.csv", index=False)
    X = (rng.random((60, 6)) > 0.5).astype(np.float32)
    np.save(tmp_path / "x.npy", X)
    np.save(tmp_path / "y.npy", np.r_[[0, 1, 0, 1], np.full(56, -1)])
    fit = ["detect", "fit", tmp_path / "t.csv", "--out", tmp_path / "d"]
    assert "latent_dim must be at least 1" in error_of([*fit, "--latent-dim", "0"], capsys)
    assert "epochs must be at least 1" in error_of([*fit, "--epochs", "0"], capsys)
    assert "contamination must be in (0, 0.5]" in error_of([*fit, "--contamination", "0"], capsys)
    assert "--timestamp 'nosuch' is not a column" in error_of([*fit, "--timestamp", "nosuch"], capsys)
    ssl = ["ssl-train", tmp_path / "x.npy", "--labels", tmp_path / "y.npy", "--out", tmp_path / "s"]
    assert "batch_size must be at least 1" in error_of([*ssl, "--batch-size", "0"], capsys)
    assert "epochs must be at least 1" in error_of([*ssl, "--epochs", "0"], capsys)
    assert not (tmp_path / "d").exists() and not (tmp_path / "s").exists()


def test_python_api_errors_are_clear():
    X = (np.random.default_rng(0).random((40, 6)) > 0.5).astype(np.float32)
    with pytest.raises(ValueError, match="latent_dim must be at least 1"):
        vaekit.VAE(latent_dim=0).fit(X)
    with pytest.raises(ValueError, match="k must be at least 1"):
        vaekit.AnomalyDetector(k=0).fit(X)
    with pytest.raises(NotFittedError, match="call fit"):
        vaekit.VAE().score(X)
    vae = vaekit.VAE(latent_dim=2, hidden=(8,), epochs=1).fit(X)
    x_int = X.astype(np.uint8)
    data = vaekit.compress(vae, x_int)  # the estimator itself, its torch model or a directory alike
    np.testing.assert_array_equal(vaekit.decompress(vae, data), x_int)
    np.testing.assert_array_equal(vaekit.decompress(vae.model_, data), x_int)


def test_broken_pipe_exits_quietly(run_dir):
    p = subprocess.run(f"{sys.executable} -m vaekit info {run_dir} | head -1", shell=True, capture_output=True,
                       text=True, check=False)
    assert p.stdout.startswith("run ") and "Traceback" not in p.stderr and "BrokenPipe" not in p.stderr


# -- data typing ----------------------------------------------------------------------------------
def test_binary_uint8_stays_binary_and_levels_are_scaled_by_their_range(tmp_path, capsys):
    rng = np.random.default_rng(0)
    np.save(tmp_path / "b.npy", (rng.random((120, 16)) > 0.5).astype(np.uint8))  # 0/1 uint8: not divided by 255
    assert main(["train", str(tmp_path / "b.npy"), "--out", str(tmp_path / "rb"), *QUICK]) == 0
    out = capsys.readouterr().out
    assert "every value is 0 or 1" in out and "bernoulli likelihood" in out
    np.save(tmp_path / "l.npy", rng.integers(0, 17, (120, 16)))  # 0..16 levels: scaled by 16, not 255
    assert main(["train", str(tmp_path / "l.npy"), "--out", str(tmp_path / "rl"), *QUICK]) == 0
    assert "integer levels 0..16: divided by 16" in capsys.readouterr().out
    np.save(tmp_path / "p.npy", rng.integers(0, 256, (120, 16)))
    assert main(["train", str(tmp_path / "p.npy"), "--out", str(tmp_path / "rp"), *QUICK]) == 0
    assert "look like 8-bit pixels: divided by 255" in capsys.readouterr().out


def test_labels_of_shape_1_by_n_and_text_in_a_numeric_column(tmp_path, capsys):
    from vaekit.data import DataConfig, load

    rng = np.random.default_rng(0)
    np.save(tmp_path / "x.npy", rng.random((30, 4)).astype(np.float32))
    np.save(tmp_path / "y.npy", rng.integers(0, 3, (1, 30)))
    d = load(tmp_path / "x.npy", DataConfig(label=str(tmp_path / "y.npy")))
    assert len(d.y_train) == len(d.x_train)
    (tmp_path / "t.csv").write_text("age,income\n30,100\n41,x12\n50,300\n")
    from vaekit.data.tabular import fit_table

    frame = pd.read_csv(tmp_path / "t.csv")
    frame["age"] = frame["age"].astype(object)
    frame.loc[1, "age"] = "4l"  # a typo in a numeric column
    spec = fit_table(pd.DataFrame({"age": [30.0, 41.0, 50.0]}))
    with pytest.raises(ValueError, match=r"row 1 holds the text '4l'"):
        from vaekit.data.tabular import encode_table

        encode_table(frame[["age"]], spec)


def test_run_stores_an_absolute_data_path_and_predict_drops_the_label_column(tmp_path, monkeypatch, capsys):
    rng = np.random.default_rng(0)
    table = pd.DataFrame(rng.random((60, 4)), columns=list("abcd"))
    table["digit"] = np.r_[[0, 1, 0, 1, 0, 1], np.full(54, -1)]
    monkeypatch.chdir(tmp_path)
    table.to_csv("t.csv", index=False)
    assert main(["train", "t.csv", "--out", "run", *QUICK]) == 0
    source = json.loads(Path("run/config.json").read_text())  # evaluate works from another folder
    assert Path((tmp_path / "run" / "config.toml").read_text().split('source = "')[1].split('"')[0]).is_absolute()
    assert source["format_version"] == 2
    assert main(["ssl-train", "t.csv", "--labels", "digit", "--out", "ssl", "--epochs", "1", "--hidden", "8",
                 "--latent-dim", "2", "--quiet"]) == 0
    assert main(["predict", "ssl", "t.csv", "--out", "pred.csv"]) == 0  # the training file, label column and all
    assert len(pd.read_csv("pred.csv")) == 60


def test_progress_is_one_line_per_epoch_off_a_terminal(tmp_path):
    p = subprocess.run([sys.executable, "-m", "vaekit", "train", "digits", "--out", str(tmp_path / "r"),
                        "--set", "epochs=3", "--set", "hidden=[8]", "--k", "2"], capture_output=True, text=True,
                       check=False)
    lines = [line for line in p.stderr.splitlines() if line.startswith("epoch ")]
    assert p.returncode == 0 and len(lines) == 3 and "validation ELBO" in lines[0] and "\r" not in p.stderr


def test_version():
    p = subprocess.run([sys.executable, "-m", "vaekit", "--version"], capture_output=True, text=True, check=False)
    assert p.returncode == 0 and p.stdout.startswith("vaekit ")


def test_an_id_like_column_is_warned_about(tmp_path, capsys):
    rng = np.random.default_rng(0)
    frame = pd.DataFrame({"user": [f"u{i:03d}" for i in range(60)], "a": rng.normal(size=60), "b": rng.normal(size=60)})
    with pytest.warns(UserWarning, match="'user' .* looks like an ID"):
        vaekit.AnomalyDetector(steps=5, hidden=(8,), latent_dim=2).fit(frame)
    frame.to_csv(tmp_path / "t.csv", index=False)
    assert main(["detect", "fit", str(tmp_path / "t.csv"), "--out", str(tmp_path / "d"), "--epochs", "1",
                 "--quiet"]) == 0
    assert "warning: Column 'user'" in capsys.readouterr().err


@pytest.mark.parametrize("command", [["train"], ["ssl-train", "--labels", "label"]])
def test_an_empty_csv_is_named_in_one_sentence(tmp_path, capsys, command):
    (tmp_path / "empty.csv").write_text("")
    argv = [command[0], str(tmp_path / "empty.csv"), *command[1:], "--out", str(tmp_path / "out")]
    assert main(argv) == 2
    err = capsys.readouterr().err.strip()
    assert "'empty.csv' is empty" in err and len(err.splitlines()) == 1 and not (tmp_path / "out").exists()
