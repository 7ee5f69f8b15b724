"""Train the saved tokenizers under data/tokenizers/ from the bundled corpora.

Usage::

    python data/scripts/make_tokenizers.py

Character vocabularies come from the training splits only: WEB and Shakespeare
train text, and the normalised transcripts of the synthetic speech train split.
The BPE tokenizers are byte-level BPE with 1,000 and 5,000 tokens learned on
the WEB train text, one paragraph per training example.
"""

from __future__ import annotations

import sys
from pathlib import Path

DATA_ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(DATA_ROOT.parent))
from mytorch.data.speech import load_manifest  # noqa: E402
from mytorch.data.text import load_text  # noqa: E402
from mytorch.data.tokenizers import BPETokenizer, CharTokenizer  # noqa: E402


def main() -> None:
    out_dir = DATA_ROOT / "tokenizers"
    out_dir.mkdir(exist_ok=True)
    web_train = load_text("web", "train")

    tokenizers = {
        "web_char": CharTokenizer.from_text(web_train),
        "shakespeare_char": CharTokenizer.from_text(load_text("shakespeare", "train")),
        "asr_char": CharTokenizer.from_text(
            "".join(utt.transcript for utt in load_manifest("train"))
        ),
    }
    paragraphs = [line for line in web_train.splitlines() if line]
    for name, size in (("web_bpe_1k", 1000), ("web_bpe_5k", 5000)):
        tokenizers[name] = BPETokenizer.train(paragraphs, vocab_size=size)

    for name, tokenizer in tokenizers.items():
        tokenizer.save(out_dir / f"{name}.json")
        print(f"tokenizers/{name}.json: vocab_size={tokenizer.vocab_size}")


if __name__ == "__main__":
    main()
