"""Serving and exporting a ``MoleculeVAE``: SMILES in, latent vectors, SMILES and log p(x) in nats out.

Requests carry SMILES; each is handled as its RDKit canonical SMILES and tokenised as the model was
fitted (SELFIES or SMILES); tokens the vocabulary lacks go to the unknown slot and are counted in the
answer. For export the sequence model becomes three graphs with dynamic batch axes:

- ``encoder``: token rows (B, T) -> posterior ``loc``, ``scale`` (B, L); T is dynamic too, and padding
  after a row's end token changes nothing;
- ``decoder_init``: z (B, L) -> the decoder's first ``state`` (layers, B, H) = tanh(W z + b);
- ``decoder_step``: previous ``token`` (B,), ``state``, ``z`` -> next-token ``logits`` (B, V) and the new
  ``state``: one step of ``GRUDecoder.step``; the model card shows the greedy loop around it.
"""

from __future__ import annotations

import warnings
from collections import Counter

import numpy as np
import torch
from torch import nn

from vaekit.serve.graphs import Graph, Port
from vaekit.serve.rows import BadInput, RowSpec, check_count, to_json
from vaekit.serve.served import Served

SHOWN = 5  # invalid SMILES named in a message


def from_molecules(vae) -> Served:
    """A fitted ``MoleculeVAE`` as a ``Served`` (application "molecules")."""
    from vaekit.apps.molecules import tokens as tk

    vae._check_fitted()
    model = vae.model_
    rows = RowSpec("smiles", tuple(model.event_shape))
    served = Served(model, f"MoleculeVAE ({vae.representation} tokens, vocabulary of {len(vae.vocabulary_)}), "
                           f"latent_dim {model.latent_dim}", "MoleculeVAE", rows,
                    to_model=lambda smiles: token_rows(vae, smiles)[0],
                    to_user=lambda x: {"smiles": [tk.from_tokens(t, vae.representation)
                                                  for t in vae.vocabulary_.decode(x.cpu())]},
                    unit="nats per molecule (log p of the canonical SMILES' token sequence)",
                    metrics={"active_units": vae.active_units_, "n_train": vae.n_train_},
                    application="molecules", app=vae,
                    preprocessing={"representation": vae.representation, "vocabulary": list(vae.vocabulary_.tokens),
                                   "specials": dict(zip(tk.SPECIAL_NAMES, range(4))),
                                   "how": "SMILES -> RDKit canonical SMILES -> tokens (SELFIES or the SMILES regex) -> "
                                          "ids in 'vocabulary' (unknown tokens -> <unk>), then <end>, then <pad> (0) "
                                          "to the batch's longest row"},
                    details={"representation": vae.representation, "vocabulary_size": len(vae.vocabulary_),
                             "max_tokens": int(vae.max_length or 2 * vae.max_train_tokens_)})
    served.random_rows = lambda n, seed: random_rows(served, n, seed)
    served.export_graphs = export_graphs
    served.usage = USAGE
    return served


def random_rows(served: Served, n: int, seed: int) -> torch.Tensor:
    """Token rows sampled from the model (z ~ p(z), then the decoder), padded by 3 more columns."""
    z = served.sample_latent(n, None, seed)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        x = served.decode(z, None, mean=False)  # ancestral samples, <unk> never drawn
    return nn.functional.pad(x.long().cpu(), (0, 3))


# -- requests --------------------------------------------------------------------------------------
def token_rows(vae, smiles: list) -> tuple[torch.Tensor, list[str], dict[str, int]]:
    """SMILES -> (token rows (N, T) long, canonical SMILES, unknown tokens -> count)."""
    from vaekit.apps.molecules import tokens as tk

    check_count(len(smiles), "smiles")
    if not all(isinstance(s, str) for s in smiles):
        raise BadInput("smiles must be a list of SMILES strings.")
    canon, bad = tk.canonicalise(smiles)
    if bad:
        examples = ", ".join(repr(smiles[i][:40]) for i in bad[:SHOWN])
        raise BadInput(f"{len(bad)} of {len(smiles)} SMILES are not valid molecules (RDKit cannot parse them), e.g. "
                       f"{examples}; remove or fix them.")
    rows, unknown = vae.vocabulary_.encode([tk.to_tokens(s, vae.representation) for s in canon])
    return rows, canon, dict(Counter(unknown).most_common(20))


def encode(served: Served, smiles: list) -> dict:
    x, canon, unknown = token_rows(served.app, smiles)
    loc, scale = served.encode(x, None)
    return {"loc": to_json(loc.numpy(), 7), "scale": to_json(scale.numpy(), 7), "smiles": canon,
            "unknown_tokens": unknown}


def decode(served: Served, z: np.ndarray) -> dict:
    """Greedy decodings: canonical SMILES, null where the decoded string is not a molecule."""
    smiles = served.app.decode(z, method="greedy")
    return {"smiles": smiles, "valid": sum(s is not None for s in smiles)}


def sample(served: Served, n: int, seed: int, temperature: float) -> dict:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        smiles = served.app.sample(n, temperature=temperature, random_state=seed)
    return {"smiles": smiles, "valid": sum(s is not None for s in smiles), "seed": seed, "temperature": temperature,
            "note": "null: the sampled string is not a valid molecule"}


def score(served: Served, smiles: list, *, k: int, seed: int, max_work: int) -> dict:
    from vaekit.evaluate import log_likelihood

    x, canon, unknown = token_rows(served.app, smiles)
    if x.numel() * k > max_work:
        raise BadInput(f"{len(x)} molecules of up to {x.shape[1]} tokens x k={k} is over {max_work} token samples; "
                       "send fewer or shorter molecules or a smaller k.")
    log_px = log_likelihood(served.model, x.to(served.device()), k=k, seed=seed).double().numpy()
    return {"log_px": to_json(log_px, 7), "unit": served.unit, "k": k, "smiles": canon, "unknown_tokens": unknown}


# -- export ----------------------------------------------------------------------------------------
class SequenceEncoder(nn.Module):
    """token rows (B, T) -> (loc, scale) (B, L): ``GRUEncoder`` then ``GaussianEncoder``'s head, run over
    all T columns (the eager encoder first cuts the batch's padding, which a graph cannot do; the states
    are read at each row's last token, so the padding is never read either way)."""

    def __init__(self, model: nn.Module):
        super().__init__()
        self.encoder = model.encoder  # GaussianEncoder(GRUEncoder)

    def forward(self, *inputs: torch.Tensor):  # tokens
        from vaekit.likelihoods import positive
        from vaekit.nets_recurrent import reverse_rows

        body, x = self.encoder.net, inputs[0].long()
        lengths = (x != body.pad).sum(-1).clamp(min=1)  # (B,) tokens + end
        last = (lengths - 1).view(-1, 1, 1)
        states = []
        for gru, rows in ((body.forward_gru, x), (body.backward_gru, reverse_rows(x, lengths))):
            y, _ = gru(body.embed(rows))  # (B, T, H)
            states.append(y.gather(1, last.expand(-1, 1, y.shape[-1])).squeeze(1))  # (B, H) at the last token
        loc, raw = self.encoder.head(torch.cat(states, -1)).float().chunk(2, -1)
        return loc, positive(raw, 1e-4)


class DecoderInit(nn.Module):
    def __init__(self, model: nn.Module):
        super().__init__()
        self.decoder = model.decoder

    def forward(self, *inputs: torch.Tensor):  # z
        """``GRUDecoder.initial_state`` with the batch size left symbolic (its ``view(len(z), ...)`` fixes it)."""
        dec = self.decoder
        h = torch.tanh(dec.init(inputs[0]))  # (B, layers * H)
        return h.unflatten(-1, (dec.layers, dec.hidden)).transpose(0, 1)  # (layers, B, H)


class DecoderStep(nn.Module):
    def __init__(self, model: nn.Module):
        super().__init__()
        self.decoder = model.decoder

    def forward(self, *inputs: torch.Tensor):  # token, state, z
        return self.decoder.step(inputs[0].long(), inputs[1], inputs[2])


def export_graphs(served: Served, x_example: torch.Tensor) -> list[Graph]:
    model, b = served.model, 3
    dec = model.decoder
    L, H, layers, V = served.latent_dim, dec.hidden, dec.layers, dec.out.out_features
    tokens = Port("tokens", x_example[:b].clone(), {0: "batch", 1: "length"},
                  "int64 (B, T): token ids of each molecule, then <end> (2), then <pad> (0) to T")
    z = Port("z", torch.randn(b, L), {0: "batch"}, f"float32 (B, {L}): latent vector")
    state_doc = f"float32 ({layers}, B, {H}): the decoder's GRU state"
    state = Port("state", torch.tanh(torch.randn(layers, b, H)), {1: "batch"}, state_doc)
    token = Port("token", torch.tensor([1, 4, 5])[:b] % V, {0: "batch"},
                 "int64 (B,): the previous token (<start> = 1 at the first step)")
    return [
        Graph("encoder", SequenceEncoder(model), [tokens],
              [("loc", f"float32 (B, {L}): posterior mean of the latent vector"),
               ("scale", f"float32 (B, {L}): posterior standard deviation")], make_inputs=encoder_inputs, direct=True),
        Graph("decoder_init", DecoderInit(model), [z], [("state", state_doc + " before the first step")],
              make_inputs=lambda x, seed, k: (2 * torch.randn(len(x), L, generator=torch.Generator().manual_seed(seed)),),
              direct=True),
        Graph("decoder_step", DecoderStep(model), [token, state, z],
              [("logits", f"float32 (B, {V}): next-token logits over the vocabulary (ids 0, 1 and 3 are never "
                          "generated: set them to -inf)"), ("state_out", state_doc + " after this step")],
              make_inputs=lambda x, seed, k: step_inputs(len(x), seed, V, layers, H, L), direct=True),
    ]


def encoder_inputs(x: torch.Tensor, seed: int, k: int) -> tuple[torch.Tensor]:
    return (x.long(),)


def step_inputs(b: int, seed: int, V: int, layers: int, H: int, L: int) -> tuple[torch.Tensor, ...]:
    g = torch.Generator().manual_seed(seed)
    return (torch.randint(V, (b,), generator=g), torch.tanh(2 * torch.randn(layers, b, H, generator=g)),
            2 * torch.randn(b, L, generator=g))


USAGE = '''Greedy decoding with the three graphs (what `MoleculeVAE.inverse_transform` does):

```python
import json
import numpy as np
import onnxruntime as ort

card = json.load(open("{path}/card.json"))
vocabulary = card["preprocessing"]["vocabulary"]        # ids 0-3: <pad> <start> <end> <unk>
init = ort.InferenceSession("{path}/decoder_init.onnx")
step = ort.InferenceSession("{path}/decoder_step.onnx")
z = np.random.default_rng(0).standard_normal((4, {latent_dim})).astype(np.float32)  # or the encoder's loc
(state,) = init.run(None, {{"z": z}})
token = np.full(len(z), 1, np.int64)                     # <start>
done, rows = np.zeros(len(z), bool), []
for t in range({max_tokens} + 1):                          # the model's cap on generated tokens
    logits, state = step.run(None, {{"token": token, "state": state, "z": z}})
    logits[:, [0, 1, 3]] = -np.inf                       # <pad>, <start> and <unk> are never generated
    token = np.where(done, 0, logits.argmax(-1) if t < {max_tokens} else 2)
    rows.append(token)
    done |= token == 2                                   # <end>
    if done.all():
        break
tokens = [[vocabulary[i] for i in row if i > 3] for row in np.stack(rows, 1)]  # up to each row's <end>
```

Join each row's tokens and, for SELFIES, decode them with `selfies.decoder` to get SMILES. Sampling instead of
greedy: draw each token from softmax(logits / temperature). The encoder takes token rows made as under
Preprocessing: `loc, scale = encoder.run(None, {{"tokens": rows}})`.'''
