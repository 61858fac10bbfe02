"""``create_app(model) -> FastAPI``: an HTTP JSON service for a saved model, with its OpenAPI schema.

Routes: ``/health``, ``/info``, ``/encode``, ``/decode``, ``/sample``, ``/reconstruct``, ``/score``
(log p(x) in nats), ``/classify`` for models with a classifier q(y|x) (M2, M1+M2), ``/detect`` for
anomaly detectors, and the latent explorer at ``/explore``; a
``Recommender`` or a ``MoleculeVAE`` gets its own routes instead (``vaekit.serve.app_routes``). The
model is loaded once; a request's rows run in chunks of ``served.CHUNK``. Every problem with a request
is answered with a 4xx status and ``{"detail": "<one sentence>"}``; no route reads a file named by a
request (the explorer's assets are read into memory when the app is made).
"""

from __future__ import annotations

import threading
from pathlib import Path
from typing import Annotated, Any

import torch
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import HTMLResponse, JSONResponse, Response
from pydantic import Field

from vaekit.serve.app_routes import ROUTES, SEED, Strict
from vaekit.serve.detector import detect as detect_rows
from vaekit.serve.explorer import add_explorer
from vaekit.serve.loading import open_model
from vaekit.serve.rows import MAX_ROWS, BadInput, numbers, parse_rows, to_json
from vaekit.serve.served import Served

MAX_BODY = 32 << 20  # bytes per request body
MAX_SCORE_WORK = 1 << 20  # rows x importance samples per /score request
X_DOC = ("rows as the model was fitted: images as nested arrays (C, H, W) or flat, feature vectors, or table "
         "rows in the original columns (see /info rows)")
Y_DOC = ("conditional models: one label (or covariate vector) per row, or one for all rows; M1+M2 reads a "
         "label only in /sample (left out: classes drawn from the class prior p(y))")


class Rows(Strict):
    x: list[Any] = Field(min_length=1, max_length=MAX_ROWS, description=X_DOC)
    columns: list[str] | None = Field(None, max_length=100_000, description="table rows: the order of the values")
    y: list[Any] | None = Field(None, max_length=MAX_ROWS, description=Y_DOC)


class ScoreRows(Rows):
    k: int = Field(100, ge=1, le=1000, description="importance samples per row (more: tighter, slower)")
    seed: int = SEED


class SampleRequest(Strict):
    n: int = Field(16, ge=1, le=MAX_ROWS, description="number of samples")
    seed: int = SEED
    mean: bool = Field(True, description="decode E[x|z] (true) or draw x ~ p(x|z) (false)")
    y: list[Any] | None = Field(None, max_length=MAX_ROWS, description=Y_DOC)


class BodyLimit:
    """ASGI middleware: a body over ``limit`` bytes is refused with 413 before it is read in full."""

    def __init__(self, app, limit: int):
        self.app, self.limit = app, limit

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        length = dict(scope.get("headers") or []).get(b"content-length")
        if length is not None and (not length.isdigit() or int(length) > self.limit):
            return await too_large(self.limit)(scope, receive, send)
        seen = 0

        async def counted():
            nonlocal seen
            message = await receive()
            seen += len(message.get("body", b""))
            if seen > self.limit:
                raise TooLarge(f"The request body is over {self.limit} bytes; send fewer rows per request.")
            return message

        return await self.app(scope, counted, send)


class TooLarge(BadInput):
    """A body over the size limit (HTTP 413)."""


def too_large(limit: int) -> JSONResponse:
    return JSONResponse({"detail": f"The request body is over {limit} bytes; send fewer rows per request."}, 413)


def one_sentence(exc: RequestValidationError) -> str:
    errors = exc.errors()
    if not errors:
        return "The request body is not valid; see /docs for its schema."
    e = errors[0]
    where = ".".join(str(p) for p in e.get("loc", ()) if p != "body") or "body"
    if e.get("type") == "json_invalid" or where == "body":
        return ("The request body is not a JSON object; send one such as {\"x\": [[...]]} with "
                "Content-Type: application/json.")
    return f"Field {where!r}: {e.get('msg', 'is not valid')}; see /docs for the request schema."


def create_app(model: Served | str | Path, *, explore: bool = True, max_body: int = MAX_BODY) -> FastAPI:
    """The service for ``model`` (a ``Served`` or a saved model directory), loaded once."""
    served = model if isinstance(model, Served) else open_model(model)
    app = FastAPI(title="vaekit model service", version="1",
                  description=f"{served.name}. Densities in {served.unit}. Errors: 4xx with one sentence in 'detail'.")
    rng_lock = threading.Lock()  # draws seed the global generator: one seeded computation at a time

    @app.exception_handler(BadInput)
    async def bad_input(request: Request, exc: BadInput):
        return JSONResponse({"detail": str(exc)}, 413 if isinstance(exc, TooLarge) else 422)

    @app.exception_handler(RequestValidationError)
    async def invalid(request: Request, exc: RequestValidationError):
        return JSONResponse({"detail": one_sentence(exc)}, 422)

    @app.exception_handler(Exception)
    async def internal(request: Request, exc: Exception):  # a bug, never the caller's input: say so briefly
        return JSONResponse({"detail": f"Internal error ({type(exc).__name__}); the service is still running."}, 500)

    @app.get("/health", summary="Liveness: the model is loaded")
    def health() -> dict:
        return {"status": "ok", "model": served.name}

    @app.get("/info", summary="What the model takes and returns: shapes, feature names, labels, units, metrics")
    def info() -> dict:
        return served.info()

    if served.application in ROUTES:  # requests that are not rows of numbers: the application's own routes
        ROUTES[served.application](app, served, rng_lock)
    else:
        add_row_routes(app, served, rng_lock, explore=explore)

    @app.get("/", include_in_schema=False)
    def root() -> Response:
        links = "".join(f'<li><a href="{p}">{p}</a></li>' for p in ("/docs", "/info", "/health")
                        + (("/explore",) if explore and served.application not in ROUTES else ()))
        return HTMLResponse(f"<!doctype html><title>vaekit</title><h1>{served.name}</h1><ul>{links}</ul>")

    if max_body:
        app.add_middleware(BodyLimit, limit=max_body)
    app.state.served = served
    return app


def add_row_routes(app: FastAPI, served: Served, rng_lock: threading.Lock, *, explore: bool) -> None:
    """/encode /decode /sample /reconstruct /score (and /classify, /detect, /explore) for models of rows of numbers."""
    width = served.latent_dim

    class Latents(Strict):
        z: list[Annotated[list[float], Field(min_length=width, max_length=width)]] = Field(
            min_length=1, max_length=MAX_ROWS, description=f"latent vectors, (N, {width})")
        y: list[Any] | None = Field(None, max_length=MAX_ROWS, description=Y_DOC)

    def model_rows(body: Rows) -> torch.Tensor:
        rows = parse_rows(served.rows, body.x, body.columns)
        try:
            x = served.to_model(rows)
        except ValueError as e:  # the preprocessing's own sentence (unknown category, wrong column)
            raise BadInput(" ".join(str(e).split())) from None
        return x.to(served.device())

    def condition(y, x: torch.Tensor | None, n: int, *, sampling: bool = False) -> torch.Tensor | None:
        t = served.condition_tensor(y, n, required=x is None or not hasattr(served.model, "classify"),
                                    sampling=sampling)
        if t is None and served.condition and x is not None:
            t = served.classify(x)  # M2 without a label: the classifier's most probable one
        return None if t is None else t.to(served.device())

    def latents(body) -> torch.Tensor:
        z = numbers(body.z, "z")
        if z.ndim != 2 or z.shape[1] != served.latent_dim:
            raise BadInput(f"z has shape {list(z.shape)}; send rows of latent_dim={served.latent_dim} numbers.")
        return torch.from_numpy(z).to(served.device())

    @app.post("/encode", summary="Posterior mean and standard deviation of z for each row (deterministic)")
    def encode(body: Rows) -> dict:
        x = model_rows(body)
        y = condition(body.y, x, len(x))
        loc, scale = served.encode(x, y)
        return {"loc": to_json(loc.cpu().numpy(), 7), "scale": to_json(scale.cpu().numpy(), 7)}

    def decode(body) -> dict:
        z = latents(body)
        return served.to_user(served.decode(z, condition(body.y, None, len(z))).cpu())

    decode.__annotations__["body"] = Latents  # a class made here: the module's string annotations cannot name it
    app.post("/decode", summary="E[x|z] for each latent vector, in the user's units")(decode)

    @app.post("/sample", summary="New rows: z ~ p(z), then E[x|z] or x ~ p(x|z)")
    def sample(body: SampleRequest) -> dict:
        y = condition(body.y, None, body.n, sampling=True)
        with rng_lock:
            z = served.sample_latent(body.n, y, body.seed)
            with torch.random.fork_rng(devices=[]):
                torch.manual_seed(body.seed)
                x = served.decode(z, y, mean=body.mean)
        return served.to_user(x.cpu())

    @app.post("/reconstruct", summary="E[x | z = posterior mean] for each row, in the user's units")
    def reconstruct(body: Rows) -> dict:
        x = model_rows(body)
        y = condition(body.y, x, len(x))
        loc, _ = served.encode(x, y)
        return served.to_user(served.decode(loc, y).cpu())

    @app.post("/score", summary="log p(x) per row in nats (importance-weighted with k samples; higher = more likely)")
    def score(body: ScoreRows) -> dict:
        x = model_rows(body)
        if len(x) * body.k > MAX_SCORE_WORK:
            raise BadInput(f"{len(x)} rows x k={body.k} is over {MAX_SCORE_WORK} samples; send fewer rows or a smaller k.")
        y = served.condition_tensor(body.y, len(x), required=not hasattr(served.model, "classify"))
        with rng_lock:
            log_px = served.log_px(x, None if y is None else y.to(served.device()), k=body.k, seed=body.seed)
        return {"log_px": to_json(log_px, 7), "unit": served.unit, "k": body.k,
                "note": "null: the density is zero or not finite for that row"}

    if hasattr(served.model, "classify"):
        @app.post("/classify", summary="q(y|x) per row: class probabilities (columns in class_names order) and "
                                       "the most probable label")
        def classify(body: Rows) -> dict:
            if body.y is not None:
                raise BadInput("/classify predicts y; leave y out.")
            probs = served.class_probs(model_rows(body)).cpu()
            return {"probs": to_json(probs.numpy(), 7), "label": [served.class_names[i] for i in probs.argmax(-1).tolist()],
                    "class_names": served.class_names}

    if served.application == "detector":
        @app.post("/detect", summary="Anomaly score (higher = more anomalous) and 0/1 flag per row")
        def detect(body: Rows) -> dict:
            if body.y is not None:
                raise BadInput("A detector takes no y; leave it out.")
            x = model_rows(body)
            with rng_lock:
                return detect_rows(served, x.cpu())

    if explore:
        add_explorer(app, served, rng_lock)
