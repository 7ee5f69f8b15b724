"""Decoders of notebook 04 on a toy scorer (exact results by brute force) and on a small model."""

from __future__ import annotations

import itertools
import math

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from mytorch.lm.decoding import beam_search, greedy_decode, sample_decode, top_k_top_p_filter
from mytorch.lm.model import DecoderOnlyTransformer
from mytorch.lm.stepping import reorder_state, start_decoding

EOS = 2


def toy_table(vocab_size: int, max_len: int, seed: int, eos_bias: float = 0.0) -> torch.Tensor:
    """Log-probabilities (max_len, V, V): of the next token given the position and the last token."""
    generator = torch.Generator().manual_seed(seed)
    logits = torch.randn(max_len, vocab_size, vocab_size, generator=generator) * 2
    logits[..., EOS] += eos_bias
    logits[..., 0] = -math.inf  # the pad token is never generated
    return logits.log_softmax(dim=-1).double()


def toy_step(table: torch.Tensor):
    """A step function over `table`; its state is the position of each hypothesis, (B,)."""
    def step(tokens, position):
        return table[position, tokens], position + 1
    return step


def sequence_score(table: torch.Tensor, first: int, sequence: tuple[int, ...]) -> float:
    total, last = 0.0, first
    for position, token in enumerate(sequence):
        total += float(table[position, last, token])
        last = token
    return total


def brute_force_best(table, first, max_len, length_penalty):
    """The best sequence among all that end with EOS, or reach max_len, by normalised score."""
    vocab_size = table.shape[-1]
    best, best_score = None, -math.inf
    for length in range(1, max_len + 1):
        for sequence in itertools.product(range(1, vocab_size), repeat=length):
            if EOS in sequence[:-1] or (length < max_len and sequence[-1] != EOS):
                continue
            score = sequence_score(table, first, sequence) / length ** length_penalty
            if score > best_score:
                best, best_score = sequence, score
    return best, best_score


def strip(tokens: torch.Tensor) -> list[list[int]]:
    """Token rows without the pad_id (0) that follows the end of each hypothesis."""
    return [[t for t in row if t != 0] for row in tokens.tolist()]


@pytest.mark.parametrize("length_penalty", [0.0, 0.6, 1.0])
@pytest.mark.parametrize("seed", range(4))
def test_beam_matches_brute_force(seed, length_penalty):
    vocab_size, max_len = 5, 4
    table = toy_table(vocab_size, max_len, seed, eos_bias=1.0)
    first = torch.tensor([1, 3, 4])
    # 3 tokens besides pad and EOS can be live: 3 ** 3 = 27 beams are never short of room.
    tokens, scores = beam_search(toy_step(table), torch.zeros(3, dtype=torch.long), first,
                                 num_beams=27, max_new_tokens=max_len, eos_id=EOS,
                                 length_penalty=length_penalty)
    for row, start in enumerate(first.tolist()):
        expected, expected_score = brute_force_best(table, start, max_len, length_penalty)
        assert strip(tokens)[row] == list(expected), f"row {row}"
        assert scores[row].item() == pytest.approx(expected_score, abs=1e-9)


def test_beam_one_beam_equals_greedy():
    table = toy_table(6, 12, seed=5, eos_bias=1.5)
    first = torch.tensor([1, 3, 4, 5])
    start = torch.zeros(4, dtype=torch.long)
    greedy_tokens, greedy_scores = greedy_decode(toy_step(table), start, first, 12, eos_id=EOS)
    beam_tokens, beam_scores = beam_search(toy_step(table), start, first, num_beams=1,
                                           max_new_tokens=12, eos_id=EOS, length_penalty=0.0)
    assert strip(beam_tokens) == strip(greedy_tokens)
    torch.testing.assert_close(beam_scores, greedy_scores)


def test_one_beam_drops_second_eos():
    # Greedy takes A (0.6) over EOS (0.4), then A EOS (0.6 * 0.4 = 0.24 in all). A beam of one
    # must not finish the EOS it never kept, though that alone would score better (0.4).
    A, B = 3, 4
    table = torch.full((2, 5, 5), -math.inf, dtype=torch.float64)
    table[0, 1, A], table[0, 1, EOS] = math.log(0.6), math.log(0.4)
    table[1, A, EOS], table[1, A, A], table[1, A, B] = math.log(0.4), math.log(0.3), math.log(0.3)
    start, first = torch.zeros(1, dtype=torch.long), torch.tensor([1])
    beam, beam_scores = beam_search(toy_step(table), start, first, 1, 2, EOS, length_penalty=0.0)
    assert strip(beam) == [[A, EOS]]
    assert beam_scores.item() == pytest.approx(math.log(0.24))


@settings(max_examples=40, deadline=None)
@given(seed=st.integers(0, 2**16), eos_bias=st.floats(-1.0, 3.0))
def test_one_beam_greedy_any_scorer(seed, eos_bias):
    table = toy_table(6, 8, seed, eos_bias)
    first = torch.tensor([1, 3, 4, 5])
    start = torch.zeros(4, dtype=torch.long)
    greedy_tokens, greedy_scores = greedy_decode(toy_step(table), start, first, 8, eos_id=EOS)
    beam_tokens, beam_scores = beam_search(toy_step(table), start, first, 1, 8, EOS, length_penalty=0.0)
    assert strip(beam_tokens) == strip(greedy_tokens)
    torch.testing.assert_close(beam_scores, greedy_scores)


def test_beam_one_beam_equals_greedy_without_eos():
    # When EOS is never the best token, one beam is greedy whatever the length penalty.
    table = toy_table(6, 10, seed=6, eos_bias=-50.0)
    first = torch.tensor([1, 4])
    start = torch.zeros(2, dtype=torch.long)
    greedy_tokens, greedy_scores = greedy_decode(toy_step(table), start, first, 10, eos_id=EOS)
    beam_tokens, beam_scores = beam_search(toy_step(table), start, first, 1, 10, EOS, length_penalty=1.0)
    assert beam_tokens.tolist() == greedy_tokens.tolist()
    torch.testing.assert_close(beam_scores, greedy_scores / 10)


def test_beam_length_normalisation_prefers_longer():
    # "EOS" has log-probability log 0.5; "A EOS" has less in total (log 0.45) but more per token.
    A = 3
    table = torch.full((3, 5, 5), -math.inf, dtype=torch.float64)
    table[0, 1, EOS], table[0, 1, A] = math.log(0.5), math.log(0.5)
    table[1:, A, EOS], table[1:, A, A] = math.log(0.9), math.log(0.1)
    start, first = torch.zeros(1, dtype=torch.long), torch.tensor([1])
    normalised, _ = beam_search(toy_step(table), start, first, 2, 3, EOS, length_penalty=1.0)
    raw, _ = beam_search(toy_step(table), start, first, 2, 3, EOS, length_penalty=0.0)
    assert strip(normalised) == [[A, EOS]]
    assert strip(raw) == [[EOS]]


def test_greedy_pads_after_eos():
    table = toy_table(6, 8, seed=1, eos_bias=2.0)
    tokens, _ = greedy_decode(toy_step(table), torch.zeros(5, dtype=torch.long),
                              torch.tensor([1, 2, 3, 4, 5]), 8, eos_id=EOS)
    for row in tokens.tolist():
        if EOS in row:
            assert all(t == 0 for t in row[row.index(EOS) + 1:])


def allowed_sets(logits: torch.Tensor, top_k: int | None, top_p: float | None) -> list[set[int]]:
    """The tokens each row may sample, computed one row at a time in plain Python."""
    result = []
    for row in logits.tolist():
        order = sorted(range(len(row)), key=lambda i: -row[i])
        if top_k is not None:
            order = [i for i in order if row[i] >= row[order[top_k - 1]]]
        if top_p is not None:
            weights = [math.exp(row[i]) for i in order]
            total, mass, kept = sum(weights), 0.0, []
            for i, w in zip(order, weights):
                kept.append(i)
                mass += w / total
                if mass >= top_p:
                    break
            order = kept
        result.append(set(order))
    return result


@pytest.mark.parametrize("top_k, top_p", [(3, None), (None, 0.5), (None, 0.9), (5, 0.7), (1, None)])
def test_filter_keeps_exactly_allowed(top_k, top_p):
    logits = torch.randn(8, 12, generator=torch.Generator().manual_seed(0), dtype=torch.float64) * 2
    filtered = top_k_top_p_filter(logits, top_k, top_p)
    kept = [set(torch.nonzero(torch.isfinite(row)).flatten().tolist()) for row in filtered]
    assert kept == allowed_sets(logits, top_k, top_p)


def test_top_p_keeps_token_that_crosses_threshold():
    logits = torch.tensor([[0.5, 0.3, 0.2]]).log()
    kept = torch.isfinite(top_k_top_p_filter(logits, top_p=0.6)).tolist()
    assert kept == [[True, True, False]]


@pytest.mark.parametrize("top_k, top_p", [(3, None), (None, 0.6), (4, 0.8)])
def test_sampling_stays_in_allowed_set(top_k, top_p):
    table = toy_table(12, 30, seed=2)
    first = torch.arange(1, 12).repeat(4)
    start = torch.zeros(len(first), dtype=torch.long)
    generator = torch.Generator().manual_seed(0)
    tokens, _ = sample_decode(toy_step(table), start, first, 30, temperature=1.3, top_k=top_k,
                              top_p=top_p, generator=generator)
    for row, last in enumerate(first.tolist()):
        for position, token in enumerate(tokens[row].tolist()):
            allowed = allowed_sets(table[position, last].unsqueeze(0) / 1.3, top_k, top_p)[0]
            assert token in allowed, f"row {row}, position {position}: {token} not in {allowed}"
            last = token


def test_sampling_reproducible_with_generator():
    table = toy_table(10, 20, seed=3)
    first, start = torch.tensor([1, 2, 3]), torch.zeros(3, dtype=torch.long)
    runs = [sample_decode(toy_step(table), start, first, 20, generator=torch.Generator().manual_seed(7))
            for _ in range(2)]
    assert runs[0][0].tolist() == runs[1][0].tolist()


def test_reorder_state_nested():
    state = {"cache": [(torch.arange(3), torch.arange(3) * 10)], "position": torch.tensor([5, 6, 7])}
    reordered = reorder_state(state, torch.tensor([2, 2, 0]))
    assert reordered["cache"][0][1].tolist() == [20, 20, 0]
    assert reordered["position"].tolist() == [7, 7, 5]
    assert reorder_state(None, torch.tensor([0])) is None


@pytest.fixture(scope="module")
def small_model():
    torch.manual_seed(0)
    return DecoderOnlyTransformer(vocab_size=16, d_model=32, num_heads=4, num_layers=2, d_ff=64,
                                  max_len=64).double().eval()


def decode_both_ways(model, decoder, prompt, **kwargs):
    results = []
    for cached in (True, False):
        step, state, first = start_decoding(model, prompt, cached=cached)
        results.append(decoder(step, state, first, **kwargs))
    return results


def test_kv_cache_greedy_equals_recompute(small_model):
    prompt = torch.randint(5, 16, (3, 5), generator=torch.Generator().manual_seed(1))
    (cached_tokens, cached_scores), (tokens, scores) = decode_both_ways(
        small_model, greedy_decode, prompt, max_new_tokens=20)
    assert cached_tokens.tolist() == tokens.tolist()
    torch.testing.assert_close(cached_scores, scores, rtol=0, atol=1e-10)


def test_kv_cache_beam_equals_recompute(small_model):
    prompt = torch.randint(5, 16, (2, 4), generator=torch.Generator().manual_seed(2))
    (cached_tokens, cached_scores), (tokens, scores) = decode_both_ways(
        small_model, beam_search, prompt, num_beams=4, max_new_tokens=15, eos_id=EOS)
    assert cached_tokens.tolist() == tokens.tolist()
    torch.testing.assert_close(cached_scores, scores, rtol=0, atol=1e-10)


def test_kv_cache_sampling_equals_recompute(small_model):
    prompt = torch.randint(5, 16, (4, 1), generator=torch.Generator().manual_seed(3))
    results = []
    for cached in (True, False):
        step, state, first = start_decoding(small_model, prompt, cached=cached)
        results.append(sample_decode(step, state, first, 25, top_k=8, top_p=0.95,
                                     generator=torch.Generator().manual_seed(4)))
    assert results[0][0].tolist() == results[1][0].tolist()
    torch.testing.assert_close(results[0][1], results[1][1], rtol=0, atol=1e-10)
