"""The latent explorer's routes: the page (``/explore``, static assets read into memory once), a 2-D
map of encoded data points (``/explore/map``) and one point's example and reconstruction
(``/explore/points/{index}``). The page decodes through the service's own ``/decode``."""

from __future__ import annotations

import threading
from pathlib import Path

import numpy as np
import torch
from fastapi import FastAPI
from fastapi.responses import HTMLResponse, JSONResponse, Response

from vaekit.serve.rows import to_json
from vaekit.serve.served import Served

ASSETS = {"explore.js": "text/javascript; charset=utf-8", "explore.css": "text/css; charset=utf-8"}
N_SLIDERS = 16  # sliders for the most active latent dimensions
N_SAMPLES = 300  # map points drawn from the model when there is no data


def project(loc: np.ndarray) -> tuple[np.ndarray, str]:
    """2-D coordinates of the posterior means: the means themselves for L <= 2, else their first two
    principal components."""
    if loc.shape[1] == 1:
        return np.concatenate([loc, np.zeros_like(loc)], 1), "z0 (the only latent dimension)"
    if loc.shape[1] == 2:
        return loc, "z0 and z1"
    centred = loc - loc.mean(0)
    _, s, vt = np.linalg.svd(centred, full_matrices=False)
    share = (s[:2] ** 2).sum() / max((s**2).sum(), 1e-12)
    return centred @ vt[:2].T, f"first two principal components of the posterior means ({share:.0%} of their variance)"


def build_map(served: Served, lock: threading.Lock) -> dict:
    x, y, source = None, None, "the run's test rows"
    if served.examples is not None:
        try:
            x, y = served.examples()
        except (OSError, ValueError) as e:
            source = f"samples from the model (the run's data could not be read: {' '.join(str(e).split())})"
    if x is None:
        source = source if served.examples is not None else "samples from the model (no data was given)"
        g = torch.Generator().manual_seed(0)
        y = torch.randint(len(served.class_names), (N_SAMPLES,), generator=g) if served.condition == "label" else None
        with lock:
            z = served.sample_latent(N_SAMPLES, y, 0)
            with torch.random.fork_rng(devices=[]):
                torch.manual_seed(0)
                x = served.decode(z, y, mean=False)
    x = x.to(served.device())
    cond = None
    if served.condition == "label":
        cond = y if y is not None else served.classify(x)
    elif served.condition == "covariates":
        cond = torch.zeros(len(x), served.condition_size)
    loc, _ = served.encode(x, None if cond is None else cond.to(served.device()))
    loc = loc.cpu().numpy().astype(np.float64)
    xy, axes = project(loc)
    variance = loc.var(0)
    dims = [int(d) for d in np.argsort(-variance)[:N_SLIDERS]]
    names = served.class_names
    labels = None if y is None or not names else [names[int(i)] if 0 <= int(i) < len(names) else str(int(i))
                                                    for i in y.tolist()]
    return {"x": x.cpu(), "cond": cond, "loc": loc,
            "public": {"points": to_json(xy, 4), "labels": labels, "class_names": names, "axes": axes,
                       "source": source, "dims": dims, "dim_variance": [float(variance[d]) for d in dims],
                       "n": len(loc)}}


def add_explorer(app: FastAPI, served: Served, lock: threading.Lock) -> None:
    here = Path(__file__).parent / "explore"
    page = (here / "index.html").read_text(encoding="utf-8")
    assets = {name: (here / name).read_bytes() for name in ASSETS}
    state: dict = {}
    build_lock = threading.Lock()

    def view() -> dict:
        with build_lock:
            if "map" not in state:
                state["map"] = build_map(served, lock)
            return state["map"]

    @app.get("/explore", include_in_schema=False)
    def explore_page() -> Response:
        return HTMLResponse(page)

    @app.get("/explore/assets/{name}", include_in_schema=False)
    def explore_asset(name: str) -> Response:
        if name not in assets:
            return JSONResponse({"detail": f"No explorer asset {name!r}."}, 404)
        return Response(assets[name], media_type=ASSETS[name])

    @app.get("/explore/map", summary="Explorer: 2-D map of encoded data points, labels, and the most active dimensions")
    def explore_map() -> dict:
        return view()["public"]

    @app.get("/explore/points/{index}", summary="Explorer: one map point's example, reconstruction and latent mean")
    def explore_point(index: int) -> Response:
        m = view()
        if not 0 <= index < len(m["loc"]):
            return JSONResponse({"detail": f"No point {index}; the map has points 0 to {len(m['loc']) - 1}."}, 404)
        x = m["x"][index : index + 1]
        cond = None if m["cond"] is None else m["cond"][index : index + 1].to(served.device())
        z = torch.from_numpy(m["loc"][index : index + 1]).float().to(served.device())
        recon = served.decode(z, cond).cpu()
        label = m["public"]["labels"][index] if m["public"]["labels"] else None
        y = None if cond is None or served.condition != "label" else served.class_names[int(cond[0])]
        return JSONResponse({"index": index, "label": label, "y": y, "z": to_json(m["loc"][index]),
                             "example": served.to_user(x), "reconstruction": served.to_user(recon)})
