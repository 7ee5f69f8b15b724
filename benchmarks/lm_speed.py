"""Speed of the notebook-04 language model against plain baselines, measured side by side.

1. Training tokens/s of DecoderOnlyTransformer against the same stack built from
   torch.nn.TransformerEncoderLayer (pre-LN, ReLU, causal mask) at the same size.
2. Greedy decoding of --new-tokens tokens with the KV cache against recomputing the prefix.
3. Batched beam search (--beam-batch rows x --beams beams in one tensor) against a loop that
   calls the step function once per hypothesis.

Each pair is measured in alternation, --rounds times, and the median of each side is reported,
so that a load change on a shared machine affects both sides alike. Models have random weights:
speed does not depend on them. Run from the repository root:

    python benchmarks/lm_speed.py            # the full-size model of configs/04_causal_lm/full.yaml
"""

from __future__ import annotations

import argparse
import math
import os
import platform
import statistics
import time

import torch
from torch import nn

from mytorch.lm.decoding import beam_search, greedy_decode
from mytorch.lm.loss import lm_loss
from mytorch.lm.model import DecoderOnlyTransformer
from mytorch.lm.run import load_run_config, model_arguments
from mytorch.lm.stepping import reorder_state, start_decoding
from mytorch.training.trainer import resolve_precision
from mytorch.transformer import PositionalEncoding


class EncoderLayerLM(nn.Module):
    """The baseline: the course model's embedding, positions and head around nn.TransformerEncoderLayer."""

    def __init__(self, vocab_size, d_model, num_heads, num_layers, d_ff, max_len, dropout=0.0,
                 tie_weights=True):
        super().__init__()
        self.d_model = d_model
        self.embedding = nn.Embedding(vocab_size, d_model)
        self.positional = PositionalEncoding(d_model, max_len, dropout)
        layer = nn.TransformerEncoderLayer(d_model, num_heads, d_ff, dropout, batch_first=True, norm_first=True)
        self.encoder = nn.TransformerEncoder(layer, num_layers, enable_nested_tensor=False)
        self.norm = nn.LayerNorm(d_model)
        self.head = nn.Linear(d_model, vocab_size, bias=False)
        if tie_weights:
            self.head.weight = self.embedding.weight

    def forward(self, tokens):
        T = tokens.shape[1]
        mask = nn.Transformer.generate_square_subsequent_mask(T, device=tokens.device)
        x = self.positional(self.embedding(tokens) * math.sqrt(self.d_model))
        return self.head(self.norm(self.encoder(x, mask=mask, is_causal=True)))


def time_call(function) -> tuple[float, float]:
    """Run `function`; return its wall-clock seconds and this process's CPU seconds (all threads)."""
    wall, cpu = time.perf_counter(), time.process_time()
    function()
    return time.perf_counter() - wall, time.process_time() - cpu


def alternate(first, second, rounds: int, cpu: bool = False) -> tuple[float, float]:
    """Median seconds of `first` and of `second`, called in alternation after one warm-up each.

    cpu=True measures CPU seconds instead of wall-clock seconds. On a machine shared with other
    jobs, CPU time varies less with their load.
    """
    first(), second()
    index = 1 if cpu else 0
    times = [(time_call(first)[index], time_call(second)[index]) for _ in range(rounds)]
    return statistics.median(t for t, _ in times), statistics.median(t for _, t in times)


def training_throughput(arguments: dict, batch_size: int, block_size: int, steps: int, rounds: int,
                        precision: str, cpu: bool = False) -> tuple[float, float]:
    """Training tokens/s (or tokens per CPU second) of the course model and of the baseline."""
    generator = torch.Generator().manual_seed(0)
    data = torch.randint(5, arguments["vocab_size"], (steps, batch_size, block_size + 1), generator=generator)
    dtype = torch.bfloat16 if precision == "bf16" else None

    def trainer(model):
        optimizer = torch.optim.AdamW(model.parameters(), lr=1e-4, fused=True)

        def run():
            for chunk in data:
                with torch.autocast("cpu", dtype=dtype, enabled=dtype is not None):
                    loss = lm_loss(model(chunk[:, :-1]), chunk[:, 1:])
                loss.backward()
                nn.utils.clip_grad_norm_(model.parameters(), 1.0)
                optimizer.step()
                optimizer.zero_grad(set_to_none=True)
        return run

    torch.manual_seed(0)
    course = DecoderOnlyTransformer(**arguments).train()
    torch.manual_seed(0)
    baseline = EncoderLayerLM(**arguments).train()
    seconds = alternate(trainer(course), trainer(baseline), rounds, cpu)
    tokens = steps * batch_size * block_size
    return tokens / seconds[0], tokens / seconds[1]


@torch.no_grad()
def greedy_speed(model, prompt, new_tokens: int, rounds: int) -> tuple[float, float]:
    """Seconds of greedy decoding with the KV cache and with the prefix recomputed."""
    def decode(cached):
        def run():
            step, state, first = start_decoding(model, prompt, cached=cached)
            greedy_decode(step, state, first, new_tokens)
        return run
    return alternate(decode(True), decode(False), rounds)


@torch.no_grad()
def looped_beam_search(model, prompts, num_beams, max_new_tokens, eos_id, length_penalty=1.0):
    """Beam search with one step call per hypothesis, row by row: the baseline of batching."""
    results = []
    for prompt in prompts:
        step, state, first = start_decoding(model, prompt.unsqueeze(0))
        live = [(0.0, [], state, first)]  # (score, tokens, state, next input)
        finished = []
        for length in range(1, max_new_tokens + 1):
            candidates = []
            for score, tokens, state, last in live:
                log_probs, new_state = step(last, state)
                values, indices = log_probs[0].topk(2 * num_beams)
                for value, token in zip(values.tolist(), indices.tolist()):
                    candidates.append((score + value, tokens + [token], new_state))
            candidates.sort(key=lambda c: -c[0])
            live = []
            for score, tokens, state in candidates[: 2 * num_beams]:
                if tokens[-1] == eos_id:
                    finished.append((score / length ** length_penalty, tokens))
                elif len(live) < num_beams:
                    live.append((score, tokens, state, torch.tensor([tokens[-1]])))
            if length == max_new_tokens:
                finished += [(s / length ** length_penalty, t) for s, t, _, _ in live]
        results.append(max(finished)[1])
    return results


@torch.no_grad()
def beam_speed(model, prompts, num_beams, new_tokens, eos_id, rounds) -> tuple[float, float]:
    def batched():
        step, state, first = start_decoding(model, prompts)
        beam_search(step, state, first, num_beams, new_tokens, eos_id)

    def looped():
        looped_beam_search(model, prompts, num_beams, new_tokens, eos_id)

    return alternate(batched, looped, rounds)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--size", default="full", help="config of configs/04_causal_lm to take the model size from")
    parser.add_argument("--rounds", type=int, default=3, help="measurements of each side; the median is reported")
    parser.add_argument("--train-steps", type=int, default=5, help="optimizer steps per training measurement")
    parser.add_argument("--new-tokens", type=int, default=256, help="tokens generated by greedy decoding")
    parser.add_argument("--beam-batch", type=int, default=16, help="rows decoded by beam search")
    parser.add_argument("--beams", type=int, default=8, help="beams per row")
    parser.add_argument("--beam-tokens", type=int, default=32, help="tokens generated by beam search")
    parser.add_argument("--threads", type=int, default=None, help="torch.set_num_threads (default: torch's choice)")
    parser.add_argument("--batch-size", type=int, default=None,
                        help="training windows per step (default: the config's batch size)")
    parser.add_argument("--skip-decoding", action="store_true", help="measure training only")
    args = parser.parse_args()

    if args.threads:
        torch.set_num_threads(args.threads)
    config = load_run_config(args.size)
    arguments = model_arguments(config)
    precision = resolve_precision(config.training.precision, torch.device("cpu"))
    print(f"machine: {platform.processor() or platform.machine()}, {os.cpu_count()} CPUs, "
          f"{torch.get_num_threads()} torch threads, torch {torch.__version__}")
    print(f"model: {args.size} config, {arguments}, training precision {precision}")

    batch_size = args.batch_size or config.data.batch_size
    for cpu, unit in ((False, "tokens/s"), (True, "tokens per CPU second")):
        course, baseline = training_throughput(arguments, batch_size, config.data.block_size,
                                               args.train_steps, args.rounds, precision, cpu)
        print(f"training, batch {batch_size}: {course:,.0f} {unit} (course model) vs {baseline:,.0f} "
              f"(nn.TransformerEncoderLayer): {course / baseline:.2f}x")
    if args.skip_decoding:
        return

    # Decoding runs in float32 with room for the prompt and the new tokens.
    decode_arguments = {**arguments, "max_len": args.new_tokens + 16}
    torch.manual_seed(0)
    model = DecoderOnlyTransformer(**decode_arguments).eval()
    prompt = torch.randint(5, arguments["vocab_size"], (1, 8))
    cached, recomputed = greedy_speed(model, prompt, args.new_tokens, args.rounds)
    print(f"greedy, {args.new_tokens} new tokens: {cached:.2f} s with the KV cache vs {recomputed:.2f} s "
          f"recomputing the prefix: {recomputed / cached:.1f}x")

    prompts = torch.randint(5, arguments["vocab_size"], (args.beam_batch, 8))
    eos_id = 2  # a random model rarely picks it, so hypotheses run to the full length
    batched, looped = beam_speed(model, prompts, args.beams, args.beam_tokens, eos_id, max(1, args.rounds - 2))
    print(f"beam search, batch {args.beam_batch} x {args.beams} beams, {args.beam_tokens} new tokens: "
          f"{batched:.2f} s batched vs {looped:.2f} s looping over hypotheses: {looped / batched:.1f}x")


if __name__ == "__main__":
    main()
