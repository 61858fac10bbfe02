"""The service's routes for applications whose requests are not rows of numbers: a ``Recommender``
(``/recommend``, ``/encode``, ``/score`` of click histories) and a ``MoleculeVAE`` (``/molecules/sample``,
``/encode``, ``/decode``, ``/score`` of SMILES). Request bodies are checked by their schemas (sizes,
types, ranges) and by ``vaekit.serve.recommender`` / ``vaekit.serve.molecules``; every problem is a
4xx with one sentence."""

from __future__ import annotations

import threading
from typing import Annotated

from fastapi import FastAPI
from pydantic import BaseModel, ConfigDict, Field

import vaekit.serve.molecules as molecules
import vaekit.serve.recommender as recommender
from vaekit.serve.rows import MAX_ROWS, BadInput, numbers
from vaekit.serve.served import Served

SEED = Field(0, ge=0, le=2**31 - 1, description="seed of the random draws: same seed, same answer")
MAX_HISTORY = 100_000  # item ids in one history
MAX_MOLECULES = 1024  # SMILES or latent vectors per request
MAX_SMILES = 1000  # characters in one SMILES
MAX_MOLECULE_WORK = 1 << 18  # molecules x tokens x importance samples per /score request

ItemId = int | Annotated[str, Field(max_length=200)]
Smiles = Annotated[str, Field(max_length=MAX_SMILES)]


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class Histories(Strict):
    histories: list[Annotated[list[ItemId], Field(max_length=MAX_HISTORY)]] = Field(
        min_length=1, max_length=MAX_ROWS, description="one list of clicked item ids per user (ids as fitted; "
                                                       "unknown ids are left out and counted)")


class RecommendRequest(Histories):
    n: int = Field(10, ge=1, le=1000, description="items per user, best first (never one already in the history)")


class HistoryScores(Histories):
    k: int = Field(100, ge=1, le=1000, description="importance samples per user (more: tighter, slower)")
    seed: int = SEED


class SmilesRows(Strict):
    smiles: list[Smiles] = Field(min_length=1, max_length=MAX_MOLECULES, description="SMILES strings")


class SmilesScores(SmilesRows):
    k: int = Field(100, ge=1, le=1000, description="importance samples per molecule (more: tighter, slower)")
    seed: int = SEED


class MoleculeSample(Strict):
    n: int = Field(16, ge=1, le=MAX_MOLECULES, description="number of molecules")
    seed: int = SEED
    temperature: float = Field(1.0, ge=0.05, le=10.0, description="softmax temperature of each token draw")


def as_bad_input(fn):
    """The estimator's own ValueError (one sentence) becomes a 4xx answer."""
    try:
        return fn()
    except BadInput:
        raise
    except ValueError as e:
        raise BadInput(" ".join(str(e).split())) from None


def add_recommender_routes(app: FastAPI, served: Served, lock: threading.Lock) -> None:
    @app.post("/recommend", summary="The n best unseen items per history: item ids and scores (log-probabilities, nats)")
    def recommend(body: RecommendRequest) -> dict:
        return as_bad_input(lambda: recommender.recommend(served, body.histories, body.n))

    @app.post("/encode", summary="Posterior mean and standard deviation of each history's user embedding")
    def encode(body: Histories) -> dict:
        return as_bad_input(lambda: recommender.encode(served, body.histories))

    @app.post("/score", summary="log p(x) of each history in nats (importance-weighted with k samples)")
    def score(body: HistoryScores) -> dict:
        with lock:
            return as_bad_input(lambda: recommender.score(served, body.histories, k=body.k, seed=body.seed))


def add_molecule_routes(app: FastAPI, served: Served, lock: threading.Lock) -> None:
    width = served.latent_dim

    class Latents(Strict):
        z: list[Annotated[list[float], Field(min_length=width, max_length=width)]] = Field(
            min_length=1, max_length=MAX_MOLECULES, description=f"latent vectors, (N, {width})")

    @app.post("/molecules/sample", summary="New molecules: z ~ p(z), then tokens drawn at the temperature (SMILES)")
    def sample(body: MoleculeSample) -> dict:
        with lock:
            return as_bad_input(lambda: molecules.sample(served, body.n, body.seed, body.temperature))

    @app.post("/encode", summary="Posterior mean and standard deviation of z for each SMILES (deterministic)")
    def encode(body: SmilesRows) -> dict:
        return as_bad_input(lambda: molecules.encode(served, body.smiles))

    def decode(body) -> dict:
        z = numbers(body.z, "z")
        return as_bad_input(lambda: molecules.decode(served, z))

    decode.__annotations__["body"] = Latents  # a class made here: the module's string annotations cannot name it
    app.post("/decode", summary="Greedy decoding of each latent vector: canonical SMILES (null: not a molecule)")(decode)

    @app.post("/score", summary="log p(x) per molecule in nats (importance-weighted with k samples)")
    def score(body: SmilesScores) -> dict:
        with lock:
            return as_bad_input(lambda: molecules.score(served, body.smiles, k=body.k, seed=body.seed,
                                                        max_work=MAX_MOLECULE_WORK))


ROUTES = {"recommender": add_recommender_routes, "molecules": add_molecule_routes}
