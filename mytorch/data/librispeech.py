"""Download and read LibriSpeech (dev-clean, test-clean, train-clean-100 and others).

Command line::

    python -m mytorch.data.librispeech download --root DIR --subsets dev-clean test-clean
    python -m mytorch.data.librispeech manifest --root DIR --subsets dev-clean

``download`` states the disk space it needs and stops early if it is not
free, resumes a partial archive where it stopped, checks each archive against
the MD5 value that OpenSLR publishes for it, and unpacks it under
``DIR/LibriSpeech/<subset>/``. ``manifest`` writes ``DIR/LibriSpeech/<subset>.jsonl``
in the course's manifest format, for :class:`mytorch.data.speech.SpeechDataset`.

The loader reads the published layout: ``<subset>/<speaker>/<chapter>/`` contains
``<speaker>-<chapter>-<utterance>.flac`` files and a
``<speaker>-<chapter>.trans.txt`` file with one ``<utterance-id> <WORDS>`` line each.
"""

from __future__ import annotations

import argparse
import hashlib
import shutil
import tarfile
import urllib.request
import warnings
from dataclasses import dataclass
from pathlib import Path

import soundfile as sf

from mytorch.data.paths import DataNotFoundError
from mytorch.data.speech import Utterance, write_manifest
from mytorch.data.text import normalize_transcript

DEFAULT_MIRROR = "https://www.openslr.org/resources/12"


@dataclass(frozen=True)
class Archive:
    """A published LibriSpeech archive: its MD5 from OpenSLR's md5sum.txt and its approximate size."""

    md5: str
    approx_bytes: int


# MD5 values of OpenSLR resource 12. The sizes are rounded estimates, used only to
# check free disk space before a download starts.
# NOTE: these MD5 values agree with several independent public download scripts but have not
# been compared with openslr.org's own md5sum.txt. A wrong value would fail every download.
ARCHIVES = {
    "dev-clean": Archive("42e2234ba48799c1f50f24a7926300a1", 338_000_000),
    "dev-other": Archive("c8d0bcc9cca99d4f8b62fcc847357931", 315_000_000),
    "test-clean": Archive("32fa31d27d2e1cad72775fee3f4849a9", 347_000_000),
    "test-other": Archive("fb5a50374b501bb3bac4815ee91d3135", 329_000_000),
    "train-clean-100": Archive("2a93770f6d5c6c964bc36631d331a522", 6_400_000_000),
    "train-clean-360": Archive("c0e676e450a7ff2f54aeade5171606fa", 23_000_000_000),
}
DEFAULT_SUBSETS = ("dev-clean", "test-clean", "train-clean-100")
# FLAC audio hardly compresses further, so an unpacked subset takes about as
# much space as its archive. The archive and its contents coexist while unpacking.
UNPACKED_RATIO = 1.05
CHUNK_BYTES = 1 << 20


class ChecksumError(RuntimeError):
    """A downloaded archive does not match its published MD5."""


def download_command(root: str | Path, subsets=DEFAULT_SUBSETS) -> str:
    return f"python -m mytorch.data.librispeech download --root {root} --subsets {' '.join(subsets)}"


def required_bytes(subsets, keep_archives: bool = False) -> int:
    """Return the estimated peak disk use for downloading and unpacking ``subsets``.

    Archives are unpacked one at a time, so without ``keep_archives`` only the
    largest archive coexists with its unpacked copy.
    """
    sizes = [ARCHIVES[s].approx_bytes for s in subsets]
    unpacked = sum(int(size * UNPACKED_RATIO) for size in sizes)
    archives = sum(sizes) if keep_archives else max(sizes, default=0)
    return unpacked + archives


def download_file(url: str, dest: Path, expected_md5: str, progress: bool = False) -> int:
    """Download ``url`` to ``dest``, resuming ``dest.partial``, and return the bytes written.

    To resume, the request carries an HTTP Range header for the missing bytes. A server
    (or a file:// URL) that ignores it sends the whole file, and the bytes
    already on disk are then read and discarded. The finished file must match
    ``expected_md5``, otherwise it is deleted and ChecksumError is raised.
    """
    dest.parent.mkdir(parents=True, exist_ok=True)
    partial = dest.with_name(dest.name + ".partial")
    have = partial.stat().st_size if partial.exists() else 0

    request = urllib.request.Request(url, headers={"Range": f"bytes={have}-"} if have else {})
    written = 0
    with urllib.request.urlopen(request) as response:
        resumed_by_server = getattr(response, "status", None) == 206
        to_skip = 0 if resumed_by_server else have
        total = response.headers.get("Content-Length")
        if total is not None:
            total = int(total) + (have if resumed_by_server else 0)
        bar = _progress_bar(total, have, dest.name, progress)
        with partial.open("ab") as out:
            while True:
                chunk = response.read(CHUNK_BYTES)
                if not chunk:
                    break
                if to_skip:
                    skipped = min(to_skip, len(chunk))
                    chunk, to_skip = chunk[skipped:], to_skip - skipped
                out.write(chunk)
                written += len(chunk)
                if bar is not None:
                    bar.update(len(chunk))
        if bar is not None:
            bar.close()

    actual = file_md5(partial)
    if actual != expected_md5:
        partial.unlink()
        raise ChecksumError(
            f"{url}: MD5 {actual} does not match the published {expected_md5}; "
            f"the download was deleted, run the command again to fetch it anew"
        )
    partial.replace(dest)
    return written


def file_md5(path: Path) -> str:
    digest = hashlib.md5()
    with path.open("rb") as f:
        while chunk := f.read(CHUNK_BYTES):
            digest.update(chunk)
    return digest.hexdigest()


def unpack(archive: Path, root: Path) -> None:
    """Extract a LibriSpeech tar.gz under ``root`` (it creates ``root/LibriSpeech/``)."""
    with tarfile.open(archive) as tar:
        # The "data" filter rejects absolute paths, links out of root and
        # device files (Python 3.11.4 and later).
        tar.extractall(root, filter="data")


def download(
    root: str | Path,
    subsets=DEFAULT_SUBSETS,
    mirror: str = DEFAULT_MIRROR,
    keep_archives: bool = False,
    checksums: dict[str, str] | None = None,
    progress: bool = False,
) -> list[Path]:
    """Fetch, verify and unpack ``subsets`` under ``root``; return the subset folders.

    ``checksums`` overrides the published MD5 values (for a private mirror or
    a test). Subsets already unpacked (marked by a ``.complete`` file) are skipped.
    """
    root = Path(root).expanduser()
    root.mkdir(parents=True, exist_ok=True)
    unknown = [s for s in subsets if s not in ARCHIVES]
    if unknown:
        raise ValueError(f"unknown LibriSpeech subsets {unknown}; expected some of {sorted(ARCHIVES)}")

    pending = [s for s in subsets if not (root / "LibriSpeech" / s / ".complete").exists()]
    needed = required_bytes(pending, keep_archives)
    free = shutil.disk_usage(root).free
    print(f"LibriSpeech {', '.join(pending) or '(nothing to do)'}: needs about {needed / 1e9:.1f} GB "
          f"in {root}, {free / 1e9:.1f} GB free")
    if needed > free:
        raise OSError(f"not enough free disk space in {root}: about {needed / 1e9:.1f} GB needed, "
                      f"{free / 1e9:.1f} GB free")

    folders = []
    for subset in subsets:
        folder = root / "LibriSpeech" / subset
        if subset in pending:
            archive = root / "downloads" / f"{subset}.tar.gz"
            md5 = (checksums or {}).get(subset, ARCHIVES[subset].md5)
            if not archive.exists():
                download_file(f"{mirror.rstrip('/')}/{subset}.tar.gz", archive, md5, progress)
            unpack(archive, root)
            if not folder.is_dir():
                raise RuntimeError(f"{archive} did not contain LibriSpeech/{subset}/")
            (folder / ".complete").touch()
            if not keep_archives:
                archive.unlink()
        folders.append(folder)
    return folders


def subset_folder(root: str | Path, subset: str) -> Path:
    """Return ``root/LibriSpeech/<subset>``, raising DataNotFoundError with the fetch command."""
    folder = Path(root).expanduser() / "LibriSpeech" / subset
    if not folder.is_dir():
        raise DataNotFoundError(
            f"LibriSpeech {subset} not found: {folder} does not exist. "
            f"Fetch it with:\n    {download_command(root, [subset])}"
        )
    return folder


def load_librispeech(root: str | Path, subset: str) -> list[Utterance]:
    """Read the utterances of one unpacked subset, with normalised transcripts.

    Audio files that are missing or whose header cannot be read are skipped
    with one warning each and a summary warning.
    """
    folder = subset_folder(root, subset)
    utterances, skipped = [], []
    for transcript_file in sorted(folder.glob("*/*/*.trans.txt")):
        for line in transcript_file.read_text(encoding="utf-8").splitlines():
            if not line.strip():
                continue
            utt_id, _, words = line.partition(" ")
            audio = transcript_file.parent / f"{utt_id}.flac"
            try:
                info = sf.info(str(audio))
            except (RuntimeError, OSError) as error:
                warnings.warn(f"skipping unreadable audio file {audio}: {error}", stacklevel=2)
                skipped.append(audio)
                continue
            utterances.append(Utterance(
                id=utt_id,
                path=audio.resolve(),
                transcript=normalize_transcript(words),
                duration=round(info.frames / info.samplerate, 3),
                voice=utt_id.split("-")[0],
                split=subset,
            ))
    if skipped:
        warnings.warn(f"skipped {len(skipped)} unreadable audio files in {folder}", stacklevel=2)
    if not utterances:
        raise DataNotFoundError(f"no utterances found under {folder}; is the download complete? "
                                f"Fetch it again with:\n    {download_command(root, [subset])}")
    return utterances


def write_subset_manifest(root: str | Path, subset: str) -> Path:
    """Write ``root/LibriSpeech/<subset>.jsonl`` and return its path."""
    utterances = load_librispeech(root, subset)
    path = Path(root).expanduser() / "LibriSpeech" / f"{subset}.jsonl"
    write_manifest(path, utterances)
    return path


def _progress_bar(total: int | None, initial: int, name: str, enabled: bool):
    if not enabled:
        return None
    from tqdm.auto import tqdm

    return tqdm(total=total, initial=initial, unit="B", unit_scale=True, desc=name)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description="Download and index LibriSpeech.")
    commands = parser.add_subparsers(dest="command", required=True)
    for name, help_text in (("download", "download, verify and unpack subsets"),
                            ("manifest", "write a JSON-lines manifest per unpacked subset")):
        command = commands.add_parser(name, help=help_text)
        command.add_argument("--root", type=Path, required=True, help="folder that contains (or will contain) LibriSpeech/")
        command.add_argument("--subsets", nargs="+", default=list(DEFAULT_SUBSETS), choices=sorted(ARCHIVES))
    download_parser = commands.choices["download"]
    download_parser.add_argument("--mirror", default=DEFAULT_MIRROR, help="base URL of the archives")
    download_parser.add_argument("--keep-archives", action="store_true", help="keep the .tar.gz files")
    args = parser.parse_args(argv)

    if args.command == "download":
        for folder in download(args.root, args.subsets, args.mirror, args.keep_archives, progress=True):
            print(folder)
    for subset in args.subsets:
        print(write_subset_manifest(args.root, subset))


if __name__ == "__main__":
    main()
