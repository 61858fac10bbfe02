"""Serving and exporting a ``Recommender``: click histories (lists of item ids) in, item ids and scores out.

A request's history is a list of the fitted item ids (numbers or strings, as ``Recommender.items_``);
ids the model does not know are left out and counted in the answer, and a history left empty gets the
popularity fallback of ``Recommender.predict``. Scores are log-probabilities in nats that the user's next
click is the item (log softmax of the decoder at E_q[z|x]; Liang et al. 2018; for an ensemble, the
mixture of its members' distributions). ``RecommenderScores`` is the same function as a graph for export:
histories (B, I_warm) -> scores (B, I), fallback included.
"""

from __future__ import annotations

import math
import warnings

import numpy as np
import scipy.sparse as sp
import torch
from torch import nn

from vaekit.serve.graphs import Graph, Port
from vaekit.serve.rows import BadInput, RowSpec, check_count, to_json
from vaekit.serve.served import Served

MAX_CLICKS = 1 << 20  # item ids per request, all histories together
UNIT = "log-probability in nats that the next click is the item (higher = better)"


def from_recommender(rec) -> Served:
    """A fitted ``Recommender`` as a ``Served`` (application "recommender")."""
    rec._check_fitted()
    model = rec.model_
    n_warm = int(rec.n_warm_)
    rows = RowSpec("histories", (n_warm,), [str(v) for v in rec.items_[:8]])
    kind = "Mult-VAE" if model.cfg.stochastic else "Mult-DAE"
    index = {str(v): j for j, v in enumerate(rec.items_)}
    members = f", {len(rec.models_)} members mixed" if len(rec.models_) > 1 else ""
    served = Served(model, f"Recommender ({rec.model}: {kind}{members}) over {rec.n_items_} items, "
                    f"latent_dim {model.latent_dim}",
                    "Recommender", rows, to_model=lambda histories: dense(parse(rec, index, histories)[0], n_warm),
                    to_user=lambda x: {"x": to_json(x.numpy())}, unit="nats per user (multinomial log p(x))",
                    metrics={"val_ndcg@100": rec.val_ndcg_}, application="recommender", app=rec,
                    preprocessing={"items": [str(v) for v in rec.items_], "n_warm": n_warm,
                                   "how": "a history is a row of 0/1 clicks over the first n_warm items, in the order "
                                          "of 'items'; the items after n_warm (no clicks in training) are scored "
                                          "from their content"},
                    details={"n_items": int(rec.n_items_), "n_warm": n_warm, "hybrid": rec.content_ is not None,
                             "density": bool(model.cfg.stochastic), "items_head": [str(v) for v in rec.items_[:20]]})
    served.state["index"] = index
    served.random_rows = lambda n, seed: random_histories(n_warm, n, seed)
    served.export_graphs = export_graphs
    served.usage = USAGE
    return served


def random_histories(n_items: int, n: int, seed: int) -> torch.Tensor:
    """0/1 rows with 1 to 10 clicks each, and one empty row (the popularity fallback)."""
    g = torch.Generator().manual_seed(seed)
    x = (torch.rand(n, n_items, generator=g) < min(0.5, 5 / n_items)).float()
    x[0] = 0.0
    return x


# -- requests --------------------------------------------------------------------------------------
def parse(rec, index: dict[str, int], histories: list) -> tuple[sp.csr_matrix, list[int]]:
    """Histories -> 0/1 CSR rows over the whole catalogue, and the number of unknown ids per row."""
    check_count(len(histories), "histories")
    if not all(isinstance(h, list) for h in histories):
        raise BadInput("histories must be a list of lists of item ids, one list per user.")
    if sum(len(h) for h in histories) > MAX_CLICKS:
        raise BadInput(f"The histories hold more than {MAX_CLICKS} item ids; send fewer users per request.")
    rows, cols, unknown = [], [], []
    for i, history in enumerate(histories):
        known = {index[key] for key in map(item_key, history) if key in index}
        unknown.append(sum(item_key(v) not in index for v in history))
        rows += [i] * len(known)
        cols += sorted(known)
    M = sp.csr_matrix((np.ones(len(rows), np.float32), (rows, cols)), shape=(len(histories), rec.n_items_))
    return M, unknown


def item_key(value) -> str | None:
    """The catalogue key of a requested id: numbers and strings as written (3.0 is item 3)."""
    if isinstance(value, bool):
        return None
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value) if isinstance(value, (int, str)) else None


def dense(M: sp.csr_matrix, n_warm: int) -> torch.Tensor:
    return torch.from_numpy(M[:, :n_warm].toarray())


def recommend(served: Served, histories: list, n: int) -> dict:
    """The ``n`` best unseen items per history, best first (fewer where the catalogue runs out)."""
    rec = served.app
    M, unknown = parse(rec, served.state["index"], histories)
    empty = np.asarray(M.sum(1)).ravel() == 0
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # the fallback is reported per row in the answer
        ids, scores = rec.recommend(M, n=min(int(n), rec.n_items_))
    keep = np.isfinite(scores)  # an item already in the history is never recommended
    items = [[v.item() if hasattr(v, "item") else v for v in row[ok]] for row, ok in zip(ids, keep)]
    return {"items": items, "scores": [to_json(row[ok], 6) for row, ok in zip(scores, keep)],
            "unknown": unknown, "fallback": empty.tolist(), "unit": UNIT,
            "note": "unknown: ids in the history that the model does not know (left out); fallback: the history "
                    "was empty, so the items are the most popular ones"}


def encode(served: Served, histories: list) -> dict:
    M, unknown = parse(served.app, served.state["index"], histories)
    loc, scale = served.encode(dense(M, served.app.n_warm_), None)
    return {"loc": to_json(loc.numpy(), 7), "scale": to_json(scale.numpy(), 7), "unknown": unknown}


def score(served: Served, histories: list, *, k: int, seed: int) -> dict:
    from vaekit.apps.recommend.batches import sparse_loader
    from vaekit.apps.recommend.ensemble import mixture
    from vaekit.evaluate import log_likelihood

    rec = served.app
    if not served.app.has_density_:
        raise BadInput("A Mult-DAE recommender has no density (no prior or posterior); fit model='vae' for log p(x).")
    M, unknown = parse(rec, served.state["index"], histories)
    loader = sparse_loader(M[:, : rec.n_warm_], batch_size=max(1, 1024 // k))  # as Recommender.score_samples
    log_px = mixture([log_likelihood(model, loader, k=k, seed=seed).double().numpy() for model in rec.models_])
    return {"log_px": to_json(log_px, 7), "unit": served.unit, "k": k, "unknown": unknown,
            "note": "multinomial log p(x) of the known clicks, multinomial coefficient included; order not modelled"}


# -- export ----------------------------------------------------------------------------------------
class RecommenderScores(nn.Module):
    """histories (B, I_warm) -> scores (B, I): ``Recommender.predict`` as a graph. log softmax of the
    decoder's logits at E_q[z|x] (cold items of a hybrid model from the last hidden layer and their
    content weights); an ensemble's members' distributions are mixed, log (1/M) sum_m p_m; a row without
    clicks gets log((popularity + 0.5) / sum)."""

    def __init__(self, rec):
        super().__init__()
        self.models = nn.ModuleList(rec.models_)
        pop = np.concatenate([rec.item_popularity_, np.zeros(rec.n_items_ - len(rec.item_popularity_))]) + 0.5
        self.register_buffer("log_pop", torch.tensor(np.log(pop / pop.sum()), dtype=torch.float32))
        self.hybrid = rec.content_ is not None
        if self.hybrid:  # (I_cold, H_m) and (I_cold,) per member m: its cold-item output vectors (H_m may differ)
            for m, (w, b) in enumerate(zip(rec.cold_weight_, rec.cold_bias_)):
                self.register_buffer(f"cold_w{m}", torch.as_tensor(w, dtype=torch.float32))
                self.register_buffer(f"cold_b{m}", torch.as_tensor(b, dtype=torch.float32))

    def member(self, m: int, model, x: torch.Tensor) -> torch.Tensor:
        loc = model.encode(x).base_dist.loc  # (B, L)
        if self.hybrid:
            h = model.last_hidden(loc).float()  # (B, H)
            w, b = getattr(self, f"cold_w{m}"), getattr(self, f"cold_b{m}")
            logits = torch.cat([list(model.decoder)[-1](h).float(), h @ w.T + b], 1)
        else:
            logits = model.logits(loc)  # (B, I)
        return torch.log_softmax(logits, -1)

    def forward(self, *inputs: torch.Tensor) -> torch.Tensor:  # histories
        x = inputs[0]
        members = torch.stack([self.member(m, model, x) for m, model in enumerate(self.models)])  # (M, B, I)
        scores = torch.logsumexp(members, 0) - math.log(len(self.models))
        return torch.where(x.sum(-1, keepdim=True) > 0, scores, self.log_pop.expand_as(scores))


def export_graphs(served: Served, x_example: torch.Tensor) -> list[Graph]:
    rec = served.app
    port = Port("histories", x_example[:3].clone(), {0: "batch"},
                f"float32 (B, {rec.n_warm_}): clicks (0/1, or counts) over the first n_warm items of card.json's "
                "preprocessing.items")
    return [Graph("scores", RecommenderScores(rec).eval(), [port],
                  [("scores", f"float32 (B, {rec.n_items_}): {UNIT}; a row without clicks gets the popularity "
                              "fallback. Set the history's own items to -inf before taking the top n.")])]


USAGE = '''```python
import json
import numpy as np
import onnxruntime as ort

card = json.load(open("{path}/card.json"))
items, n_warm = card["preprocessing"]["items"], card["preprocessing"]["n_warm"]
index = {{item: j for j, item in enumerate(items)}}
history = [items[0], items[3]]                            # one user's clicked item ids
x = np.zeros((1, n_warm), np.float32)
x[0, [index[i] for i in history if index.get(i, n_warm) < n_warm]] = 1.0
(scores,) = ort.InferenceSession("{path}/scores.onnx").run(None, {{"histories": x}})
scores[0, [index[i] for i in history]] = -np.inf         # never recommend what the user has seen
top = np.argsort(-scores[0])[:10]
print([items[j] for j in top], scores[0, top])           # log-probabilities in nats
```'''
