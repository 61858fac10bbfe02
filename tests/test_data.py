"""Loaders: every format on tiny files made here, splits, scaling, tabular round trips, errors."""

from __future__ import annotations

import gzip
import math

import numpy as np
import pandas as pd
import pytest
import torch

from vaekit.data import DataConfig, load
from vaekit.data.outputs import read_latents, to_user, write_array
from vaekit.data.readers import read_idx
from vaekit.data.tabular import decode_table, encode_table, fit_table, log_jacobian, value_names


def idx_bytes(a: np.ndarray) -> bytes:
    """The IDX format written by hand: 0, 0, type 0x08 (uint8), ndim, big-endian sizes, data."""
    header = bytes([0, 0, 0x08, a.ndim]) + b"".join(int(s).to_bytes(4, "big") for s in a.shape)
    return header + a.astype(np.uint8).tobytes()


def test_digits_builtin_is_images_in_unit_interval_with_a_seeded_split():
    d = load("digits")
    assert d.meta.kind == "image" and tuple(d.x_train.shape[1:]) == (1, 8, 8)
    assert len(d.x_train) + len(d.x_val) + len(d.x_test) == 1797
    assert len(d.x_test) == 180 and float(d.x_train.min()) == 0.0 and float(d.x_train.max()) == 1.0
    assert d.meta.class_names == [str(i) for i in range(10)] and not d.meta.binary
    again = load("digits")
    assert torch.equal(d.x_test, again.x_test)  # same seed, same split
    other = load("digits", DataConfig(seed=1))
    assert not torch.equal(d.x_test, other.x_test)
    x_all, y_all = d.split("all")
    assert len(x_all) == len(y_all) == 1797


@pytest.mark.parametrize("gz", [False, True])
def test_idx_images_and_labels(tmp_path, gz):
    rng = np.random.default_rng(0)
    images, labels = rng.integers(0, 256, (20, 6, 5)), rng.integers(0, 3, 20)
    name = "imgs-idx3-ubyte" + (".gz" if gz else "")
    write = (lambda p, b: p.write_bytes(gzip.compress(b))) if gz else (lambda p, b: p.write_bytes(b))
    write(tmp_path / name, idx_bytes(images))
    write(tmp_path / "labels.idx", idx_bytes(labels))
    assert np.array_equal(read_idx(tmp_path / name), images)
    d = load(tmp_path / name, DataConfig(label="labels.idx", val_fraction=0.0, test_fraction=0.0))
    assert tuple(d.x_train.shape) == (20, 1, 6, 5) and d.y_train.tolist() == labels.tolist()
    assert np.allclose(d.x_train.numpy()[:, 0], images / 255)


def test_idx_bad_header_and_truncation(tmp_path):
    (tmp_path / "bad.idx").write_bytes(b"\x01\x02\x03\x04abcd")
    with pytest.raises(ValueError, match="not an IDX file"):
        load(tmp_path / "bad.idx")
    (tmp_path / "short.idx").write_bytes(idx_bytes(np.zeros((4, 3, 3)))[:-5])
    with pytest.raises(ValueError, match="truncated"):
        load(tmp_path / "short.idx")


def test_npz_key_default_and_labels(tmp_path):
    x, other = np.random.default_rng(0).random((30, 4)).astype(np.float32), np.ones((30, 2))
    np.savez(tmp_path / "d.npz", other=other, X=x, y=np.arange(30) % 2)
    d = load(tmp_path / "d.npz", DataConfig(val_fraction=0, test_fraction=0))
    assert d.meta.kind == "array" and torch.allclose(d.x_train, torch.from_numpy(x))  # [0, 1]: kept as is
    assert d.y_train.tolist() == (np.arange(30) % 2).tolist()
    d = load(tmp_path / "d.npz", DataConfig(key="other", val_fraction=0, test_fraction=0))
    assert d.meta.binary and tuple(d.x_train.shape) == (30, 2)
    with pytest.raises(ValueError, match="no array named 'nope'"):
        load(tmp_path / "d.npz", DataConfig(key="nope"))


def test_ready_made_validation_and_test_sets_from_npz_keys(tmp_path):
    """data.val_key / data.test_key: the published split of a file (e.g. binarized MNIST's train / valid /
    test) is used as it is; a split not given still comes from its fraction."""
    rng = np.random.default_rng(0)
    tr, va, te = ((rng.random((n, 6)) > 0.5).astype(np.float32) for n in (40, 7, 9))
    np.savez(tmp_path / "b.npz", train=tr, valid=va, test=te, wide=np.ones((5, 3)))
    d = load(tmp_path / "b.npz", DataConfig(key="train", val_key="valid", test_key="test"))
    assert torch.equal(d.x_train, torch.from_numpy(tr)) and torch.equal(d.x_val, torch.from_numpy(va))
    assert torch.equal(d.x_test, torch.from_numpy(te)) and d.meta.binary
    d = load(tmp_path / "b.npz", DataConfig(key="train", test_key="test", val_fraction=0.25))
    assert (len(d.x_train), len(d.x_val)) == (30, 10) and torch.equal(d.x_test, torch.from_numpy(te))
    with pytest.raises(ValueError, match="other example shapes"):
        load(tmp_path / "b.npz", DataConfig(key="train", test_key="wide"))
    with pytest.raises(ValueError, match=r"data\.val_key needs a data file"):
        load("digits", DataConfig(val_key="valid"))
    with pytest.raises(ValueError, match=r"data\.test_key must be text"):
        load(tmp_path / "b.npz", DataConfig(test_key=3))


def test_npy_uint8_flat_images_are_scaled_and_drawable(tmp_path):
    np.save(tmp_path / "m.npy", np.full((10, 16), 255, np.uint8))
    d = load(tmp_path / "m.npy", DataConfig(val_fraction=0, test_fraction=0))
    assert float(d.x_train.max()) == 1.0 and d.meta.image_shape == (1, 4, 4) and d.meta.binary


def test_as_images_reads_flat_square_rows_as_images_for_a_conv_network(tmp_path):
    rng = np.random.default_rng(0)
    tr, te = ((rng.random((n, 16)) > 0.5).astype(np.float32) for n in (20, 5))
    np.savez(tmp_path / "f.npz", train=tr, test=te, odd=np.ones((5, 10)))
    d = load(tmp_path / "f.npz", DataConfig(key="train", test_key="test", val_fraction=0.25, as_images=True))
    assert d.x_train.shape == (15, 1, 4, 4) and d.meta.kind == "image" and d.meta.shape == (1, 4, 4)
    assert torch.equal(d.x_test.reshape(5, 16), torch.from_numpy(te))  # the same pixels, row by row
    assert load(tmp_path / "f.npz", DataConfig(key="train")).x_train.ndim == 2  # off by default
    with pytest.raises(ValueError, match=r"data\.as_images reads flat rows of a square width.*10 values"):
        load(tmp_path / "f.npz", DataConfig(key="odd", as_images=True))


def test_binarize_threshold_and_seeded_sample():
    t = load("digits", DataConfig(binarize="threshold"))
    s1, s2 = (load("digits", DataConfig(binarize="sample")) for _ in range(2))
    assert t.meta.binary and s1.meta.binary and torch.equal(s1.x_train, s2.x_train)
    with pytest.raises(ValueError, match="binarize"):
        load("digits", DataConfig(binarize="maybe"))


def test_csv_standardised_one_hot_and_back(tmp_path):
    rng = np.random.default_rng(0)
    df = pd.DataFrame({"height": rng.normal(170, 10, 40), "colour": rng.choice(["red", "blue"], 40),
                       "species": rng.choice(["a", "b", "c"], 40)})
    df.to_csv(tmp_path / "t.csv", index=False)
    d = load(tmp_path / "t.csv", DataConfig(label="species"))
    assert d.meta.kind == "table" and d.meta.feature_names == ["height", "colour"]
    assert value_names(d.meta.table) == ["height", "colour=blue", "colour=red", "<unseen>"]
    assert d.meta.class_names == ["a", "b", "c"] and len(d.y_train) == len(d.x_train)
    col = d.meta.table["columns"][0]
    assert abs(float(d.x_train[:, 0].mean())) < 1e-5  # standardised on the training rows
    assert d.meta.log_jacobian == pytest.approx(-math.log(col["std"]))
    x_all, _ = d.split("all")
    back = to_user(x_all.numpy(), d.meta)
    assert set(back["colour"]) == {"red", "blue"}
    assert np.allclose(np.sort(back["height"]), np.sort(df["height"]), atol=1e-3)


def test_table_spec_round_trip_and_errors():
    df = pd.DataFrame({"a": [1.0, 2.0, 3.0], "c": ["x", "y", "x"]})
    spec = fit_table(df)
    x = encode_table(df, spec)
    assert x.shape == (3, 4)  # a, then c's block: x, y and a slot for categories not seen in training
    out = decode_table(x, spec)
    assert np.allclose(out["a"], df["a"]) and list(out["c"]) == ["x", "y", "x"]
    assert out["a"].dtype == df["a"].dtype
    assert log_jacobian(spec) == pytest.approx(-math.log(df["a"].std(ddof=0)))
    unseen = encode_table(pd.DataFrame({"a": [1.0, np.nan], "c": ["z", None]}), spec)
    np.testing.assert_array_equal(unseen[0, 1:], [0, 0, 1])  # the unseen slot
    assert np.isnan(unseen[1]).all()  # missing cells are NaN, masked by the table likelihood
    assert decode_table(unseen, spec)["c"].isna().all()
    ints = fit_table(pd.DataFrame({"n": [1, 2, 5, 9]}))
    back = decode_table(np.array([[-10.0], [0.23], [10.0]], np.float32), ints)["n"]
    assert back.dtype == np.int64 and list(back) == [1, 5, 9]  # integers, within the observed range
    with pytest.raises(ValueError, match="missing value"):
        encode_table(pd.DataFrame({"a": [1.0, None], "c": ["x", "y"]}), spec, allow_missing=False)


def test_parquet(tmp_path):
    pd.DataFrame({"u": np.arange(12.0), "v": np.arange(12.0) ** 2}).to_parquet(tmp_path / "p.parquet")
    d = load(tmp_path / "p.parquet", DataConfig(val_fraction=0.25, test_fraction=0.25))
    assert d.meta.kind == "table" and (len(d.x_train), len(d.x_val), len(d.x_test)) == (6, 3, 3)


def test_mat_variable(tmp_path):
    from scipy.io import savemat

    savemat(tmp_path / "m.mat", {"X": np.random.default_rng(0).random((15, 3)), "Z": np.zeros((15, 2))})
    assert tuple(load(tmp_path / "m.mat").x_train.shape[1:]) == (3,)
    assert tuple(load(tmp_path / "m.mat", DataConfig(key="Z")).x_train.shape[1:]) == (2,)


def test_image_folder_labels_resize_grayscale(tmp_path):
    from PIL import Image

    for label, value in (("cats", 30), ("dogs", 220)):
        (tmp_path / "imgs" / label).mkdir(parents=True)
        for i in range(3):
            Image.new("RGB", (10, 12), (value, value, 0)).save(tmp_path / "imgs" / label / f"{i}.png")
    d = load(tmp_path / "imgs", DataConfig(val_fraction=0, test_fraction=0))
    assert tuple(d.x_train.shape) == (6, 3, 12, 10) and d.meta.class_names == ["cats", "dogs"]
    assert sorted(d.y_train.tolist()) == [0, 0, 0, 1, 1, 1]
    d = load(tmp_path / "imgs", DataConfig(image_size=(4, 5), grayscale=True, val_fraction=0, test_fraction=0))
    assert tuple(d.x_train.shape) == (6, 1, 4, 5)
    Image.new("RGB", (7, 7)).save(tmp_path / "imgs" / "cats" / "odd.png")
    with pytest.raises(ValueError, match="image_size"):
        load(tmp_path / "imgs")


@pytest.mark.parametrize("make, match", [
    (lambda p: None, "does not exist"),
    (lambda p: p.write_text("hello"), "Unknown data format"),
    (lambda p: np.save(p, np.array([1.0, np.nan, 0.5] * 4).reshape(4, 3)), "NaN"),
    (lambda p: np.save(p, np.arange(5.0)), "shape"),
])
def test_errors_name_the_problem(tmp_path, make, match):
    path = tmp_path / ("data.txt" if match == "Unknown data format" else "data.npy")
    make(path)
    with pytest.raises((ValueError, FileNotFoundError), match=match):
        load(path)


def test_write_and_read_latents(tmp_path):
    z = np.random.default_rng(0).normal(size=(5, 3)).astype(np.float32)
    for suffix in (".npy", ".csv", ".parquet"):
        write_array(tmp_path / f"z{suffix}", z, names=["z0", "z1", "z2"])
        assert np.allclose(read_latents(tmp_path / f"z{suffix}", 3), z, atol=1e-6)
    with pytest.raises(ValueError, match=r"\(N, 4\)"):
        read_latents(tmp_path / "z.npy", 4)
    with pytest.raises(ValueError, match="use a file ending"):
        write_array(tmp_path / "z.txt", z)


def test_an_empty_or_damaged_file_is_one_clear_error(tmp_path):
    from vaekit.data.readers import read_source

    empty = tmp_path / "empty.npy"
    empty.write_bytes(b"")
    with pytest.raises(ValueError, match=r"Cannot read 'empty\.npy' as npy"):
        read_source(empty)


def test_builtin_digits_are_scikit_learns_digits_read_without_importing_it():
    import subprocess
    import sys

    import numpy as np
    from sklearn.datasets import load_digits

    from vaekit.data.builtins import digits

    raw, bunch = digits(), load_digits()
    assert np.array_equal(raw.x, (bunch.images / 16.0).astype("float32")[:, None]) and np.array_equal(raw.y, bunch.target)
    code = "import sys; from vaekit.data.builtins import digits; digits(); print('sklearn' in sys.modules)"
    assert subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout.strip() == "False"
