"""Save -> load -> identical outputs; damaged or mismatched files give clear errors (STYLE.md test 7)."""

import json

import pytest
import torch

from vaekit import ModelConfig, build_model
from vaekit.evaluate import log_likelihood, posterior_means
from vaekit.io import CONFIG, WEIGHTS, load_model, save_model

CFG = ModelConfig(input_shape=(1, 9, 7), latent_dim=3, network="conv", channels=(4, 8), hidden=(16,),
                  likelihood="gaussian", prior="vamp", prior_components=5)


@pytest.fixture
def saved(tmp_path):
    model = build_model(CFG)
    with torch.no_grad():
        for p in model.parameters():
            p.add_(0.1 * torch.randn_like(p))
    return model, save_model(model, CFG, tmp_path / "m", extra={"note": "hello"})


def test_round_trip_gives_identical_outputs(saved):
    model, path = saved
    loaded, config, extra = load_model(path)
    assert config == CFG and extra == {"note": "hello"}
    x = torch.randn(6, 1, 9, 7)
    torch.testing.assert_close(posterior_means(loaded, x), posterior_means(model, x), rtol=0, atol=0)
    torch.testing.assert_close(log_likelihood(loaded, x, k=8), log_likelihood(model, x, k=8), rtol=0, atol=0)
    assert not list(path.glob("*.tmp*"))  # atomic writes leave no temporary files (name.tmp.suffix)


def test_files_are_json_and_safetensors_not_pickle(saved):
    _, path = saved
    meta = json.loads((path / CONFIG).read_text())
    assert meta["format"] == "vaekit-model" and meta["format_version"] == 2 and meta["family"] == "vae"
    assert len(meta["weights_sha256"]) == 64
    assert (path / WEIGHTS).read_bytes()[8:9] == b"{"  # safetensors: 8-byte length then a JSON header


def test_truncated_weights(saved):
    _, path = saved
    data = (path / WEIGHTS).read_bytes()
    (path / WEIGHTS).write_bytes(data[: len(data) // 2])
    with pytest.raises(ValueError, match="damaged"):
        load_model(path)


def test_a_corrupted_tensor_payload_is_detected(saved):
    """One flipped byte in the weights (not in the header) would load silently without the checksum."""
    _, path = saved
    data = bytearray((path / WEIGHTS).read_bytes())
    data[-5] ^= 0x40
    (path / WEIGHTS).write_bytes(bytes(data))
    with pytest.raises(ValueError, match="checksum does not match"):
        load_model(path)


def test_mismatched_config(saved):
    _, path = saved
    meta = json.loads((path / CONFIG).read_text())
    meta["model"]["latent_dim"] = 4
    (path / CONFIG).write_text(json.dumps(meta))
    with pytest.raises(ValueError, match="does not match"):
        load_model(path)


def test_damaged_config(saved):
    _, path = saved
    (path / CONFIG).write_text("{not json")
    with pytest.raises(ValueError, match="damaged"):
        load_model(path)


def test_unknown_config_key_names_the_nearest(saved):
    _, path = saved
    meta = json.loads((path / CONFIG).read_text())
    meta["model"]["latentdim"] = meta["model"].pop("latent_dim")
    (path / CONFIG).write_text(json.dumps(meta))
    with pytest.raises(ValueError, match="Did you mean 'latent_dim'"):
        load_model(path)


def test_missing_directory_or_weights(tmp_path, saved):
    with pytest.raises(FileNotFoundError, match="No saved model"):
        load_model(tmp_path / "nowhere")
    _, path = saved
    (path / WEIGHTS).unlink()
    with pytest.raises(FileNotFoundError, match="incomplete"):
        load_model(path)
