"""Bits-back compression (vaekit.apps.compression): exact round trips, rate close to -ELBO, clear errors,
and the compress/decompress commands."""

from __future__ import annotations

import argparse
import math
import struct
import zlib

import numpy as np
import pytest
import torch

from vaekit import ModelConfig, TrainConfig, build_model, dataset_elbo, fit
from vaekit.apps.compression.cli import add_commands
from vaekit.apps.compression.codec import compress, decompress, read_header
from vaekit.io import save_model


def small_model(likelihood="bernoulli", shape=(12,), latent=3, seed=0, **kw):
    torch.manual_seed(seed)
    cfg = ModelConfig(input_shape=shape, latent_dim=latent, hidden=(16, 8), likelihood=likelihood, **kw)
    return build_model(cfg), cfg


def planted_binary(n: int, seed: int) -> torch.Tensor:
    """Binary images made of 4 prototypes of 48 pixels with 3% flipped pixels: a VAE codes them well."""
    g = torch.Generator().manual_seed(seed)
    protos = torch.rand(4, 48, generator=torch.Generator().manual_seed(123)) < 0.5
    x = protos[torch.randint(0, 4, (n,), generator=g)]
    flip = torch.rand(n, 48, generator=g) < 0.03
    return (x ^ flip).float()


@pytest.fixture(scope="module", autouse=True)
def one_thread():
    """Tiny networks on shared cores: one thread avoids OpenMP spin-waiting (100x slower under load)."""
    n = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(n)


@pytest.fixture(scope="module")
def trained():
    torch.manual_seed(0)
    cfg = ModelConfig(input_shape=(48,), latent_dim=4, hidden=(64, 32))
    model = build_model(cfg)
    fit(model, planted_binary(1500, 0), config=TrainConfig(epochs=25, batch_size=100, lr=3e-3, progress=False,
                                                            device="cpu"))
    return model.eval(), cfg


# --- round trips -----------------------------------------------------------------------------------

CASES = [  # (likelihood, model input shape, data shape per example, dtype, container)
    ("bernoulli", (12,), (12,), np.uint8, "numpy"),
    ("bernoulli", (12,), (3, 4), np.bool_, "numpy"),
    ("bernoulli", (2, 3, 2), (2, 3, 2), np.float32, "torch"),
    ("bernoulli", (12,), (12,), np.int64, "torch"),
    ("categorical", (10,), (10,), np.uint8, "numpy"),
    ("categorical", (10,), (2, 5), np.float64, "torch"),
    ("categorical", (1, 2, 5), (1, 2, 5), np.int16, "numpy"),
]


@pytest.mark.parametrize("seed", range(3))
@pytest.mark.parametrize("likelihood,shape,data_shape,dtype,container", CASES)
def test_round_trip_is_exact_for_random_inputs(likelihood, shape, data_shape, dtype, container, seed):
    rng = np.random.default_rng(seed)
    kw = {"n_categories": 7} if likelihood == "categorical" else {}
    model, _ = small_model(likelihood, shape, latent=int(rng.integers(1, 5)), seed=seed, **kw)
    high = 2 if likelihood == "bernoulli" else 7
    n = int(rng.integers(0, 12))
    x = rng.integers(0, high, (n, *data_shape)).astype(dtype)
    X = torch.from_numpy(x) if container == "torch" else x
    data = compress(model, X, bin_bits=int(rng.integers(4, 16)))
    y = decompress(model, data)
    assert type(y) is type(X) and y.dtype == X.dtype and tuple(y.shape) == tuple(X.shape)
    assert np.array_equal(np.asarray(y), x)
    h = read_header(data)
    assert (h.count, h.n_dims, h.container) == (n, math.prod(shape), container)


def test_compression_is_deterministic_and_survives_save_load(trained, tmp_path):
    model, cfg = trained
    x = planted_binary(20, 5).to(torch.uint8)
    first = compress(model, x)
    assert compress(model, x) == first
    save_model(model, cfg, tmp_path / "run")
    from vaekit.io import load_model
    loaded, _, _ = load_model(tmp_path / "run")
    assert torch.equal(decompress(loaded, first), x)


def test_rate_is_close_to_the_negative_elbo(trained):
    """The payload (minus the one-off initial bits) costs about -ELBO: Townsend et al. 2019, eq. 3."""
    model, _ = trained
    x = planted_binary(400, 9)
    data = compress(model, x)
    h = read_header(data)
    D = x.shape[1]
    neg_elbo = -dataset_elbo(model, x)["elbo"] / (D * math.log(2))  # bits/dim
    payload = (32 * h.n_words - h.initial_bits) / (len(x) * D)
    assert neg_elbo < 0.5  # the model learnt the prototypes: far below 1 bit/dim
    assert abs(payload - neg_elbo) < 0.05 * neg_elbo + 0.01, (payload, neg_elbo)
    assert torch.equal(decompress(model, data), x)


# --- errors ----------------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def packed(trained):
    model, _ = trained
    return compress(model, planted_binary(10, 3))


def test_different_model_is_refused(packed):
    torch.manual_seed(1)
    other = build_model(ModelConfig(input_shape=(48,), latent_dim=4, hidden=(64, 32)))
    with pytest.raises(ValueError, match="different model"):
        decompress(other, packed)


@pytest.mark.parametrize("cut", [3, 20, 60, -5, -1])
def test_truncated_data_is_refused(trained, packed, cut):
    with pytest.raises(ValueError, match=r"truncated|not vaekit"):
        decompress(trained[0], packed[:cut])


def test_corrupted_data_is_refused(trained, packed):
    damaged = bytearray(packed)
    damaged[len(damaged) // 2 + 40] ^= 0x10
    with pytest.raises(ValueError, match="corrupted"):
        decompress(trained[0], bytes(damaged))


def test_tampered_payload_with_valid_checksum_never_gives_wrong_data(trained, packed):
    h = read_header(packed)
    body = bytearray(packed[:-4])
    body[h.header_bytes + 8] ^= 0x01  # a payload bit, with the CRC recomputed to match
    forged = bytes(body) + struct.pack("<I", zlib.crc32(bytes(body)))
    with pytest.raises(ValueError, match="did not reproduce"):
        decompress(trained[0], forged)


def test_not_a_vkz_file_and_newer_version_are_refused(trained, packed):
    with pytest.raises(ValueError, match="not vaekit compressed data"):
        decompress(trained[0], b"PK\x03\x04 not ours" * 4)
    newer = packed[:8] + struct.pack("<H", 99) + packed[10:]
    with pytest.raises(ValueError, match="newer"):
        decompress(trained[0], newer)


@pytest.mark.parametrize("x,match", [
    (np.full((2, 48), 2, np.uint8), "outside 0..1"),
    (np.full((2, 48), 0.5), "non-integer"),
    (np.full((2, 48), np.nan), "NaN"),
    (np.zeros((2, 47)), "shape"),
    (np.zeros(48), "shape"),
    (np.array([["a"] * 48]), "numbers"),
])
def test_bad_input_is_named(trained, x, match):
    with pytest.raises(ValueError, match=match):
        compress(trained[0], x)


def test_unsupported_models_are_named():
    gaussian, _ = small_model("gaussian")
    with pytest.raises(ValueError, match="discrete likelihood"):
        compress(gaussian, np.zeros((1, 12)))
    mixture, _ = small_model(prior="mixture")
    with pytest.raises(ValueError, match="'normal' prior"):
        compress(mixture, np.zeros((1, 12)))
    conditional, _ = small_model(n_classes=3)
    with pytest.raises(ValueError, match="unconditional"):
        compress(conditional, np.zeros((1, 12)))


# --- command line ----------------------------------------------------------------------------------

def run_cli(argv):
    parser = argparse.ArgumentParser(prog="vaekit")
    add_commands(parser.add_subparsers(dest="command", required=True))
    args = parser.parse_args(argv)
    return args.func(args)


@pytest.fixture(scope="module")
def run_dir(trained, tmp_path_factory):
    model, cfg = trained
    return save_model(model, cfg, tmp_path_factory.mktemp("cli") / "run")


def test_cli_round_trip_prints_rate_and_elbo(run_dir, tmp_path, capsys):
    x = planted_binary(30, 4).numpy().astype(np.uint8)
    np.savez(tmp_path / "in.npz", test=x)
    assert run_cli(["compress", str(run_dir), str(tmp_path / "in.npz"), str(tmp_path / "x.vkz")]) == 0
    out = capsys.readouterr().out
    assert "achieved:" in out and "bits/dim" in out and "model negative ELBO:" in out
    assert run_cli(["decompress", str(run_dir), str(tmp_path / "x.vkz"), str(tmp_path / "out.npy")]) == 0
    y = np.load(tmp_path / "out.npy")
    assert y.dtype == x.dtype and np.array_equal(y, x)


def test_cli_refuses_to_overwrite_and_names_missing_files(run_dir, tmp_path):
    np.save(tmp_path / "in.npy", planted_binary(3, 1).numpy())
    (tmp_path / "taken.vkz").write_bytes(b"user data")
    with pytest.raises(ValueError, match=r"already exists.*--overwrite"):
        run_cli(["compress", str(run_dir), str(tmp_path / "in.npy"), str(tmp_path / "taken.vkz")])
    assert (tmp_path / "taken.vkz").read_bytes() == b"user data"
    assert run_cli(["compress", str(run_dir), str(tmp_path / "in.npy"), str(tmp_path / "taken.vkz"),
                    "--overwrite"]) == 0
    (tmp_path / "taken.vkz").write_bytes(b"user data")
    assert run_cli(["compress", str(run_dir), str(tmp_path / "in.npy"), str(tmp_path / "taken.vkz"),
                    "--force"]) == 0  # the old flag still works (deprecated)
    with pytest.raises(FileNotFoundError, match="does not exist"):
        run_cli(["decompress", str(run_dir), str(tmp_path / "missing.vkz"), str(tmp_path / "o.npy")])
    np.savez(tmp_path / "two.npz", a=np.zeros((1, 48)), b=np.zeros((1, 48)))
    with pytest.raises(ValueError, match="--key"):
        run_cli(["compress", str(run_dir), str(tmp_path / "two.npz"), str(tmp_path / "y.vkz")])


def test_through_vaekit_main(run_dir, tmp_path, capsys):
    from vaekit.cli import main
    np.save(tmp_path / "in.npy", np.full((2, 48), 3, np.uint8))
    code = main(["compress", str(run_dir), str(tmp_path / "in.npy"), str(tmp_path / "x.vkz")])
    err = capsys.readouterr().err
    assert code == 2 and err.startswith("error:") and "Traceback" not in err
