"""Character and word error rates, and the results table of a speech recogniser.

Both rates are computed with jiwer at corpus level: the edits (substitutions, deletions,
insertions) of every utterance are summed and divided by the total length of the references,
so long utterances weigh more than short ones. Before scoring, references and hypotheses
go through `mytorch.data.text.normalize_transcript`: lower case, typographic apostrophes
made plain, every character other than a-z and an apostrophe inside a word made a space,
runs of spaces collapsed, and leading and trailing spaces removed. CER counts the spaces
between words as characters, WER splits on them.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import jiwer

from mytorch.data.text import normalize_transcript


def _normalized_pairs(references: Sequence[str], hypotheses: Sequence[str]) -> tuple[list[str], list[str]]:
    if len(references) != len(hypotheses):
        raise ValueError(f"got {len(references)} references but {len(hypotheses)} hypotheses")
    if not references:
        raise ValueError("cannot score an empty list of utterances")
    refs = [normalize_transcript(r) for r in references]
    empty = [i for i, r in enumerate(refs) if not r]
    if empty:
        raise ValueError(f"references {empty[:5]} are empty after normalisation; an error rate needs a reference")
    return refs, [normalize_transcript(h) for h in hypotheses]


def character_error_rate(references: Sequence[str], hypotheses: Sequence[str]) -> float:
    """Return the corpus-level CER of `hypotheses` against `references` (0.0 is perfect; may exceed 1)."""
    refs, hyps = _normalized_pairs(references, hypotheses)
    return float(jiwer.cer(refs, hyps))


def word_error_rate(references: Sequence[str], hypotheses: Sequence[str]) -> float:
    """Return the corpus-level WER of `hypotheses` against `references` (0.0 is perfect; may exceed 1)."""
    refs, hyps = _normalized_pairs(references, hypotheses)
    return float(jiwer.wer(refs, hyps))


@dataclass(frozen=True)
class SplitResult:
    """The error rates of one evaluation split, as fractions."""

    split: str
    cer: float
    wer: float
    utterances: int

    @classmethod
    def score(cls, split: str, references: Sequence[str], hypotheses: Sequence[str]) -> SplitResult:
        return cls(split, character_error_rate(references, hypotheses),
                   word_error_rate(references, hypotheses), len(references))


def results_table(results: Sequence[SplitResult]) -> str:
    """Return a Markdown table with one row per split: utterances, CER and WER in percent."""
    lines = ["| split | utterances | CER (%) | WER (%) |", "|---|---:|---:|---:|"]
    for result in results:
        lines.append(f"| {result.split} | {result.utterances} | {100 * result.cer:.1f} | {100 * result.wer:.1f} |")
    return "\n".join(lines)


def character_alignment(reference: str, hypothesis: str) -> list[tuple[str, str, str]]:
    """Align two strings character by character with the minimum number of edits.

    Returns (operation, reference_chars, hypothesis_chars) triples in order, where operation
    is "equal", "substitute", "delete" (reference characters missing from the hypothesis)
    or "insert" (hypothesis characters absent from the reference).
    """
    if not reference and not hypothesis:
        return []
    if not reference:
        return [("insert", "", hypothesis)]
    if not hypothesis:
        return [("delete", reference, "")]
    output = jiwer.process_characters(reference, hypothesis)
    pieces = []
    for chunk in output.alignments[0]:
        ref = reference[chunk.ref_start_idx:chunk.ref_end_idx]
        hyp = hypothesis[chunk.hyp_start_idx:chunk.hyp_end_idx]
        pieces.append((chunk.type, ref, hyp))
    return pieces
