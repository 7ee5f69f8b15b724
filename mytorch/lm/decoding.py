"""Decoders over a step function: greedy, sampling with temperature, top-k and top-p, and
batched beam search. `mytorch.lm.stepping` describes the step-function interface.

Every decoder returns (tokens, scores): tokens (B, L) int contains the generated tokens of each
hypothesis, its end-of-sequence token included, then pad_id up to the longest one; scores (B,)
float is the summed log-probability of the generated tokens (beam search: divided by
length ** length_penalty).
"""

import math

import torch

from mytorch.registry import check_reference_available

check_reference_available(__name__)

from mytorch.lm.stepping import reorder_state  # noqa: E402


@torch.no_grad()
def greedy_decode(step, state, first_tokens, max_new_tokens, eos_id=None, pad_id=0):
    """Append the most probable token, up to max_new_tokens times or until every row ends.

    step, state: a step function and its initial state (see mytorch.lm.stepping).
    first_tokens: (B,) int, the first input of each row (for example its last prompt token).
    eos_id: the end-of-sequence token; a row that emits it is finished and gets pad_id after it.
        None decodes exactly max_new_tokens tokens.
    Returns (tokens (B, L), scores (B,)) with L <= max_new_tokens.
    """
    ### BEGIN SOLUTION
    B = first_tokens.shape[0]
    tokens = first_tokens
    scores = torch.zeros(B, device=first_tokens.device)
    finished = torch.zeros(B, dtype=torch.bool, device=first_tokens.device)
    generated = []
    for _ in range(max_new_tokens):
        log_probs, state = step(tokens, state)                        # (B, V)
        best = log_probs.argmax(dim=-1)                               # (B,)
        best_log_prob = log_probs.gather(-1, best.unsqueeze(-1)).squeeze(-1)
        scores = scores + best_log_prob.masked_fill(finished, 0.0)
        tokens = best.masked_fill(finished, pad_id)
        generated.append(tokens)
        if eos_id is not None:
            finished = finished | (tokens == eos_id)
            if finished.all():
                break
    tokens = torch.stack(generated, dim=1) if generated else first_tokens.new_zeros(B, 0)
    ### END SOLUTION
    return tokens, scores


def top_k_top_p_filter(logits, top_k=None, top_p=None):
    """Set to -inf the logits (B, V) of the tokens that top-k and then top-p sampling exclude.

    top_k: keep the k largest logits of each row (ties with the k-th are kept too).
    top_p: then keep the smallest set of most probable tokens whose probability (under
        softmax of the logits left) reaches top_p, so at least the most probable token.
    None disables a filter. Returns a new tensor; the input is not changed.
    """
    ### BEGIN SOLUTION
    V = logits.shape[-1]
    if top_k is not None and top_k < V:
        kth_largest = logits.topk(top_k, dim=-1).values[..., -1:]   # (B, 1)
        logits = logits.masked_fill(logits < kth_largest, -math.inf)
    if top_p is not None and top_p < 1.0:
        sorted_logits, order = logits.sort(dim=-1, descending=True)
        probs = sorted_logits.softmax(dim=-1)
        mass_before = probs.cumsum(dim=-1) - probs  # probability of the tokens ranked above
        remove_sorted = mass_before >= top_p       # the set already reached top_p without them
        remove = remove_sorted.scatter(-1, order, remove_sorted)   # back to vocabulary order
        logits = logits.masked_fill(remove, -math.inf)
    ### END SOLUTION
    return logits


@torch.no_grad()
def sample_decode(step, state, first_tokens, max_new_tokens, temperature=1.0, top_k=None,
                  top_p=None, eos_id=None, pad_id=0, generator=None):
    """Draw each next token from softmax(log_probs / temperature), filtered by top-k and top-p.

    Arguments as for greedy_decode; temperature must be positive. generator: an optional
    torch.Generator on the device of the log-probabilities, for reproducible samples.
    Returns (tokens (B, L), scores (B,)); scores sum the step function's log-probabilities of
    the drawn tokens, before temperature and filtering.
    """
    ### BEGIN SOLUTION
    if temperature <= 0:
        raise ValueError(f"temperature must be positive, got {temperature}; use greedy_decode for 0")
    B = first_tokens.shape[0]
    tokens = first_tokens
    scores = torch.zeros(B, device=first_tokens.device)
    finished = torch.zeros(B, dtype=torch.bool, device=first_tokens.device)
    generated = []
    for _ in range(max_new_tokens):
        log_probs, state = step(tokens, state)                                 # (B, V)
        logits = top_k_top_p_filter(log_probs / temperature, top_k, top_p)
        drawn = torch.multinomial(logits.softmax(dim=-1), 1, generator=generator)  # (B, 1)
        scores = scores + log_probs.gather(-1, drawn).squeeze(-1).masked_fill(finished, 0.0)
        tokens = drawn.squeeze(-1).masked_fill(finished, pad_id)
        generated.append(tokens)
        if eos_id is not None:
            finished = finished | (tokens == eos_id)
            if finished.all():
                break
    tokens = torch.stack(generated, dim=1) if generated else first_tokens.new_zeros(B, 0)
    ### END SOLUTION
    return tokens, scores


@torch.no_grad()
def beam_search(step, state, first_tokens, num_beams, max_new_tokens, eos_id, pad_id=0,
                length_penalty=1.0):
    """Return the best hypothesis of each row by beam search, all beams in one batch.

    The B rows become B * num_beams hypotheses, in the order (row 0: beams 0..K-1, row 1: ...).
    Each step extends every live hypothesis by every token and keeps, per row, the num_beams best
    extensions that do not end with eos_id. Extensions that end with eos_id and rank among the
    num_beams best of the step are finished, and so are the live ones after max_new_tokens steps.
    Finished hypotheses go to a separate pool of the num_beams best, ranked by
    score / length ** length_penalty (length counts eos_id). An eos_id extension ranked lower is
    dropped, because a beam that narrow would not have kept it. So one beam is greedy search.
    A row stops when no live hypothesis can beat its num_beams-th finished one any more.

    Returns (tokens (B, L), scores (B,)): the best finished hypothesis and its normalised score.
    """
    ### BEGIN SOLUTION
    B, K = first_tokens.shape[0], num_beams
    device = first_tokens.device
    rows = torch.arange(B, device=device).repeat_interleave(K)               # (B*K,)
    state = reorder_state(state, rows)
    tokens = first_tokens[rows]                                              # (B*K,)
    row_offset = torch.arange(B, device=device).unsqueeze(1) * K             # (B, 1)

    def normalize(scores, length):
        return scores / length ** length_penalty

    # Live hypotheses. At first only beam 0 of each row is live, so that the K identical
    # copies do not fill the beam with K copies of the same extension.
    live_scores = torch.full((B, K), -math.inf, device=device)
    live_scores[:, 0] = 0.0
    live_seqs = torch.zeros(B, K, 0, dtype=torch.long, device=device)
    # Finished hypotheses, padded to max_new_tokens; -inf marks an empty slot.
    done_scores = torch.full((B, K), -math.inf, device=device)
    done_seqs = torch.full((B, K, max_new_tokens), pad_id, dtype=torch.long, device=device)
    done_lengths = torch.zeros(B, K, dtype=torch.long, device=device)
    row_done = torch.zeros(B, dtype=torch.bool, device=device)

    def add_finished(scores, seqs, length):
        """Merge candidates (B, C) of `length` tokens into the pool of each row, keep the K best."""
        nonlocal done_scores, done_seqs, done_lengths
        scores = normalize(scores, length).masked_fill(row_done.unsqueeze(1), -math.inf)
        padded = torch.full((B, seqs.shape[1], max_new_tokens), pad_id, dtype=torch.long, device=device)
        padded[:, :, :length] = seqs
        all_scores = torch.cat([done_scores, scores], dim=1)
        all_seqs = torch.cat([done_seqs, padded], dim=1)
        all_lengths = torch.cat([done_lengths, torch.full_like(scores, length, dtype=torch.long)], dim=1)
        done_scores, best = all_scores.topk(K, dim=1)
        done_seqs = all_seqs.gather(1, best.unsqueeze(-1).expand(-1, -1, max_new_tokens))
        done_lengths = all_lengths.gather(1, best)

    for length in range(1, max_new_tokens + 1):
        log_probs, state = step(tokens, state)                               # (B*K, V)
        V = log_probs.shape[-1]
        candidates = (live_scores.unsqueeze(-1) + log_probs.view(B, K, V)).view(B, K * V)
        # 2K candidates contain at least K that do not end with EOS (one EOS per beam at most).
        top_scores, top_index = candidates.topk(2 * K, dim=1)                # (B, 2K)
        parent, token = top_index // V, top_index % V
        seqs = torch.cat([live_seqs.gather(1, parent.unsqueeze(-1).expand(-1, -1, length - 1)),
                          token.unsqueeze(-1)], dim=-1)                      # (B, 2K, length)

        is_eos = token == eos_id
        in_beam = torch.arange(2 * K, device=device) < K
        add_finished(top_scores.masked_fill(~(is_eos & in_beam), -math.inf), seqs, length)

        live_scores, pick = top_scores.masked_fill(is_eos, -math.inf).topk(K, dim=1)  # (B, K)
        live_seqs = seqs.gather(1, pick.unsqueeze(-1).expand(-1, -1, length))
        parent = parent.gather(1, pick)
        tokens = token.gather(1, pick).view(-1)
        if length == max_new_tokens:
            add_finished(live_scores, live_seqs, length)
            break

        # Log-probabilities are <= 0, so a live score s can at best stay s while the length
        # grows to any value in (length, max_new_tokens]; s / n ** penalty is largest at an end.
        best_live = live_scores[:, 0]
        bound = torch.maximum(normalize(best_live, length + 1), normalize(best_live, max_new_tokens))
        row_done = row_done | (done_scores[:, -1] >= bound)
        if row_done.all():
            break
        live_scores = live_scores.masked_fill(row_done.unsqueeze(1), -math.inf)
        state = reorder_state(state, (row_offset + parent).view(-1))

    longest = int(done_lengths[:, 0].max())
    tokens, scores = done_seqs[:, 0, :longest], done_scores[:, 0]
    ### END SOLUTION
    return tokens, scores
