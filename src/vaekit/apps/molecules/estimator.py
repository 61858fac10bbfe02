"""``MoleculeVAE``: a sequence VAE over SELFIES (default) or SMILES tokens with scikit-learn conventions.

    vae = MoleculeVAE().fit(smiles)                      # invalid SMILES are reported and skipped
    vae.sample(1000)                                     # canonical SMILES (None where not a molecule)
    Z = vae.transform(smiles); vae.inverse_transform(Z)  # posterior means <-> greedy decodings
    vae.score_samples(smiles)                            # importance-weighted log p(x), nats per molecule

Every molecule is handled as its RDKit canonical SMILES, so ``score_samples`` is the probability of
the canonical string's tokens (SELFIES and SMILES numbers are not comparable with each other).
Molecules met after training may hold tokens the vocabulary lacks (they go to the unknown slot, with
a warning naming them) and may be longer than any training molecule (there is no length cap).
"""

from __future__ import annotations

import time
import warnings

import numpy as np
import torch

from vaekit import checks
from vaekit.apps.molecules import tokens as tk
from vaekit.apps.molecules.batching import LengthBucketed
from vaekit.apps.molecules.grammar import SmilesSyntax
from vaekit.apps.molecules.model import FAMILY, SequenceOptions, build_sequence_vae
from vaekit.config import CONSTANT_LR, ModelConfig, TrainConfig, to_dict
from vaekit.estimators.base import Estimator
from vaekit.estimators.vae import epochs_for
from vaekit.evaluate import active_units, log_likelihood, posterior_means, posterior_moments
from vaekit.sequence import beam_search, generate
from vaekit.train import fit

SHOWN = 5  # invalid molecules / unknown tokens named in a message


def invalid_message(what: str, bad: list[int], smiles: list[str]) -> str:
    examples = ", ".join(repr(smiles[i]) for i in bad[:SHOWN])
    return f"{len(bad)} of {len(smiles)} {what} are not valid molecules (RDKit cannot parse them), e.g. {examples}"


def as_smiles_list(smiles, name: str) -> list[str]:
    if isinstance(smiles, str):
        raise ValueError(f"{name} is one string; pass a list of SMILES strings, e.g. [{smiles!r}].")
    try:
        out = list(smiles)
    except TypeError:
        raise ValueError(f"{name} must be a list of SMILES strings, got {type(smiles).__name__}.") from None
    if not out:
        raise ValueError(f"{name} is empty; pass at least one SMILES string.")
    return ["" if s is None else str(s) for s in out]


class TimeBudget:
    """A ``fit`` callback: stop after the epoch in which ``minutes`` have passed on ``clock``: "wall"
    (elapsed time) or "cpu" (this process's CPU time: fairer when other jobs share the machine)."""

    def __init__(self, minutes: float | None, clock: str = "wall"):
        if clock not in ("wall", "cpu"):
            raise ValueError(f"budget_clock must be 'wall' or 'cpu', got {clock!r}.")
        self.minutes, self.now = minutes, time.perf_counter if clock == "wall" else time.process_time
        self.start = self.now()

    def __call__(self, record: dict, model) -> bool:
        record["budget_s"] = self.now() - self.start
        return self.minutes is not None and record["budget_s"] >= 60 * self.minutes


def strings_per_molecule(setting: int | str, n_molecules: int) -> int:
    """``random_strings``, or for "auto" 20 other SMILES per molecule up to 5,000 training molecules, none
    from 20,000, and a linear ramp in between."""
    if setting != "auto":
        return int(setting)
    return int(round(20 * min(max((20_000 - n_molecules) / 15_000, 0.0), 1.0)))


class MoleculeVAE(Estimator):
    """A VAE for molecules: GRU encoder over tokens, Gaussian latent, GRU decoder conditioned on z.

    Against posterior collapse: a linear KL warm-up over the first ``kl_warmup`` of the steps (Bowman
    et al. 2016), ``free_bits`` nats per latent dimension (Kingma et al. 2016) and ``word_dropout``
    of the decoder's inputs (Bowman et al. 2016); ``active_units_`` reports the latent dimensions in
    use after training. ``beta`` weights the KL in the training loss only: every reported ELBO and
    ``score_samples`` are true bounds in nats. ``epochs="auto"`` trains for about ``steps`` gradient
    steps; ``max_minutes`` stops training after the epoch in which that time has passed (``budget_clock``:
    "wall" time, or the process's "cpu" time).
    ``precision="fp32"`` by default: on a CPU with bf16 units, autocast made the GRU step 2x slower.
    ``syntax_mask`` (SMILES forms only): decoding and sampling allow at each step only the tokens the
    SMILES grammar permits next and that keep every atom within its valence
    (``vaekit.apps.molecules.grammar``); the likelihoods stay the unconstrained model's.
    ``representation="kekule_smiles"`` writes each molecule as its canonical Kekule SMILES (no aromatic
    atoms), where that valence count is exact: sampled molecules are then almost always valid.
    ``random_strings=n`` adds, for each training molecule, ``n`` of its other SMILES (atoms in a random
    order, SMILES enumeration; Bjerrum 2017, Arus-Pous et al. 2019) to the training strings, so the model
    learns molecules rather than one string each. ``"auto"`` (the default) picks n from the number of
    training molecules N: 20 up to 5,000 molecules, none from 20,000, linear in between
    (``strings_per_molecule``). Chosen on three data sets (``benchmarks/results/molecules_random_strings.md``):
    on 3,000 MOSES molecules n = 20 raised the reconstruction of 1,000 held-out molecules from 0.041 (10 CPU
    minutes, 0.742 of the training molecules: memorised) to 0.539 (63 CPU minutes); on 3,000 ZINC molecules
    from 0.009 to 0.177 (35 CPU minutes each); on 24,445 ZINC molecules n = 5 tied (0.234 against 0.231, 20
    CPU minutes). The model then spreads probability over a molecule's strings: ``score_samples`` stays the
    probability of the canonical string, lower than without; each epoch is (n + 1) times longer.
    """

    PARAMS = {
        "representation": lambda n, v: checks.choice(n, v, tk.REPRESENTATIONS),
        "latent_dim": lambda n, v: checks.integer(n, v, low=1),
        "hidden": checks.widths,
        "embed_dim": lambda n, v: checks.integer(n, v, low=1),
        "epochs": checks.epochs, "steps": lambda n, v: checks.integer(n, v, low=1),
        "batch_size": lambda n, v: checks.integer(n, v, low=1),
        "lr": lambda n, v: checks.real(n, v, low=0, low_open=True),
        "beta": lambda n, v: checks.real(n, v, low=0),
        "kl_warmup": lambda n, v: checks.real(n, v, low=0, high=1),
        "free_bits": lambda n, v: checks.real(n, v, low=0),
        "word_dropout": lambda n, v: checks.real(n, v, low=0, high=1),
        "random_strings": lambda n, v: v if v == "auto" else checks.integer(
            n, v, low=0, hint="Use a whole number of other SMILES per molecule, or 'auto'."),
        "k": lambda n, v: checks.integer(n, v, low=1),
        "budget_clock": lambda n, v: checks.choice(n, v, ("wall", "cpu")),
        "precision": lambda n, v: checks.choice(n, v, ("auto", "fp32", "bf16", "fp16")),
        "syntax_mask": checks.boolean,
        "random_state": checks.seed,
    }

    def __init__(self, *, representation: str = "selfies", latent_dim: int = 64, hidden: tuple[int, ...] = (256, 384),
                 embed_dim: int = 64, epochs: int | str = "auto", steps: int = 6000, max_minutes: float | None = None,
                 budget_clock: str = "wall",
                 batch_size: int = 128, lr: float = 2e-3, beta: float = 0.1, kl_warmup: float = 0.1,
                 free_bits: float = 0.0, word_dropout: float = 0.1, random_strings: int | str = "auto", k: int = 100,
                 max_length: int | None = None,
                 syntax_mask: bool = True, device: str = "auto", precision: str = "fp32",
                 random_state: int | None = 0, verbose: int = 0):
        self.representation, self.latent_dim, self.hidden, self.embed_dim = representation, latent_dim, hidden, embed_dim
        self.epochs, self.steps, self.max_minutes, self.batch_size, self.lr = epochs, steps, max_minutes, batch_size, lr
        self.budget_clock = budget_clock
        self.beta, self.kl_warmup, self.free_bits, self.word_dropout = beta, kl_warmup, free_bits, word_dropout
        self.random_strings = random_strings
        self.k, self.max_length, self.syntax_mask = k, max_length, syntax_mask
        self.device, self.precision, self.random_state, self.verbose = device, precision, random_state, verbose

    # -- molecules <-> token rows --------------------------------------------------------------------
    def _canonical(self, smiles, name: str, *, skip: bool) -> list[str]:
        smiles = as_smiles_list(smiles, name)
        canon, bad = tk.canonicalise(smiles)
        if bad and not skip:
            raise ValueError(invalid_message(name, bad, smiles) + "; remove or fix them.")
        if bad:
            msg = invalid_message(name, bad, smiles) + "; they were skipped."
            warnings.warn(msg, stacklevel=3)
        return [c for c in canon if c is not None]

    def _rows(self, canonical: list[str]) -> torch.Tensor:
        token_lists = [tk.to_tokens(s, self.representation) for s in canonical]
        rows, unknown = self.vocabulary_.encode(token_lists)
        if unknown:
            names = ", ".join(repr(t) for t, _ in unknown.most_common(SHOWN))
            msg = (f"{sum(unknown.values())} tokens not seen in training ({len(unknown)} kinds: {names}) were "
                   "scored as the unknown token.")
            warnings.warn(msg, stacklevel=3)
        return rows

    def _to_rows(self, smiles, name: str = "smiles") -> torch.Tensor:
        self._check_fitted()
        return self._rows(self._canonical(smiles, name, skip=False))

    def _to_smiles(self, rows: torch.Tensor) -> list[str | None]:
        return [tk.from_tokens(t, self.representation) for t in self.vocabulary_.decode(rows.cpu())]

    # -- fitting ---------------------------------------------------------------------------------------
    def fit(self, smiles, y=None, smiles_val=None):
        """Learn the vocabulary and the model from SMILES strings; invalid ones are reported and skipped."""
        self._check_params()
        n_given = len(as_smiles_list(smiles, "smiles"))
        canon = self._canonical(smiles, "smiles", skip=True)
        self.n_invalid_ = n_given - len(canon)
        if not canon:
            raise ValueError("None of the SMILES strings is a valid molecule; check the file's format (one SMILES per line).")
        token_lists = [tk.to_tokens(s, self.representation) for s in canon]
        seed = self._seed()
        self.random_strings_ = strings_per_molecule(self.random_strings, len(canon))
        if self.random_strings_ > 0:  # SMILES enumeration: other strings of the same molecules
            rng = np.random.default_rng(seed)
            token_lists += [t for s in canon for t in tk.randomized(s, self.random_strings_, rng, self.representation)]
        self.vocabulary_ = tk.Vocabulary.learn(token_lists)
        x, _ = self.vocabulary_.encode(token_lists)
        self.n_train_, self.max_train_tokens_ = len(canon), x.shape[1] - 1
        options = SequenceOptions(embed_dim=self.embed_dim, word_dropout=self.word_dropout)
        self.model_config_ = ModelConfig(family=FAMILY, input_shape=(x.shape[1],), latent_dim=self.latent_dim,
                                         hidden=tuple(self.hidden), n_categories=len(self.vocabulary_),
                                         likelihood="autoregressive_categorical", options=to_dict(options))
        torch.manual_seed(seed)
        self.model_ = build_sequence_vae(self.model_config_, options)
        epochs = epochs_for(self.epochs, self.steps, len(x), self.batch_size)
        total_steps = epochs * -(-len(x) // self.batch_size)
        cfg = TrainConfig(epochs=epochs, batch_size=self.batch_size, lr=self.lr, beta=self.beta,
                          kl_schedule="linear" if self.kl_warmup > 0 else "constant",
                          warmup_steps=int(self.kl_warmup * total_steps), free_bits=self.free_bits,
                          grad_clip=5.0, seed=seed, device=self.device, precision=self.precision,
                          progress=bool(self.verbose), **CONSTANT_LR)
        x_val = None if smiles_val is None else self._rows(self._canonical(smiles_val, "smiles_val", skip=True))
        lengths = (x != tk.SPECIALS.pad).sum(-1)
        with self._runtime():
            self.history_ = fit(self.model_, x, x_val=x_val, config=cfg, plan=LengthBucketed(lengths),
                                callbacks=[TimeBudget(self.max_minutes, self.budget_clock)])
            self.model_.eval()
            probe = x[torch.randperm(len(x), generator=torch.Generator().manual_seed(seed))[:2000]]
            self.active_units_ = active_units(self.model_, probe.to(self._device()))
        self.epochs_trained_ = len(self.history_.records)
        self.train_seconds_ = float(sum(r["seconds"] for r in self.history_.records))
        return self

    # -- latent space ----------------------------------------------------------------------------------
    def transform(self, smiles, *, return_std: bool = False):
        """Posterior means E_q[z|x], (N, latent_dim). Deterministic. With ``return_std`` also the
        posterior standard deviations: (means, stds)."""
        rows = self._to_rows(smiles).to(self._device())
        with self._runtime():
            if return_std:
                return tuple(t.numpy() for t in posterior_moments(self.model_, rows, batch_size=512))
            return posterior_means(self.model_, rows, batch_size=512).numpy()

    def decode(self, Z, *, method: str = "greedy", temperature: float = 1.0, width: int = 5,
               random_state: int | None = None) -> list[str | None]:
        """Molecules from latent vectors: ``greedy``, ``beam`` (width ``width``) or ``sample`` decoding.
        Canonical SMILES, None where the decoded string is not a molecule."""
        self._check_fitted()
        Z = np.asarray(Z, dtype=np.float32)
        if Z.ndim != 2 or Z.shape[1] != self.latent_dim or not np.isfinite(Z).all():
            raise ValueError(f"Z must be a finite (n, {self.latent_dim}) array, got shape {Z.shape}.")
        return self._to_smiles(self._decode_rows(torch.from_numpy(Z), method, temperature, width, random_state))

    def _decode_rows(self, z: torch.Tensor, method: str, temperature: float, width: int,
                     random_state: int | None, batch: int = 1000) -> torch.Tensor:
        if method not in ("greedy", "beam", "sample"):
            raise ValueError(f"Unknown decoding method {method!r}; choose 'greedy', 'beam' or 'sample'.")
        cap = self.max_length or 2 * self.max_train_tokens_
        dec, out = self.model_.decoder, []
        keep = (tk.SPECIALS.unknown,)
        grammar = None
        if self.representation in tk.SMILES_FORMS and self.syntax_mask:
            grammar = SmilesSyntax.factory(self.vocabulary_.tokens, tk.SPECIALS, close_after=self.max_train_tokens_,
                                           valence=True)
        with self._runtime(), torch.inference_mode(), torch.random.fork_rng(devices=[]):
            if random_state is not None:
                torch.manual_seed(random_state)
            for zb in z.to(self._device()).split(batch):
                if method == "beam":
                    rows = beam_search(dec, zb, width=width, max_len=cap, exclude=keep, constraint=grammar)
                else:
                    rows = generate(dec, zb, greedy=method == "greedy", temperature=temperature,
                                    max_len=cap, exclude=keep, constraint=grammar)
                out.append(rows.cpu())
        width_ = max(r.shape[1] for r in out)
        return torch.cat([torch.nn.functional.pad(r, (0, width_ - r.shape[1])) for r in out])

    def inverse_transform(self, Z) -> list[str | None]:
        """Greedy decoding of latent vectors (canonical SMILES, None where not a molecule)."""
        return self.decode(Z, method="greedy")

    def reconstruct(self, smiles) -> list[str | None]:
        """Greedy decoding of each molecule's posterior mean."""
        return self.inverse_transform(self.transform(smiles))

    def reconstruction_accuracy(self, smiles) -> float:
        """Fraction of valid molecules whose reconstruction is the same molecule (canonical SMILES)."""
        canon = self._canonical(smiles, "smiles", skip=True)
        rec = self.reconstruct(canon)
        return float(np.mean([a == b for a, b in zip(canon, rec)]))

    def sample(self, n_samples: int = 1, *, temperature: float = 1.0, random_state: int | None = None,
               strings: bool = False) -> list[str | None]:
        """z ~ p(z), then a sampled token sequence. Canonical SMILES (None where the decoded string is not a
        molecule); ``strings=True`` returns the decoded strings themselves (SMILES before any check)."""
        self._check_fitted()
        if int(n_samples) < 1:
            raise ValueError(f"n_samples must be at least 1, got {n_samples}.")
        if temperature <= 0:
            raise ValueError(f"temperature must be > 0, got {temperature}.")
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(self._seed() if random_state is None else random_state)
            z = self.model_.sample_latent(int(n_samples)).cpu()
            rows = self._decode_rows(z, "sample", temperature, 1, None)
        if strings:
            return [tk.raw_string(t, self.representation) for t in self.vocabulary_.decode(rows)]
        return self._to_smiles(rows)

    def interpolate(self, a: str, b: str, n: int = 8) -> list[str | None]:
        """Greedy decodings of ``n`` evenly spaced points on the line between the posterior means of two
        molecules (both ends included)."""
        if int(n) < 2:
            raise ValueError(f"n must be at least 2 (the two ends), got {n}.")
        za, zb = self.transform([a, b])
        t = np.linspace(0.0, 1.0, int(n), dtype=np.float32)[:, None]
        return self.inverse_transform((1 - t) * za + t * zb)

    # -- likelihood ------------------------------------------------------------------------------------
    def score_samples(self, smiles, *, k: int | None = None) -> np.ndarray:
        """Importance-weighted log p(x) per molecule with ``k`` samples (Burda et al. 2015), in nats
        (higher is better): the probability of the canonical string's token sequence."""
        rows = self._to_rows(smiles)
        with self._runtime():
            ll = log_likelihood(self.model_, rows.to(self._device()), k=self.k if k is None else int(k),
                                seed=self._seed())
        return ll.double().numpy()

    def score(self, smiles, y=None) -> float:
        """Mean log-likelihood per molecule in nats."""
        return float(np.mean(self.score_samples(smiles)))

    # -- persistence -----------------------------------------------------------------------------------
    def _fitted_state(self) -> dict:
        return {"vocabulary": self.vocabulary_.tokens, "n_train": self.n_train_,
                "max_train_tokens": self.max_train_tokens_, "n_invalid": self.n_invalid_, "active_units": self.active_units_,
                "epochs_trained": self.epochs_trained_, "train_seconds": self.train_seconds_,
                "history": self.history_.records if hasattr(self, "history_") else []}

    def _restore(self, state: dict) -> None:
        self.vocabulary_ = tk.Vocabulary(list(state["vocabulary"]))
        self.n_train_, self.max_train_tokens_ = state["n_train"], state["max_train_tokens"]
        self.n_invalid_ = state.get("n_invalid", 0)
        self.random_strings_ = strings_per_molecule(self.random_strings, self.n_train_)
        self.active_units_, self.epochs_trained_ = state["active_units"], state["epochs_trained"]
        self.train_seconds_ = state["train_seconds"]
        self.history_records_ = state.get("history", [])
        if len(self.vocabulary_) != self.model_config_.n_categories:
            raise ValueError("The saved vocabulary does not match the saved model; save the model again.")

