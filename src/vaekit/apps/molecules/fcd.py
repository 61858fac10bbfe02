"""Fréchet ChemNet Distance (Preuer et al. 2018) with the ChemNet weights that ship inside ``fcd-torch``.

The weights file is a list of (layer type, (state dict, arguments, flags)) that holds tensors and plain
containers only, so it is read with ``torch.load(..., weights_only=True)``: nothing is unpickled as
code. The network is rebuilt by ``fcd_torch.utils.load_imported_model`` and molecules are one-hot
encoded by ``fcd_torch.utils.SmilesDataset`` (canonical SMILES, 350 positions), exactly as fcd-torch
does. The Fréchet distance itself is computed here: fcd-torch's own function passes ``disp=False`` to
``scipy.linalg.sqrtm``, an argument SciPy deprecates (removed in 1.18).
"""

from __future__ import annotations

import functools
from pathlib import Path

import numpy as np
import torch
from scipy import linalg

BATCH = 256


@functools.cache
def chemnet() -> torch.nn.Module:
    import fcd_torch
    from fcd_torch.utils import load_imported_model

    path = Path(fcd_torch.__file__).parent / "ChemNet_v0.13_pretrained.pt"
    if not path.is_file():
        raise FileNotFoundError(f"fcd-torch's ChemNet weights are missing ({path}); reinstall fcd-torch.")
    layers = torch.load(path, map_location="cpu", weights_only=True)
    return load_imported_model(layers).eval()


@torch.inference_mode()
def activations(smiles: list[str]) -> np.ndarray:
    """ChemNet's penultimate activations, (N, 512), for valid SMILES."""
    from fcd_torch.utils import SmilesDataset

    net, data = chemnet(), SmilesDataset(list(smiles), canonize=True)
    out = []
    for start in range(0, len(data), BATCH):
        batch = torch.from_numpy(np.stack([data[i] for i in range(start, min(start + BATCH, len(data)))]))
        out.append(net(batch.transpose(1, 2).float()).numpy())
    return np.concatenate(out).astype(np.float64)


def gaussian_stats(smiles: list[str]) -> tuple[np.ndarray, np.ndarray]:
    """Mean (512,) and covariance (512, 512) of the activations; needs at least two molecules."""
    if len(smiles) < 2:
        raise ValueError(f"FCD needs at least two valid molecules, got {len(smiles)}.")
    a = activations(smiles)
    return a.mean(0), np.cov(a, rowvar=False)


def frechet_distance(mu1: np.ndarray, sigma1: np.ndarray, mu2: np.ndarray, sigma2: np.ndarray) -> float:
    """||mu1 - mu2||^2 + Tr(S1 + S2 - 2 (S1 S2)^(1/2)) (Dowson & Landau 1982), >= 0; lower is closer."""
    covmean = linalg.sqrtm(sigma1 @ sigma2)
    if not np.isfinite(covmean).all():  # nearly singular product: regularise
        eye = np.eye(len(sigma1)) * 1e-6
        covmean = linalg.sqrtm((sigma1 + eye) @ (sigma2 + eye))
    covmean = np.real(covmean)
    diff = mu1 - mu2
    return float(diff @ diff + np.trace(sigma1) + np.trace(sigma2) - 2.0 * np.trace(covmean))
