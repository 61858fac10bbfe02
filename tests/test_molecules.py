"""Molecules: tokenisation, MOSES metrics on hand-checked molecules, properties, MoleculeVAE, the CLI."""

from __future__ import annotations

import subprocess
import sys
import warnings
from unittest import mock

import numpy as np
import pytest
import torch

pytest.importorskip("rdkit")
pytest.importorskip("selfies")

from vaekit.apps.molecules import metrics as mm
from vaekit.apps.molecules import tokens as tk
from vaekit.apps.molecules.cli import main as cli_main
from vaekit.apps.molecules.cli import read_smiles
from vaekit.apps.molecules.estimator import MoleculeVAE, strings_per_molecule
from vaekit.apps.molecules.filters import passes_filters
from vaekit.apps.molecules.properties import cycle_penalty, logp, penalized_logp, sa, similarity

# small drug-like molecules made up for these tests (no ../shared/data in tests)
MOLECULES = [
    "CCO", "CCN", "CCC", "CCCO", "CCCN", "CC(C)O", "CC(=O)O", "CC(=O)N", "c1ccccc1", "c1ccncc1", "Cc1ccccc1",
    "Oc1ccccc1", "Nc1ccccc1", "CCOC(=O)C", "CC(=O)Nc1ccccc1", "c1ccc2ccccc2c1", "C1CCCCC1", "C1CCNCC1",
    "C1COCCN1", "CC(C)(C)O", "OCCO", "NCCN", "CCOCC", "CCCCO", "CCCCN", "c1ccoc1", "c1ccsc1", "Clc1ccccc1",
    "Fc1ccccc1", "COc1ccccc1", "CC(=O)OC", "O=C(O)c1ccccc1", "NC(=O)c1ccccc1", "CCc1ccccc1", "CN(C)C",
    "C1CC1", "C1CCC1", "CC1CCCCC1", "OC1CCCCC1", "NC1CCCCC1",
]


def mol(s):
    return tk.to_mol(s)


# -- tokens ----------------------------------------------------------------------------------------
def test_canonical_form_is_shared_by_equivalent_smiles_and_invalid_is_none():
    assert tk.canonical("OCC") == tk.canonical("C(O)C") == "CCO"
    assert tk.canonical("C1CC") is None and tk.canonical("") is None and tk.canonical("xyz") is None


def test_smiles_regex_tokens_join_back_and_group_bracket_atoms():
    s = "C[C@@H](Br)c1ccc(Cl)cc1[NH3+]"
    toks = tk.smiles_tokens(s)
    assert "".join(toks) == s
    assert "[C@@H]" in toks and "Br" in toks and "Cl" in toks and "[NH3+]" in toks


@pytest.mark.parametrize("rep", tk.REPRESENTATIONS)
def test_tokens_round_trip_to_the_same_molecule(rep):
    for s in ["CC(=O)Nc1ccccc1", "C[C@@H](N)C(=O)[O-]", "c1ccc2ccccc2c1"]:
        c = tk.canonical(s)
        assert tk.from_tokens(tk.to_tokens(c, rep), rep) == c


def test_kekule_form_has_no_aromatic_atoms_and_one_string_per_molecule():
    for a, b in [("c1ccccc1O", "Oc1ccccc1"), ("Cc1cc[nH]c1", "Cc1c[nH]cc1")]:
        ka, kb = tk.kekule(tk.canonical(a)), tk.kekule(tk.canonical(b))
        assert ka == kb and not any(ch in ka for ch in "cno")  # same molecule, same Kekule string
        assert "=" in ka and tk.canonical(ka) == tk.canonical(a)


@pytest.mark.parametrize("rep", tk.REPRESENTATIONS)
def test_randomized_strings_are_other_strings_of_the_same_molecule(rep):
    canon = tk.canonical("CC(=O)Nc1ccc(O)cc1")
    lists = tk.randomized(canon, 12, np.random.default_rng(0), rep)
    assert len(lists) == 12
    assert {tk.from_tokens(t, rep) for t in lists} == {canon}  # every one is the molecule
    assert len({"".join(t) for t in lists} - {"".join(tk.to_tokens(canon, rep))}) >= 6  # mostly other strings
    again = tk.randomized(canon, 12, np.random.default_rng(0), rep)
    assert again == lists  # the generator decides the strings
    if rep == "kekule_smiles":
        assert not any(ch in "".join(t) for t in lists for ch in "cno")
    assert tk.randomized("not a molecule", 3, np.random.default_rng(0), rep) == []


def test_random_strings_train_on_more_strings_of_the_same_molecules():
    plain = small_vae(epochs=1).fit(MOLECULES)
    more = small_vae(epochs=1, random_strings=3).fit(MOLECULES)
    assert more.n_train_ == plain.n_train_ == len(MOLECULES)
    assert more.history_.records[0]["step"] == 4 * plain.history_.records[0]["step"] == 20  # 160 strings, batches of 8
    assert more.max_train_tokens_ >= plain.max_train_tokens_
    assert np.isfinite(more.score_samples(MOLECULES[:5])).all()
    with pytest.raises(ValueError, match="random_strings"):
        small_vae(random_strings=-1).fit(MOLECULES)
    with pytest.raises(ValueError, match="random_strings must be an integer.*'auto'"):
        small_vae(random_strings="many").fit(MOLECULES)


def test_random_strings_auto_adds_other_strings_for_small_training_sets_only(tmp_path):
    rule = [strings_per_molecule("auto", n) for n in (40, 5_000, 12_500, 20_000, 24_445)]
    assert rule == [20, 20, 10, 0, 0] and strings_per_molecule(3, 40) == 3
    auto = small_vae(epochs=1, random_strings="auto").fit(MOLECULES)
    assert auto.random_strings_ == 20 and auto.history_.records[0]["step"] == 21 * len(MOLECULES) // 8
    auto.save(tmp_path / "m")
    assert MoleculeVAE.load(tmp_path / "m").random_strings_ == 20


def test_vocabulary_maps_unseen_tokens_to_the_unknown_slot_without_a_length_cap():
    vocab = tk.Vocabulary.learn([["C", "O"], ["C", "C"]])
    assert vocab.tokens[:4] == list(tk.SPECIAL_NAMES) and vocab.tokens[4] == "C"
    rows, unknown = vocab.encode([["C", "[Se]", "O"], ["C"] * 30])
    assert rows.shape == (2, 31) and rows[0, 1] == tk.SPECIALS.unknown and unknown["[Se]"] == 1
    assert vocab.decode(rows)[1] == ["C"] * 30


def test_length_bucketed_plan_takes_every_row_once_in_batches_of_similar_length():
    from vaekit.apps.molecules.batching import LengthBucketed

    lengths = torch.randint(5, 60, (1000,), generator=torch.Generator().manual_seed(0))
    plan = LengthBucketed(lengths, pool=10)
    batches = plan.epoch(1000, 32, torch.Generator().manual_seed(1))
    assert len(batches) == plan.steps(1000, 32) == 32
    assert sorted(torch.cat(batches).tolist()) == list(range(1000))
    spread = np.mean([float(lengths[b].max() - lengths[b].min()) for b in batches])
    assert spread < 20  # random batches of 32 span about 50 (5..60)


# -- metrics on hand-checked molecules ---------------------------------------------------------------
def test_validity_uniqueness_and_novelty_by_hand():
    gen = ["CCO", "OCC", "c1ccccc1", "C1CC", None, "CCN"]  # 4 valid of 6; CCO twice (two spellings)
    assert mm.fraction_valid(gen) == pytest.approx(4 / 6)
    valid = mm.valid_canonical(gen)
    assert valid == ["CCO", "CCO", "c1ccccc1", "CCN"]
    assert mm.unique_at(valid, 4) == pytest.approx(3 / 4)
    assert mm.novelty(valid, {"CCO"}) == pytest.approx(2 / 3)  # benzene and ethylamine are new


def test_tanimoto_metrics_on_identical_and_disjoint_sets():
    fps = mm.fingerprints([mol("CCO")] * 3)
    assert mm.internal_diversity(fps) == pytest.approx(0.0)
    assert mm.snn(fps, fps) == pytest.approx(1.0)
    a, b = mm.fingerprints([mol("CCO")]), mm.fingerprints([mol("c1ccccc1")])
    # ethanol and benzene share no Morgan bit: IntDiv of the pair = 1 - (1 + 1 + 0 + 0) / 4
    assert float((a * b).sum()) == 0
    assert mm.internal_diversity(torch.cat([a, b])) == pytest.approx(0.5)


def test_fragment_and_scaffold_similarity():
    mols = [mol(s) for s in ["CC(=O)Nc1ccccc1", "c1ccc2ccccc2c1", "c1ccc(-c2ccccc2)cc1"]]
    assert mm.cosine(mm.fragments(mols), mm.fragments(mols)) == pytest.approx(1.0)
    scaf = mm.scaffolds(mols)
    assert set(scaf) == {"c1ccc2ccccc2c1", "c1ccc(-c2ccccc2)cc1"}  # benzene (one ring) is not counted
    assert mm.cosine(mm.Counter({"a": 1}), mm.Counter({"b": 1})) == 0.0


@pytest.mark.parametrize(("smiles", "passes"), [
    ("CC(=O)Nc1ccccc1", True), ("CCO", True),
    ("C[NH3+]", False),  # charged
    ("CCP", False),  # phosphorus is not an allowed atom
    ("C1CCCCCCC1", False),  # ring of 8
    ("CC1OC1", False),  # epoxide (MCF5)
    ("CCC=O", False),  # aldehyde (MCF7)
    ("O=C1C=CC(=O)C=C1", False),  # para-quinone (PAINS quinone_A)
])
def test_moses_filters(smiles, passes):
    assert passes_filters(mol(smiles)) is passes


def test_frechet_distance_matches_the_closed_form_and_fcd_is_zero_for_the_same_set():
    from vaekit.apps.molecules.fcd import frechet_distance, gaussian_stats

    mu1, mu2 = np.array([0.0, 1.0]), np.array([2.0, 1.0])
    s1, s2 = np.diag([1.0, 4.0]), np.diag([9.0, 4.0])
    # diagonal: sum (m1 - m2)^2 + (sqrt(v1) - sqrt(v2))^2 = 4 + (1 - 3)^2 + 0
    assert frechet_distance(mu1, s1, mu2, s2) == pytest.approx(8.0)
    stats = gaussian_stats(MOLECULES[:20])
    assert frechet_distance(*stats, *stats) == pytest.approx(0.0, abs=1e-4)
    other = gaussian_stats(MOLECULES[20:])
    assert frechet_distance(*stats, *other) > 0.1


def test_penalized_logp_matches_the_jtvae_score_and_similarity():
    # from opt.test.logP-SA of the JT-VAE repository (first line)
    assert penalized_logp(mol("COc1cc2c(cc1OC)CC([NH3+])C2")) == pytest.approx(-2.50504567445, abs=1e-6)
    ring9 = mol("C1CCCCCCCC1")
    assert cycle_penalty(ring9) == 3 and cycle_penalty(mol("C1CCCCC1")) == 0
    assert penalized_logp(ring9) == pytest.approx(logp(ring9) - sa(ring9) - 3)
    assert similarity("CCO", "OCC") == 1.0 and similarity("CCO", "c1ccccc1") == 0.0


def test_sequence_family_builds_through_the_registry_and_follows_the_model_record():
    from vaekit.apps.molecules.model import FAMILY
    from vaekit.config import ModelConfig, build_model
    from vaekit.objectives import elbo, iwae_bound

    cfg = ModelConfig(family=FAMILY, input_shape=(12,), latent_dim=4, hidden=(8, 16), n_categories=9,
                      likelihood="categorical", options={"embed_dim": 4})
    model = build_model(cfg).eval()
    x, _ = tk.Vocabulary(list(tk.SPECIAL_NAMES) + list("CNOPS")).encode([list("CCO"), list("NCCCS")])
    out = model(x, k=3)
    assert out.z.shape == (3, 2, 4) and out.px.log_prob(x).shape == (3, 2)
    terms = elbo(model, x)
    assert terms.elbo.shape == (2,) and torch.isfinite(terms.loss)
    assert torch.isfinite(iwae_bound(model, x, k=4).elbo).all()
    with pytest.raises(ValueError, match="Unknown sequence-model options"):
        build_model(ModelConfig(family=FAMILY, input_shape=(12,), hidden=(8, 16), n_categories=9, options={"bad": 1}))


# -- SMILES syntax mask ------------------------------------------------------------------------------
SYNTAX_TOKENS = [*tk.SPECIAL_NAMES, "C", "c", "N", "O", "[NH+]", "(", ")", "=", "#", "1", "2", "%10", ".", "F", "S",
                 "[O-]", "[N+]"]


def syntax_walk(tokens, valence=False):
    """Feed tokens one by one; return the index of the first token the mask refuses (None: all allowed)."""
    from vaekit.apps.molecules.grammar import SmilesSyntax

    ids = {t: i for i, t in enumerate(SYNTAX_TOKENS)}
    state = SmilesSyntax(SYNTAX_TOKENS, 1, valence=valence)
    for i, t in enumerate([*tokens, "<end>"]):
        j = ids[t]
        if not bool(state.allowed()[0, j]):
            return i
        state.advance(torch.tensor([j]))
    return None


@pytest.mark.parametrize("smiles", ["CCO", "C(=O)(N)O", "c1ccccc1", "C1CC2CC1CC2", "C%10CC%10", "C=1CCC=1",
                                    "[NH+](C)(C)C", "CC(C(C)C)C", "C.N", "N#C", "C1CC1(C)N", "C12CC1CC2",
                                    "C1CC(CC1)C"])
def test_syntax_mask_allows_every_valid_smiles(smiles):
    assert syntax_walk(tk.smiles_tokens(smiles)) is None
    assert syntax_walk(tk.smiles_tokens(smiles), valence=True) is None
    assert tk.to_mol(smiles) is not None


@pytest.mark.parametrize("smiles", ["CS(=O)(=O)N", "C[N+](=O)[O-]", "C=1CCC=1", "C1=CC=CC=C1", "N#CC(F)(F)F",
                                    "O=C=O", "C(C)(C)(C)C", "FC(F)=C(F)F", "[NH+]1CCCC1", "C1CC=1",
                                    # inside rings: side groups that end a branch (F, =O) while the ring is open
                                    "C1CC(F)CC1", "O=C1CCC(=O)N1", "C1=CC(=O)C=CC1=O", "C1CC(C(=O)[O-])C1",
                                    "C1CCC2(CC1)CC2", "C(C1)CC1"])
def test_valence_mask_allows_molecules_at_their_full_valence(smiles):
    assert syntax_walk(tk.smiles_tokens(smiles), valence=True) is None
    assert tk.to_mol(smiles) is not None


@pytest.mark.parametrize("smiles, refused_at", [
    ("F(C)C", 4), ("C=N#C", 3), ("CC(C)(C)(C)C", 11), ("O=C=O=C", 5), ("C1=CC=C1=O", 8),
    ("[O-]C=[O-]", 3), ("N1(C)CC=1", 8),
])
def test_valence_mask_refuses_an_atom_past_its_valence(smiles, refused_at):
    assert syntax_walk(tk.smiles_tokens(smiles)) is None  # the syntax alone allows it ...
    assert syntax_walk(tk.smiles_tokens(smiles), valence=True) == refused_at
    assert tk.to_mol(smiles) is None  # ... RDKit does not


@pytest.mark.parametrize("smiles, refused_at", [
    ("(C)", 0), ("=C", 0), ("1CC1", 0),  # nothing to attach to at the start
    ("C(C", 3), ("C1CC", 4), ("CC=", 3),  # the end needs every branch and ring closed, no dangling bond
    ("C11", 2),  # a ring label cannot close on the atom that opened it
    ("C()", 2), ("C(=)", 3), ("C)C", 1),  # an empty branch, a bond into nothing, a close with none open
    ("C(1)", 2), ("C==C", 2), ("C.(C)", 2),
    ("C1C1", 3), ("C1(C1)", 4), ("C12CC21", 6),  # a ring bond repeating a bond: chained atoms, the same pair
])
def test_syntax_mask_refuses_what_smiles_forbids(smiles, refused_at):
    assert syntax_walk(tk.smiles_tokens(smiles)) == refused_at
    assert tk.to_mol(smiles) is None  # RDKit agrees these are not molecules


@pytest.mark.parametrize("greedy, beam", [(False, False), (True, False), (False, True)])
def test_masked_decoding_of_an_untrained_decoder_always_parses(greedy, beam):
    from rdkit import Chem

    from vaekit.apps.molecules.grammar import SmilesSyntax
    from vaekit.nets_recurrent import GRUDecoder
    from vaekit.sequence import beam_search, generate

    torch.manual_seed(0)
    dec = GRUDecoder(len(SYNTAX_TOKENS), 4, embed_dim=8, hidden=16)
    with torch.no_grad():
        dec.out.bias[2] += 1.0  # the end token likelier, so that greedy rows end
    z = torch.randn(200, 4) * 3
    mask = SmilesSyntax.factory(SYNTAX_TOKENS, close_after=20)  # after 20 tokens only closing moves
    vocab = tk.Vocabulary(SYNTAX_TOKENS)
    for constraint in (None, mask):
        if beam:
            rows = beam_search(dec, z, width=3, max_len=60, exclude=(3,), constraint=constraint)
        else:
            rows = generate(dec, z, greedy=greedy, max_len=60, exclude=(3,), constraint=constraint)
        ended = (rows == 2).any(-1) & ((rows == 2).float().argmax(-1) < 60)
        parsed = [bool(t) and Chem.MolFromSmiles("".join(t), sanitize=False) is not None for t in vocab.decode(rows)]
        ok = sum(p for p, e in zip(parsed, ended.tolist()) if e)
        if constraint is None:
            assert ok < int(ended.sum()) or int(ended.sum()) < 20  # random weights write broken SMILES ...
        else:
            assert int(ended.sum()) >= 150 and ok == int(ended.sum())  # ... and never with the mask


# -- MoleculeVAE ---------------------------------------------------------------------------------------
def small_vae(**kw):
    args = {"latent_dim": 8, "hidden": (32, 64), "embed_dim": 16, "epochs": 120, "batch_size": 8, "lr": 3e-3, "k": 8,
            "random_state": 0, "device": "cpu", "beta": 0.1, "word_dropout": 0.0, "kl_warmup": 0.0,
            "random_strings": 0}
    return MoleculeVAE(**{**args, **kw})


@pytest.fixture(scope="module")
def fitted():
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        vae = small_vae().fit([*MOLECULES, "C1CC", "not a molecule"])
    return vae, [str(w.message) for w in caught]


def test_fit_reports_and_skips_invalid_smiles(fitted):
    vae, messages = fitted
    assert vae.n_train_ == len(MOLECULES) and vae.n_invalid_ == 2
    assert any("2 of 42" in m and "'C1CC'" in m for m in messages)
    with pytest.raises(ValueError, match="None of the SMILES"):
        small_vae(epochs=1).fit(["C1CC", "xx"])
    with pytest.raises(ValueError, match="one string"):
        small_vae(epochs=1).fit("CCO")


def test_training_learns_the_molecules(fitted):
    vae, _ = fitted
    first, last = vae.history_.records[0], vae.history_.records[-1]
    assert last["train_elbo"] > first["train_elbo"] + 5  # nats per molecule
    assert vae.reconstruction_accuracy(MOLECULES) >= 0.5
    samples = vae.sample(50, random_state=0)
    assert len(samples) == 50 and sum(s is not None for s in samples) >= 45  # SELFIES: nearly always valid


def test_transform_is_deterministic_and_decode_is_consistent(fitted):
    vae, _ = fitted
    z1, z2 = vae.transform(MOLECULES[:5]), vae.transform(MOLECULES[:5])
    assert z1.shape == (5, 8) and np.array_equal(z1, z2)
    assert vae.inverse_transform(z1) == vae.reconstruct(MOLECULES[:5])
    assert len(vae.decode(z1, method="beam", width=3)) == 5
    loc, sd = vae.transform(MOLECULES[:5], return_std=True)
    assert np.array_equal(loc, z1) and sd.shape == (5, 8) and (sd > 0).all()
    path = vae.interpolate("CCO", "c1ccccc1", 5)
    assert len(path) == 5 and path[0] == vae.reconstruct(["CCO"])[0]


def test_scores_are_finite_for_unseen_tokens_and_longer_molecules(fitted):
    vae, _ = fitted
    long = "C" * 80  # longer than any training molecule
    with pytest.warns(UserWarning, match=r"\[Se\]"):
        ll = vae.score_samples(["CCO", "C[Se]C", long])
    assert np.isfinite(ll).all() and ll[0] > ll[2]
    with pytest.warns(UserWarning, match="not seen in training"):
        assert np.isfinite(vae.transform(["C[Se]C"])).all() and vae.reconstruct(["C[Se]C"])[0] is not None
    with pytest.raises(ValueError, match="not valid molecules"):
        vae.score_samples(["CCO", "C1CC"])


def test_score_samples_is_a_bound_that_tightens_with_k(fitted):
    vae, _ = fitted
    x = MOLECULES[:10]
    ll1, ll50 = vae.score_samples(x, k=1), vae.score_samples(x, k=50)
    assert ll50.mean() > ll1.mean()  # IWAE_k rises with k (Burda et al. 2015)


def test_save_load_gives_the_same_samples(fitted, tmp_path):
    vae, _ = fitted
    vae.save(tmp_path / "m")
    again = MoleculeVAE.load(tmp_path / "m")
    assert again.vocabulary_.tokens == vae.vocabulary_.tokens
    assert again.sample(20, random_state=3) == vae.sample(20, random_state=3)
    assert np.allclose(again.score_samples(MOLECULES[:4]), vae.score_samples(MOLECULES[:4]))
    with pytest.raises(ValueError, match="already holds"):
        vae.save(tmp_path / "m")


def test_smiles_representation_fits_and_decodes():
    vae = small_vae(representation="smiles", epochs=2).fit(MOLECULES[:20])
    assert all(t in vae.vocabulary_.tokens for t in ("C", "O", "("))
    assert len(vae.sample(10, random_state=0)) == 10
    strings = vae.sample(50, random_state=0, strings=True)  # the syntax mask is on by default for SMILES
    assert all(syntax_walk_ok(s, 2 * vae.max_train_tokens_) for s in strings if s)
    unmasked = vae.set_params(syntax_mask=False).sample(50, random_state=0, strings=True)
    assert unmasked != strings


def test_kekule_smiles_with_the_mask_samples_valid_molecules():
    vae = small_vae(representation="kekule_smiles", epochs=2).fit(MOLECULES)
    assert not any(t[:1].islower() for t in vae.vocabulary_.tokens[4:])  # no aromatic atoms: valences are exact
    masked = vae.sample(100, random_state=0)
    plain = vae.set_params(syntax_mask=False).sample(100, random_state=0)
    assert sum(m is not None for m in masked) >= 90 > sum(m is not None for m in plain) + 30
    assert all(m == tk.canonical(m) for m in masked if m)  # molecules come back as canonical (aromatic) SMILES


def syntax_walk_ok(smiles, cap):
    """The string parses, or decoding stopped it at the length cap."""
    from rdkit import Chem

    return Chem.MolFromSmiles(smiles, sanitize=False) is not None or len(tk.smiles_tokens(smiles)) >= cap


def test_property_head_and_optimisation_improve_with_rdkit_values(fitted):
    from vaekit.apps.molecules.optimize import fit_property_head, optimize, summarise

    vae, _ = fitted
    head, info = fit_property_head(vae, "logp", MOLECULES, epochs=20)
    assert info["n_molecules"] == len(MOLECULES)
    res = optimize(vae, head, ["CCO", "OCCO"], prop="logp", thresholds=(0.0, 1.0), steps=10, step_size=0.5,
                   neighbours=0)
    assert len(res) == 4
    ok = res[res["success"]]
    assert (ok["best_value"] > ok["start_value"]).all() and (res["improvement"] >= 0).all()
    assert not res[res["threshold"] == 1.0]["success"].any()  # only the molecule itself is that similar
    assert not res[res["threshold"] == 1.0]["any_found"].any()
    assert (res["any_found"] >= res["success"]).all()  # JT-VAE's success (any different molecule) includes ours
    assert res[res["threshold"] == 0.0]["any_found"].all()  # 10 steps of 0.5 decode to some other molecule
    summary = summarise(res)
    assert set(summary["threshold"]) == {0.0, 1.0} and (summary["success_any"] >= summary["success"]).all()
    # draws z ~ q(z|x_start) are decoded as well; they never lose what the path found
    seen = []
    decode = vae.decode
    with mock.patch.object(vae, "decode", side_effect=lambda Z, **kw: seen.append(Z) or decode(Z, **kw)):
        near = optimize(vae, head, ["CCO", "OCCO"], prop="logp", thresholds=(0.0, 1.0), steps=10, step_size=0.5,
                        neighbours=20)
    assert (near["candidates"].to_numpy() >= res["candidates"].to_numpy()).all()
    assert (near["improvement"].to_numpy() >= res["improvement"].to_numpy()).all()
    loc, sd = vae.transform(["CCO", "OCCO"], return_std=True)
    eps = (seen[-1].reshape(20, 2, -1) - loc) / sd  # standardised draws: about N(0, 1)
    assert len(seen) == 4 and abs(eps.mean()) < 0.25 and 0.8 < eps.std() < 1.2
    with pytest.raises(ValueError, match="0 or more"):
        optimize(vae, head, ["CCO"], prop="logp", neighbours=-1)


# -- command line ----------------------------------------------------------------------------------------
def test_cli_names_every_property_and_registers_without_heavy_imports():
    from vaekit.apps.molecules.cli import PROPERTY_NAMES
    from vaekit.apps.molecules.properties import PROPERTIES

    assert set(PROPERTY_NAMES) == set(PROPERTIES)
    code = ("import argparse, sys; from vaekit.apps.molecules.cli import add_commands; "
            "add_commands(argparse.ArgumentParser().add_subparsers()); "
            "print(any(m.startswith(('rdkit', 'selfies', 'fcd_torch')) for m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=280)
    assert out.stdout.strip() == "False", out.stderr


def test_read_smiles_formats_and_errors(tmp_path):
    (tmp_path / "a.txt").write_text("smiles\nCCO 1.5\n\nc1ccccc1\n")
    assert read_smiles(str(tmp_path / "a.txt")) == ["CCO", "c1ccccc1"]
    (tmp_path / "b.csv").write_text("id,SMILES\n1,CCO\n2,CCN\n")
    assert read_smiles(str(tmp_path / "b.csv")) == ["CCO", "CCN"]
    (tmp_path / "empty.txt").write_text("\n\n")
    with pytest.raises(ValueError, match="holds no SMILES"):
        read_smiles(str(tmp_path / "empty.txt"))
    with pytest.raises(FileNotFoundError):
        read_smiles(str(tmp_path / "missing.txt"))


def test_cli_fit_sample_evaluate_optimize(tmp_path, capsys):
    data = tmp_path / "train.smi"
    data.write_text("\n".join([*MOLECULES, "C1CC"]) + "\n")
    model = tmp_path / "mol"
    rc = cli_main(["molecules", "fit", str(data), "--out", str(model), "--epochs", "2", "--latent-dim", "8",
                   "--n-report", "30", "--test", str(data)])
    assert rc == 0
    assert (model / "report.md").is_file() and (model / "samples.png").is_file() and (model / "curves.png").is_file()
    assert "1 invalid skipped" in capsys.readouterr().out
    assert "20 other SMILES of each" in (model / "report.md").read_text()  # "auto" on 40 molecules
    new = tmp_path / "new.smi"
    assert cli_main(["molecules", "sample", str(model), "-n", "25", "--out", str(new)]) == 0
    assert len(new.read_text().splitlines()) == 25
    plain = tmp_path / "plain.smi"  # accepted for any model; it changes SMILES models only
    assert cli_main(["molecules", "sample", str(model), "-n", "5", "--out", str(plain), "--no-syntax-mask"]) == 0
    assert cli_main(["molecules", "evaluate", str(new), "--train", str(data)]) == 0
    assert '"valid"' in capsys.readouterr().out
    better = tmp_path / "better.csv"
    start = tmp_path / "start.smi"
    start.write_text("CCO\nCCN\n")
    assert cli_main(["molecules", "optimize", str(model), "--property", "qed", "--start", str(start),
                     "--train", str(data), "--out", str(better), "--steps", "3"]) == 0
    assert better.read_text().startswith("start,")
    worse = tmp_path / "worse.csv"
    assert cli_main(["molecules", "optimize", str(model), "--start", str(start), "--out", str(worse),
                     "--neighbours", "-1"]) == 2
    assert "0 or more" in capsys.readouterr().err and not worse.exists()
    start.write_text("CCO\nC1CC\n")  # an unclosed ring: refused before the property head is fitted
    import vaekit.apps.molecules.optimize as opt
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(opt, "fit_property_head", lambda *a, **k: pytest.fail("the head was fitted for a bad start"))
        assert cli_main(["molecules", "optimize", str(model), "--start", str(start), "--out", str(worse)]) == 2
    assert "not valid molecules" in capsys.readouterr().err and not worse.exists()
    assert cli_main(["molecules", "sample", str(model), "-n", "5", "--out", str(new)]) == 2  # exists
    assert "already exists" in capsys.readouterr().err
    odd = tmp_path / "odd"
    assert cli_main(["molecules", "fit", str(data), "--out", str(odd), "--random-strings", "some"]) == 2
    assert "random_strings must be an integer" in capsys.readouterr().err and not odd.exists()


def test_cli_bad_smiles_file_is_one_clear_error(tmp_path):
    bad = tmp_path / "bad.smi"
    bad.write_text("not_a_molecule\nC1CC\n")
    proc = subprocess.run([sys.executable, "-m", "vaekit.apps.molecules.cli", "molecules", "fit", str(bad),
                           "--out", str(tmp_path / "m"), "--epochs", "1"], capture_output=True, text=True, timeout=280)
    assert proc.returncode == 2
    assert proc.stderr.strip().splitlines()[-1].startswith("error: None of the SMILES strings is a valid molecule")
    assert "Traceback" not in proc.stderr
