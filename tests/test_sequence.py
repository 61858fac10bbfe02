"""The autoregressive categorical likelihood (vaekit.sequence) and the recurrent networks."""

from __future__ import annotations

import itertools
import math

import pytest
import torch

from vaekit.nets_recurrent import GRUDecoder, GRUEncoder, reverse_rows
from vaekit.sequence import (
    AutoregressiveCategorical,
    SequenceLikelihood,
    SpecialTokens,
    beam_search,
    check_sequences,
    generate,
)

S = SpecialTokens()
V = 6  # pad, start, end, unk + two tokens (ids 4, 5)
EMITTABLE = (S.unknown, 4, 5)  # symbols a sequence may hold (unknown included: it is scored, not generated)


def rows(seqs: list[tuple[int, ...]], width: int | None = None) -> torch.Tensor:
    width = width or max(len(s) for s in seqs) + 1
    x = torch.full((len(seqs), width), S.pad, dtype=torch.long)
    for i, s in enumerate(seqs):
        x[i, : len(s)] = torch.tensor(s, dtype=torch.long)
        x[i, len(s)] = S.end
    return x


def all_sequences(max_len: int, alphabet=EMITTABLE) -> list[tuple[int, ...]]:
    return [s for n in range(max_len + 1) for s in itertools.product(alphabet, repeat=n)]


@pytest.fixture(scope="module")
def decoder():
    torch.manual_seed(0)
    d = GRUDecoder(V, 3, embed_dim=5, hidden=8)
    with torch.no_grad():
        d.out.weight.mul_(4)  # peaked distributions make ordering mistakes visible
    return d.eval()


def test_probabilities_sum_to_one_over_all_sequences(decoder):
    seqs = all_sequences(3)  # 1 + 3 + 9 + 27 = 40 sequences of up to 3 tokens
    x = rows(seqs)
    z = torch.randn(2, 3)
    for i in range(2):
        px = AutoregressiveCategorical(decoder, z[i].expand(len(seqs), 3), max_len=3)
        total = float(px.log_prob(x).detach().double().exp().sum())
        assert total == pytest.approx(1.0, abs=1e-5)


def test_without_a_cap_the_mass_of_short_sequences_is_below_one_and_grows(decoder):
    z = torch.randn(1, 3)
    masses = []
    for n in (1, 2, 3):
        seqs = all_sequences(n)
        px = AutoregressiveCategorical(decoder, z.expand(len(seqs), 3))
        masses.append(float(px.log_prob(rows(seqs)).detach().double().exp().sum()))
    assert masses[0] < masses[1] < masses[2] < 1.0


def test_log_prob_is_the_product_of_step_probabilities(decoder):
    z = torch.randn(1, 3)
    seq = (4, 5, 5, 3, 4)
    h, token, expected = decoder.initial_state(z), torch.tensor([S.start]), 0.0
    for target in (*seq, S.end):
        logits, h = decoder.step(token, h, z)
        logits[:, [S.pad, S.start]] = -math.inf
        expected += float(logits.log_softmax(-1)[0, target])
        token = torch.tensor([target])
    got = AutoregressiveCategorical(decoder, z).log_prob(rows([seq]))
    assert float(got) == pytest.approx(expected, abs=1e-5)


def test_padding_is_masked_and_k_samples_score_each_row(decoder):
    x = rows([(4, 5), (5, 5, 4, 4)])
    z = torch.randn(3, 2, 3)  # (k, B, L)
    lp = AutoregressiveCategorical(decoder, z).log_prob(x)
    assert lp.shape == (3, 2)
    wide = torch.cat([x, torch.zeros(2, 5, dtype=torch.long)], 1)  # more padding
    assert torch.allclose(AutoregressiveCategorical(decoder, z).log_prob(wide), lp, atol=1e-6)
    for j in range(3):
        single = AutoregressiveCategorical(decoder, z[j]).log_prob(x)
        assert torch.allclose(single, lp[j], atol=1e-5)


def test_word_dropout_changes_the_score_and_zero_dropout_does_not(decoder):
    torch.manual_seed(1)
    x = rows([(4, 5, 5, 4, 5, 4, 4, 5)] * 4)
    px = AutoregressiveCategorical(decoder, torch.randn(4, 3))
    assert torch.equal(px.with_word_dropout(0.0).log_prob(x), px.log_prob(x))
    assert not torch.allclose(px.with_word_dropout(0.5).log_prob(x), px.log_prob(x))


def test_beam_search_finds_the_most_probable_sequence_and_greedy_follows_the_argmax(decoder):
    z = torch.randn(4, 3)
    seqs = all_sequences(3)
    x = rows(seqs)
    with torch.no_grad():
        for i in range(4):
            px = AutoregressiveCategorical(decoder, z[i].expand(len(seqs), 3), max_len=3)
            best = seqs[int(px.log_prob(x).argmax())]
            found = beam_search(decoder, z[i : i + 1], width=len(seqs), max_len=3)  # nothing excluded
            assert found[0].tolist()[: len(best) + 1] == [*best, S.end]
    greedy = AutoregressiveCategorical(decoder, z, max_len=3).greedy()
    assert torch.equal(beam_search(decoder, z, width=1, max_len=3, exclude=(S.unknown,)), greedy)


def test_samples_follow_the_model_probabilities(decoder):
    torch.manual_seed(2)
    z = torch.randn(1, 3)
    seqs = all_sequences(2, alphabet=(4, 5))
    n = 6000
    drawn = generate(decoder, z.expand(n, 3), max_len=2, exclude=(S.unknown,))
    check_sequences(drawn, S)
    counts = dict.fromkeys(seqs, 0)
    for row in drawn.tolist():
        counts[tuple(t for t in row if t not in (S.end, S.pad))] += 1
    # exact probabilities with the unknown token excluded: renormalise over the generated alphabet
    px = AutoregressiveCategorical(decoder, z.expand(len(seqs), 3), max_len=2)
    logits_mask = [s for s in all_sequences(2) if S.unknown not in s]
    assert len(logits_mask) == len(seqs)
    probs = []
    for s in seqs:  # p(s) with <unk> removed at every step = product of renormalised step probabilities
        h, token, p = decoder.initial_state(z), torch.tensor([S.start]), 1.0
        for t, target in enumerate((*s, S.end)):
            logits, h = decoder.step(token, h, z)
            logits[:, [S.pad, S.start, S.unknown]] = -math.inf
            if t == 2:
                logits[:] = -math.inf
                logits[:, S.end] = 0
            p *= float(logits.softmax(-1)[0, target])
            token = torch.tensor([target])
        probs.append(p)
    assert sum(probs) == pytest.approx(1.0, abs=1e-5)
    for s, p in zip(seqs, probs):
        se = math.sqrt(p * (1 - p) / n)
        assert abs(counts[s] / n - p) < 5 * se + 1e-3
    assert px.log_prob(rows(seqs)).exp().sum() < 1  # the unknown token keeps some mass under log_prob


def test_check_sequences_rejects_rows_without_an_end():
    check_sequences(rows([(4,), (5, 4)]), S)
    with pytest.raises(ValueError, match="end token"):
        check_sequences(torch.tensor([[4, 5, 0]]), S)
    with pytest.raises(ValueError, match="before its end"):
        check_sequences(torch.tensor([[4, S.end, 5, S.end]]), S)


def test_encoder_ignores_padding_and_reads_rows_backwards_correctly():
    torch.manual_seed(0)
    x = rows([(4, 5, 4), (5,), (4, 4, 5, 5, 5)])
    rev = reverse_rows(x, (x != S.pad).sum(-1))
    assert rev[0].tolist()[:4] == [S.end, 4, 5, 4] and rev[1].tolist()[:2] == [S.end, 5]
    enc = GRUEncoder(V, embed_dim=4, hidden=6).eval()
    h = enc(x)
    wide = torch.cat([x, torch.zeros(3, 4, dtype=torch.long)], 1)
    assert h.shape == (3, 12)
    assert torch.allclose(enc(wide), h, atol=1e-6)
    assert torch.allclose(enc(x[1:2]), h[1:2], atol=1e-6)  # a row's features do not depend on its batch


def test_likelihood_module_and_gradients(decoder):
    like = SequenceLikelihood(vocab_size=V)
    z = torch.randn(2, 3, requires_grad=True)
    px = like(decoder, z)
    lp = px.log_prob(rows([(4, 5), (5,)]))
    lp.sum().backward()
    assert torch.isfinite(z.grad).all() and z.grad.abs().sum() > 0
    assert like.mean(px).shape[0] == 2 and like.n_params == V
