"""The command line: one short digits run (module fixture), then every command on it; a table run;
every user error gives exit code 2 and one line on stderr."""

from __future__ import annotations

import json
import subprocess
import sys

import numpy as np
import pandas as pd
import pytest
from PIL import Image

from vaekit.cli import main
from vaekit.io import load_model
from vaekit.run import load_run, read_toml

QUICK = ["--set", "train.epochs=1", "--set", "model.hidden=[32, 16]", "--set", "latent_dim=2",
         "--set", "train.progress=false", "--k", "5"]


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory):
    out = tmp_path_factory.mktemp("runs") / "digits"
    assert main(["train", "digits", "--out", str(out), *QUICK]) == 0
    return out


def error_of(argv, capsys) -> str:
    assert main(argv) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("error: ") and "\n" not in err and "Traceback" not in err
    return err


def test_train_writes_a_complete_run(run_dir):
    for name in ("config.json", "model.safetensors", "config.toml", "metrics.jsonl", "checkpoint.pt",
                 "evaluation.json", "samples.png", "reconstructions.png", "traversals.png", "latent.png",
                 "curves.png", "report.html"):
        assert (run_dir / name).is_file(), name
    cfg = read_toml(run_dir / "config.toml")
    assert cfg["model"]["input_shape"] == [1, 8, 8] and cfg["model"]["likelihood"] == "gaussian"
    assert cfg["model"]["latent_dim"] == 2 and cfg["train"]["epochs"] == 1
    _, config, extra = load_model(run_dir)  # other engineers load runs like this
    assert config.latent_dim == 2 and extra["data"]["name"] == "digits"
    ev = json.loads((run_dir / "evaluation.json").read_text())
    assert ev["n_examples"] == 180 and ev["k"] == 5 and np.isfinite(ev["log_likelihood"])
    assert ev["log_likelihood"] >= ev["elbo"] - 1.0  # IWAE_k is at least the ELBO, up to noise
    with Image.open(run_dir / "samples.png") as im:
        assert im.size == (530, 530)  # 8 x 8 digits enlarged to 64 px, 2 px padding: 8 * 66 + 2
    html = (run_dir / "report.html").read_text()
    assert "data:image/png;base64," in html and "ELBO" in html


def test_evaluate_prints_table_and_writes_json(run_dir, tmp_path, capsys):
    out = tmp_path / "ev.json"
    assert main(["evaluate", str(run_dir), "digits", "--k", "3", "--split", "val", "--json", str(out)]) == 0
    text = capsys.readouterr().out
    assert "ELBO" in text and "bits/dim" in text and "active units" in text
    ev = json.loads(out.read_text())
    assert ev["split"] == "val" and ev["k"] == 3 and {"kl", "active_units", "reconstruction_mse"} <= set(ev)


def test_sample_reconstruct_traverse_interpolate_pngs(run_dir, tmp_path):
    cell = 64 + 2  # an 8 x 8 digit enlarged to 64 px, with 2 px of padding
    cases = [(["sample", str(run_dir), "-n", "10", "--out"], (8 * cell + 2, 2 * cell + 2)),  # 2 rows of 8
             (["reconstruct", str(run_dir), "-n", "8", "--out"], (8 * cell + 2, 2 * cell + 2)),  # originals + recons
             (["traverse", str(run_dir), "--steps", "5", "--out"], (5 * cell + 2, 2 * cell + 2)),  # latent_dim 2 rows
             (["interpolate", str(run_dir), "digits", "0", "5", "--steps", "7", "--out"], (7 * cell + 2, cell + 2))]
    for i, (argv, size) in enumerate(cases):
        path = tmp_path / f"{i}.png"
        assert main([*argv, str(path)]) == 0
        with Image.open(path) as im:
            im.verify()
        with Image.open(path) as im:
            assert im.format == "PNG" and im.size == size, argv[0]


def test_sample_npy_encode_decode_round_trip(run_dir, tmp_path):
    assert main(["sample", str(run_dir), "-n", "6", "--out", str(tmp_path / "s.npy")]) == 0
    s = np.load(tmp_path / "s.npy")
    assert s.shape == (6, 1, 8, 8)
    assert main(["encode", str(run_dir), "digits", "--split", "test", "--out", str(tmp_path / "z.csv")]) == 0
    z = pd.read_csv(tmp_path / "z.csv")
    assert list(z.columns) == ["z0", "z1", "label"] and len(z) == 180
    assert main(["encode", str(run_dir), "--out", str(tmp_path / "z.parquet")]) == 0
    assert len(pd.read_parquet(tmp_path / "z.parquet")) == 1797
    assert main(["decode", str(run_dir), str(tmp_path / "z.csv"), "--out", str(tmp_path / "x.npy")]) == 0
    assert np.load(tmp_path / "x.npy").shape == (180, 1, 8, 8)


def test_info(run_dir, capsys):
    assert main(["info", str(run_dir)]) == 0
    out = capsys.readouterr().out
    assert "latent_dim 2" in out and "gaussian" in out and "validation ELBO" in out


def test_finished_run_is_not_overwritten(run_dir, capsys):
    before = (run_dir / "model.safetensors").read_bytes()
    err = error_of(["train", "digits", "--out", str(run_dir), *QUICK], capsys)
    assert "--overwrite" in err
    assert (run_dir / "model.safetensors").read_bytes() == before


def test_overwrite_and_resume(tmp_path, capsys):
    out = tmp_path / "r"
    argv = ["train", "digits", "--out", str(out), *QUICK, "--set", "data.max_examples=200"]
    assert main(argv) == 0
    assert main([*argv, "--overwrite"]) == 0
    (out / "config.json").unlink()  # pretend the run was interrupted after its first epoch
    err = error_of(argv, capsys)
    assert "--resume" in err
    assert main(["train", "--resume", str(out), "--set", "train.epochs=2", "--k", "2"]) == 0
    assert len((out / "metrics.jsonl").read_text().splitlines()) == 2
    assert load_run(out)[1].data.max_examples == 200  # the run's config.toml was reused


def test_tabular_run_writes_original_units_and_categories(tmp_path, capsys):
    rng = np.random.default_rng(0)
    n = 120
    df = pd.DataFrame({"income": rng.normal(50_000, 8_000, n), "age": rng.uniform(20, 60, n),
                       "city": rng.choice(["Oslo", "Lima"], n), "kind": rng.choice(["p", "q"], n)})
    df.to_csv(tmp_path / "t.csv", index=False)
    out = tmp_path / "tab"
    assert main(["train", str(tmp_path / "t.csv"), "--out", str(out), *QUICK, "--set", "data.label=kind"]) == 0
    for name in ("samples.png", "reconstructions.png", "latent.png", "report.html"):
        assert (out / name).is_file()
    ev = json.loads((out / "evaluation.json").read_text())
    assert ev["log_jacobian"] < -10  # log(8000) alone is about 9 nats: original units
    assert main(["sample", str(out), "-n", "50", "--out", str(tmp_path / "s.csv")]) == 0
    s = pd.read_csv(tmp_path / "s.csv")
    assert list(s.columns) == ["income", "age", "city"] and set(s["city"]) <= {"Oslo", "Lima"}
    assert 10_000 < s["income"].mean() < 90_000
    assert main(["reconstruct", str(out), str(tmp_path / "t.csv"), "--out", str(tmp_path / "r.csv")]) == 0
    assert len(pd.read_csv(tmp_path / "r.csv")) == 12
    err = error_of(["sample", str(out), "--out", str(tmp_path / "s.png")], capsys)
    assert "csv" in err


@pytest.mark.parametrize("argv, words", [
    (["train", "no_such_file.npy", "--out", "{tmp}/a"], "does not exist"),
    (["train", "{tmp}/data.txt", "--out", "{tmp}/a"], "Unknown data format"),
    (["train", "{tmp}/nan.npy", "--out", "{tmp}/a"], "NaN"),
    (["train", "{tmp}/flat.npy", "--out", "{tmp}/a"], "shape"),
    (["train", "digits", "--out", "{tmp}/a", "--set", "model.latnt_dim=3"], "'latent_dim'"),
    (["train", "digits", "--out", "{tmp}/a", "--set", "latnt_dim=3"], "'model.latent_dim'"),
    (["train", "digits", "--out", "{tmp}/a", "--set", "seed=3"], "ambiguous"),
    (["train", "digits", "--out", "{tmp}/a", "--config", "{tmp}/bad.toml"], "Did you mean 'epochs'"),
    (["train", "digits", "--out", "{tmp}/a", "--config", "{tmp}/missing.toml"], "does not exist"),
    (["info", "{tmp}/nowhere"], "does not exist"),
    (["evaluate", "{tmp}/nowhere", "digits"], "does not exist"),
    (["train", "--resume", "{tmp}/nowhere"], "does not exist"),
    (["train", "--resume", "{tmp}"], "not a vaekit run directory"),
])
def test_user_errors_are_one_line_exit_2(tmp_path, capsys, argv, words):
    (tmp_path / "data.txt").write_text("1 2 3")
    np.save(tmp_path / "nan.npy", np.array([[0.5, np.nan], [0.1, 0.2], [0.3, 0.4]]))
    np.save(tmp_path / "flat.npy", np.arange(6.0))
    (tmp_path / "bad.toml").write_text("[train]\nepocs = 3\n")
    err = error_of([a.replace("{tmp}", str(tmp_path)) for a in argv], capsys)
    assert words in err


def test_command_errors_on_a_run(run_dir, tmp_path, capsys):
    assert "out of range" in error_of(["interpolate", str(run_dir), "digits", "0", "9999", "--out",
                                       str(tmp_path / "i.png")], capsys)
    assert "latent_dim=2" in error_of(["traverse", str(run_dir), "--dims", "5", "--out",
                                       str(tmp_path / "t.png")], capsys)
    np.save(tmp_path / "other.npy", np.random.default_rng(0).random((20, 5)))
    assert "shape" in error_of(["evaluate", str(run_dir), str(tmp_path / "other.npy")], capsys)
    assert "ending in" in error_of(["sample", str(run_dir), "--out", str(tmp_path / "s.txt")], capsys)


def test_python_dash_m_help_and_error_without_traceback(tmp_path):
    ok = subprocess.run([sys.executable, "-m", "vaekit", "train", "--help"], capture_output=True, text=True, check=False)
    assert ok.returncode == 0 and "examples:" in ok.stdout and "--overwrite" in ok.stdout
    bad = subprocess.run([sys.executable, "-m", "vaekit", "info", str(tmp_path / "none")],
                         capture_output=True, text=True, check=False)
    assert bad.returncode == 2 and bad.stderr.startswith("error: ") and "Traceback" not in bad.stderr


def commands(parser, prefix=()):
    """Every (sub)command path of the parser, e.g. ("detect", "fit")."""
    import argparse

    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for name, sub in action.choices.items():
                nested = list(commands(sub, (*prefix, name)))
                yield from nested or [(*prefix, name)]


def test_every_command_has_help_with_a_description_and_examples(capsys):
    from vaekit.cli import build_parser

    found = list(commands(build_parser()))
    assert {("train",), ("detect", "fit"), ("ssl-train",), ("compress",)} <= set(found)
    for path in found:
        assert main([*path, "--help"]) == 0
        out = capsys.readouterr().out
        assert "examples:" in out and len(out.split("\n\n")[1]) > 20, path  # a description paragraph


def test_shipped_configs_parse_and_digits_matches_the_builtin_defaults():
    from pathlib import Path

    from vaekit.run import resolve_config

    configs = Path(__file__).parent.parent / "configs"
    for name in ("digits", "binarized_mnist", "tabular_csv", "gaussian_images"):
        resolve_config(config_file=configs / f"{name}.toml")
    assert resolve_config(config_file=configs / "digits.toml") == resolve_config(data="digits")


@pytest.mark.slow
def test_ctrl_c_leaves_a_resumable_checkpoint(tmp_path):
    import signal
    import time

    out = tmp_path / "r"
    cmd = [sys.executable, "-m", "vaekit", "train", "digits", "--out", str(out), "--set", "train.epochs=500"]
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    deadline = time.time() + 120
    while not (out / "checkpoint.pt").exists() and time.time() < deadline:
        time.sleep(0.5)
    proc.send_signal(signal.SIGINT)
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == 130 and "vaekit train --resume" in err and "Traceback" not in err
    assert (out / "checkpoint.pt").exists() and not (out / "config.json").exists()
    assert main(["train", "--resume", str(out), "--set", "train.epochs=3", "--k", "2"]) == 0
    assert (out / "config.json").exists()


def test_help_and_info_import_no_torch(run_dir):
    """`vaekit --help`, a command's --help and `vaekit info` start fast: they never import torch
    (the start-up time itself is measured by benchmarks/cli_startup.py)."""
    probe = ("import sys; from vaekit.cli import main; main({argv!r}); "
             "print('heavy:', sorted(m for m in ('torch', 'sklearn', 'pandas') if m in sys.modules))")
    for argv in (["--help"], ["train", "--help"], ["detect", "fit", "--help"], ["info", str(run_dir)]):
        out = subprocess.run([sys.executable, "-c", probe.format(argv=argv)], capture_output=True, text=True,
                             check=False).stdout
        assert "heavy: []" in out, (argv, out[-300:])


def test_threads_option_after_the_command_and_its_checks(run_dir, capsys):
    assert main(["info", str(run_dir), "--threads", "2"]) == 0
    assert main(["info", str(run_dir), "--threads", "0"]) == 2
    assert "--threads must be 1 or more" in capsys.readouterr().err


def test_a_run_written_before_lr_warmup_existed_resumes_without_a_warm_up(tmp_path, capsys):
    out = tmp_path / "old"
    assert main(["train", "digits", "--out", str(out), "--set", "train.epochs=1", "--set", "train.lr_schedule=none",
                 "--k", "2"]) == 0
    toml = (out / "config.toml").read_text()
    (out / "config.toml").write_text("\n".join(line for line in toml.splitlines() if not line.startswith("lr_warmup")))
    from vaekit.run import read_run_config

    assert read_run_config(out).train.lr_warmup == 0.0
    assert read_run_config(out, ["train.lr_warmup=0.1"]).train.lr_warmup == 0.1  # the user's --set still wins
    assert main(["train", "--resume", str(out), "--set", "train.epochs=2", "--k", "2"]) == 0
