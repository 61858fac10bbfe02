"""``vaekit compress`` and ``vaekit decompress``: bits-back coding of array files with a trained run.

    vaekit compress RUN_DIR INPUT.npy OUTPUT.vkz      # prints achieved bits/dim beside -ELBO bits/dim
    vaekit decompress RUN_DIR INPUT.vkz OUTPUT.npy

INPUT is a ``.npy`` file or a ``.npz`` file (``--key`` picks the array when it holds several) with
the values the model's likelihood codes: 0/1 for 'bernoulli', integer levels 0..K-1 for
'categorical'. Existing outputs are never overwritten without ``--force``; files are written
atomically.
"""

from __future__ import annotations

import io
import math
import time
from pathlib import Path

import numpy as np

from vaekit.atomic import atomic_write
from vaekit.cli_common import add_overwrite, command


def read_input(path: Path, key: str = "") -> np.ndarray:
    if not path.is_file():
        raise FileNotFoundError(f"Input file {path} does not exist.")
    try:
        loaded = np.load(path, allow_pickle=False)
    except (ValueError, OSError, EOFError) as e:
        raise ValueError(f"Cannot read {path} as a .npy or .npz array file ({e}).") from None
    if isinstance(loaded, np.ndarray):
        return loaded
    with loaded:
        names = list(loaded.files)
        if key:
            if key not in names:
                raise ValueError(f"{path} has no array {key!r}; it holds {', '.join(names)}.")
            return loaded[key]
        if len(names) != 1:
            raise ValueError(f"{path} holds {len(names)} arrays ({', '.join(names)}); choose one with --key.")
        return loaded[names[0]]


def write_atomic(path: Path, data: bytes, *, overwrite: bool) -> None:
    if path.exists() and not overwrite:
        raise ValueError(f"{path} already exists; choose another output path or pass --overwrite to replace it.")
    if not path.parent.is_dir():
        raise FileNotFoundError(f"The output folder {path.parent} does not exist.")
    atomic_write(path, lambda p: p.write_bytes(data))


def negative_elbo_bits(model, x: np.ndarray) -> float:
    """The model's negative ELBO on x in bits/dim (one-sample estimate, seed 0)."""
    import torch

    from vaekit.evaluate import bits_per_dim, dataset_elbo

    xt = torch.as_tensor(x.reshape(len(x), *model.event_shape), dtype=torch.float32)
    return bits_per_dim(-dataset_elbo(model, xt)["elbo"], math.prod(model.event_shape))


def run_compress(args) -> int:
    from vaekit.apps.compression.codec import compress, read_header
    from vaekit.loading import as_model

    model = as_model(args.run_dir)
    x = read_input(Path(args.input), args.key)
    t0 = time.perf_counter()
    data = compress(model, x, bin_bits=args.bin_bits, progress=args.progress)
    seconds = time.perf_counter() - t0
    write_atomic(Path(args.output), data, overwrite=args.overwrite)
    h = read_header(data)
    dims = max(1, h.count * h.n_dims)
    print(f"compressed {h.count} examples x {h.n_dims} values into {len(data)} bytes in {seconds:.1f} s")
    print(f"achieved: {8 * len(data) / dims:.4f} bits/dim (all overhead included: header "
          f"{h.header_bytes + 4} bytes, initial bits {h.initial_bits})")
    if h.count:
        print(f"model negative ELBO: {negative_elbo_bits(model, x):.4f} bits/dim")
    return 0


def run_decompress(args) -> int:
    from vaekit.apps.compression.codec import decompress
    from vaekit.loading import as_model

    model = as_model(args.run_dir)
    path = Path(args.input)
    if not path.is_file():
        raise FileNotFoundError(f"Input file {path} does not exist.")
    data = path.read_bytes()
    t0 = time.perf_counter()
    x = decompress(model, data, progress=args.progress)
    seconds = time.perf_counter() - t0
    x = x.numpy() if hasattr(x, "numpy") else x
    out = Path(args.output)
    buffer = io.BytesIO()
    if out.suffix == ".npz":
        np.savez_compressed(buffer, x=x)
    else:
        np.save(buffer, x, allow_pickle=False)
    write_atomic(out, buffer.getvalue(), overwrite=args.overwrite)
    print(f"decompressed {len(x)} examples {x.shape[1:]} ({x.dtype}) to {out} in {seconds:.1f} s; "
          "data hash verified")
    return 0


def add_commands(subparsers) -> None:
    """Register ``compress`` and ``decompress`` on the vaekit command line."""
    c = command(subparsers, "compress", run_compress,
                "Losslessly compress an array file with a trained VAE (bits-back ANS coding).",
                "  vaekit compress runs/mnist test.npy test.vkz\n"
                "  vaekit compress runs/mnist data.npz test.vkz --key test",
                description="Losslessly compress an array file with a trained VAE (bits-back ANS coding, "
                            "Townsend et al. 2019); prints the achieved bits/dim beside the model's -ELBO.")
    c.add_argument("run_dir", help="run directory with config.json and model.safetensors")
    c.add_argument("input", help=".npy or .npz file: 0/1 values (bernoulli) or integer levels (categorical)")
    c.add_argument("output", help="output .vkz file")
    c.add_argument("--key", default="", help="array name inside an .npz file")
    c.add_argument("--bin-bits", type=int, default=10, help="latent bins are 2**-BIN_BITS wide (default 10)")
    add_overwrite(c, "OUTPUT if it exists")
    c.add_argument("--progress", action="store_true", help="show a progress bar")
    d = command(subparsers, "decompress", run_decompress, "Restore an array file from a .vkz file, bit-exact.",
                "  vaekit decompress runs/mnist test.vkz restored.npy",
                description="Restore the array a .vkz file holds, bit-exact, with the model that compressed it; "
                            "a different model or a damaged file is an error, never wrong data.")
    d.add_argument("run_dir", help="the run directory of the model that compressed the file")
    d.add_argument("input", help=".vkz file made by vaekit compress")
    d.add_argument("output", help="output .npy file (.npz if the name ends in .npz)")
    add_overwrite(d, "OUTPUT if it exists")
    d.add_argument("--progress", action="store_true", help="show a progress bar")
