"""Character and BPE tokenizers with one fixed set of special tokens.

Every tokenizer in the course reserves the same five ids, so models, losses
and decoders can rely on them without asking which tokenizer is in use:

====  ===========  ==============================================
 id   token        use
====  ===========  ==============================================
 0    ``<pad>``    padding; losses ignore it (``ignore_index=0``)
 1    ``<s>``      start of sequence (decoder input)
 2    ``</s>``     end of sequence (decoder target)
 3    ``<unk>``    a character or byte outside the vocabulary
 4    ``<blank>``  the CTC blank label
====  ===========  ==============================================

Saved tokenizers live in ``data/tokenizers/``: ``web_char``, ``web_bpe_1k``,
``web_bpe_5k`` (World English Bible train split), ``shakespeare_char`` and
``asr_char`` (normalised synthetic-speech training transcripts). Load them with
:func:`load_tokenizer`.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from pathlib import Path

from mytorch.data.paths import data_root, require_path

PAD, BOS, EOS, UNK, BLANK = "<pad>", "<s>", "</s>", "<unk>", "<blank>"
SPECIAL_TOKENS = (PAD, BOS, EOS, UNK, BLANK)
PAD_ID, BOS_ID, EOS_ID, UNK_ID, BLANK_ID = range(len(SPECIAL_TOKENS))
NUM_SPECIAL = len(SPECIAL_TOKENS)

TOKENIZER_NAMES = ("web_char", "web_bpe_1k", "web_bpe_5k", "shakespeare_char", "asr_char")
MAKE_TOKENIZERS_COMMAND = "python data/scripts/make_tokenizers.py"


class SpecialTokens:
    """The special-token ids as attributes, shared by every tokenizer class."""

    pad_id = PAD_ID
    bos_id = BOS_ID
    eos_id = EOS_ID
    unk_id = UNK_ID
    blank_id = BLANK_ID
    special_tokens = SPECIAL_TOKENS


class CharTokenizer(SpecialTokens):
    """Map each character to one id; ids below NUM_SPECIAL are the special tokens.

    Characters get ids in sorted order after the special tokens, so the same
    character set always gives the same vocabulary. Unknown characters encode
    to ``unk_id``.
    """

    def __init__(self, chars: Iterable[str]):
        self.chars = sorted(set(chars))
        if any(len(ch) != 1 for ch in self.chars):
            raise ValueError("CharTokenizer vocabulary entries must be single characters")
        self.id_to_token = list(SPECIAL_TOKENS) + self.chars
        self.char_to_id = {ch: i for i, ch in enumerate(self.chars, start=NUM_SPECIAL)}

    @classmethod
    def from_text(cls, text: str) -> CharTokenizer:
        """Build the vocabulary from every distinct character in ``text``."""
        return cls(set(text))

    @property
    def vocab_size(self) -> int:
        return len(self.id_to_token)

    def __len__(self) -> int:
        return self.vocab_size

    def encode(self, text: str) -> list[int]:
        return [self.char_to_id.get(ch, UNK_ID) for ch in text]

    def decode(self, ids: Iterable[int], strip_special: bool = True) -> str:
        """Join the characters of ``ids``; special tokens are dropped or spelled out."""
        pieces = []
        for i in ids:
            i = int(i)
            if i < NUM_SPECIAL:
                if not strip_special:
                    pieces.append(SPECIAL_TOKENS[i])
            else:
                pieces.append(self.id_to_token[i])
        return "".join(pieces)

    def save(self, path: str | Path) -> None:
        content = {"type": "char", "special_tokens": list(SPECIAL_TOKENS), "chars": self.chars}
        Path(path).write_text(json.dumps(content, ensure_ascii=False, indent=0) + "\n", encoding="utf-8")

    @classmethod
    def load(cls, path: str | Path) -> CharTokenizer:
        content = json.loads(Path(path).read_text(encoding="utf-8"))
        if content.get("type") != "char" or content.get("special_tokens") != list(SPECIAL_TOKENS):
            raise ValueError(f"{path} is not a character tokenizer with the special tokens {SPECIAL_TOKENS}")
        return cls(content["chars"])

    def __repr__(self) -> str:
        return f"CharTokenizer(vocab_size={self.vocab_size})"


class BPETokenizer(SpecialTokens):
    """Byte-level BPE from Hugging Face ``tokenizers``, with the fixed special ids.

    Byte-level BPE starts from the 256 byte values, so every string encodes
    without ``<unk>`` and ``decode(encode(s)) == s`` for any text, including
    text that spells a special token.
    """

    def __init__(self, backend):
        # backend: a tokenizers.Tokenizer whose first five ids are SPECIAL_TOKENS.
        for token_id, token in enumerate(SPECIAL_TOKENS):
            if backend.token_to_id(token) != token_id:
                raise ValueError(f"BPE vocabulary must map {token!r} to id {token_id}")
        # Text that happens to contain "<blank>" or "</s>" is encoded as plain
        # bytes; special ids come only from the code that adds them.
        backend.encode_special_tokens = True
        self.backend = backend

    @classmethod
    def train(cls, texts: Iterable[str], vocab_size: int) -> BPETokenizer:
        """Learn ``vocab_size`` tokens (special tokens and 256 bytes included) from ``texts``."""
        from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers

        backend = Tokenizer(models.BPE())
        # add_prefix_space=False keeps the round trip exact: no space is invented
        # before the first word.
        backend.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
        backend.decoder = decoders.ByteLevel()
        trainer = trainers.BpeTrainer(
            vocab_size=vocab_size,
            special_tokens=list(SPECIAL_TOKENS),
            initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
            show_progress=False,
        )
        backend.train_from_iterator(texts, trainer=trainer)
        return cls(backend)

    @property
    def vocab_size(self) -> int:
        return self.backend.get_vocab_size()

    def __len__(self) -> int:
        return self.vocab_size

    def encode(self, text: str) -> list[int]:
        return self.backend.encode(text, add_special_tokens=False).ids

    def decode(self, ids: Iterable[int], strip_special: bool = True) -> str:
        return self.backend.decode([int(i) for i in ids], skip_special_tokens=strip_special)

    def save(self, path: str | Path) -> None:
        self.backend.save(str(path))

    @classmethod
    def load(cls, path: str | Path) -> BPETokenizer:
        from tokenizers import Tokenizer

        return cls(Tokenizer.from_file(str(path)))

    def __repr__(self) -> str:
        return f"BPETokenizer(vocab_size={self.vocab_size})"


AnyTokenizer = CharTokenizer | BPETokenizer


def tokenizer_path(name: str) -> Path:
    """Return the path of a saved tokenizer, checking that it exists."""
    if name not in TOKENIZER_NAMES:
        raise ValueError(f"unknown tokenizer {name!r}; expected one of {TOKENIZER_NAMES}")
    path = data_root() / "tokenizers" / f"{name}.json"
    return require_path(path, f"the {name} tokenizer", MAKE_TOKENIZERS_COMMAND)


def load_tokenizer(name_or_path: str | Path) -> AnyTokenizer:
    """Load a tokenizer by name (e.g. ``"web_char"``) or from a JSON file path."""
    if isinstance(name_or_path, str) and name_or_path in TOKENIZER_NAMES:
        path = tokenizer_path(name_or_path)
    else:
        path = require_path(Path(name_or_path), "the tokenizer file", MAKE_TOKENIZERS_COMMAND)
    content = json.loads(path.read_text(encoding="utf-8"))
    if content.get("type") == "char":
        return CharTokenizer.load(path)
    return BPETokenizer.load(path)

