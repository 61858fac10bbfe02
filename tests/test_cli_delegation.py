"""`vaekit train --semi-supervised` and `vaekit sample --class` run the semi-supervised app's commands."""

import numpy as np
from sklearn.datasets import load_digits

from vaekit.cli import main


def test_train_semi_supervised_then_sample_a_class(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    X, y = load_digits(return_X_y=True)
    y = y[:200].copy()
    y[40:] = -1
    np.save("x.npy", (X[:200] > 7).astype(np.float32))
    np.save("y.npy", y)
    assert main(["train", "x.npy", "--labels", "y.npy", "--semi-supervised", "--out", "run"]) == 0
    assert main(["sample", "run", "--class", "3", "-n", "4", "--out", "threes.npy"]) == 0
    assert np.load("threes.npy").shape == (4, 64)
    capsys.readouterr()
    assert main(["sample", "run", "--class", "12", "-n", "4", "--out", "x12.npy"]) == 2
    assert "not a class of this model" in capsys.readouterr().err
    assert main(["train", "x.npy", "--labels", "y.npy", "--out", "run2"]) == 2
    assert "--semi-supervised" in capsys.readouterr().err
