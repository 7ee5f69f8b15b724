"""Tests of the LibriSpeech loader and downloader on a fixture written by the test.

The download tests use file:// URLs only; no test contacts a network host.
"""

import hashlib
import tarfile

import numpy as np
import pytest
import soundfile as sf

from mytorch.data import librispeech
from mytorch.data.paths import DataNotFoundError
from mytorch.data.speech import read_manifest

TRANSCRIPTS = {
    "19-198-0000": "NORTHANGER ABBEY",
    "19-198-0001": "THIS LITTLE WORK WAS FINISHED IN THE YEAR EIGHTEEN O THREE",
    "84-121-0000": "GO DO YOU HEAR",
}


def write_subset(root, subset="dev-clean"):
    """Write a tiny LibriSpeech subset in the published folder layout."""
    by_chapter = {}
    for utt_id, words in TRANSCRIPTS.items():
        speaker, chapter, _ = utt_id.split("-")
        by_chapter.setdefault((speaker, chapter), []).append((utt_id, words))
    for (speaker, chapter), lines in by_chapter.items():
        folder = root / "LibriSpeech" / subset / speaker / chapter
        folder.mkdir(parents=True)
        for utt_id, _ in lines:
            tone = 0.2 * np.sin(np.arange(8000) / 10.0)
            sf.write(str(folder / f"{utt_id}.flac"), tone, 16000, format="FLAC")
        text = "".join(f"{utt_id} {words}\n" for utt_id, words in lines)
        (folder / f"{speaker}-{chapter}.trans.txt").write_text(text)
    return root / "LibriSpeech" / subset


def make_archive(tmp_path, subset="dev-clean"):
    """Pack a fixture subset into <mirror>/<subset>.tar.gz and return (mirror URL, MD5)."""
    source = tmp_path / "source"
    write_subset(source, subset)
    mirror = tmp_path / "mirror"
    mirror.mkdir()
    archive = mirror / f"{subset}.tar.gz"
    with tarfile.open(archive, "w:gz") as tar:
        tar.add(source / "LibriSpeech", arcname="LibriSpeech")
    return mirror.as_uri(), hashlib.md5(archive.read_bytes()).hexdigest()


def test_loader_reads_layout(tmp_path):
    write_subset(tmp_path)
    utterances = librispeech.load_librispeech(tmp_path, "dev-clean")
    assert [u.id for u in utterances] == sorted(TRANSCRIPTS)
    first = utterances[0]
    assert first.transcript == "northanger abbey"
    assert first.voice == "19"
    assert first.duration == pytest.approx(0.5)
    assert first.path.is_file()


def test_loader_skips_corrupt_flac(tmp_path):
    folder = write_subset(tmp_path)
    broken = folder / "84" / "121" / "84-121-0000.flac"
    broken.write_bytes(b"not a flac file")
    with pytest.warns(UserWarning) as record:
        utterances = librispeech.load_librispeech(tmp_path, "dev-clean")
    assert "84-121-0000" not in {u.id for u in utterances}
    assert len(utterances) == 2
    assert any(str(broken) in str(w.message) for w in record)
    assert any("skipped 1" in str(w.message) for w in record)


def test_missing_root_names_download_command(tmp_path):
    with pytest.raises(DataNotFoundError) as info:
        librispeech.load_librispeech(tmp_path / "nowhere", "test-clean")
    message = str(info.value)
    assert "LibriSpeech test-clean not found" in message
    assert f"python -m mytorch.data.librispeech download --root {tmp_path / 'nowhere'} --subsets test-clean" in message


def test_manifest_written_for_subset(tmp_path):
    write_subset(tmp_path)
    path = librispeech.write_subset_manifest(tmp_path, "dev-clean")
    assert path == tmp_path / "LibriSpeech" / "dev-clean.jsonl"
    utterances = read_manifest(path)
    assert len(utterances) == 3
    assert utterances[2].transcript == "go do you hear"
    assert utterances[2].path.is_file()


def test_download_verifies_and_unpacks(tmp_path):
    mirror, md5 = make_archive(tmp_path)
    root = tmp_path / "data"
    folders = librispeech.download(root, ["dev-clean"], mirror=mirror, checksums={"dev-clean": md5})
    assert folders == [root / "LibriSpeech" / "dev-clean"]
    assert (folders[0] / ".complete").exists()
    assert not (root / "downloads" / "dev-clean.tar.gz").exists()
    assert len(librispeech.load_librispeech(root, "dev-clean")) == 3
    # A second call finds the subset complete and downloads nothing.
    librispeech.download(root, ["dev-clean"], mirror="file:///nonexistent", checksums={"dev-clean": md5})


def test_download_resumes_partial_file(tmp_path):
    mirror, md5 = make_archive(tmp_path)
    archive_bytes = (tmp_path / "mirror" / "dev-clean.tar.gz").read_bytes()
    dest = tmp_path / "downloads" / "dev-clean.tar.gz"
    dest.parent.mkdir()
    half = len(archive_bytes) // 2
    (tmp_path / "downloads" / "dev-clean.tar.gz.partial").write_bytes(archive_bytes[:half])

    written = librispeech.download_file(f"{mirror}/dev-clean.tar.gz", dest, md5)
    assert written == len(archive_bytes) - half
    assert dest.read_bytes() == archive_bytes
    assert not (tmp_path / "downloads" / "dev-clean.tar.gz.partial").exists()


def test_download_checksum_mismatch(tmp_path):
    mirror, md5 = make_archive(tmp_path)
    dest = tmp_path / "downloads" / "dev-clean.tar.gz"
    with pytest.raises(librispeech.ChecksumError, match="does not match the published 0+"):
        librispeech.download_file(f"{mirror}/dev-clean.tar.gz", dest, "0" * 32)
    assert not dest.exists()
    assert not dest.with_name("dev-clean.tar.gz.partial").exists()


def test_download_corrupt_partial_detected(tmp_path):
    mirror, md5 = make_archive(tmp_path)
    dest = tmp_path / "downloads" / "dev-clean.tar.gz"
    dest.parent.mkdir()
    dest.with_name("dev-clean.tar.gz.partial").write_bytes(b"\0" * 100)
    with pytest.raises(librispeech.ChecksumError):
        librispeech.download_file(f"{mirror}/dev-clean.tar.gz", dest, md5)


def test_download_rejects_when_disk_too_small(tmp_path, monkeypatch):
    monkeypatch.setattr(librispeech.shutil, "disk_usage", lambda _: type("Usage", (), {"free": 10})())
    with pytest.raises(OSError, match="not enough free disk space"):
        librispeech.download(tmp_path, ["train-clean-100"], mirror="file:///nonexistent")


def test_required_bytes_counts_archive_and_contents():
    needed = librispeech.required_bytes(["dev-clean", "test-clean"])
    assert needed == int(338e6 * 1.05) + int(347e6 * 1.05) + 347_000_000
    assert librispeech.required_bytes(["dev-clean"], keep_archives=True) > 2 * 338e6


def test_published_checksums_present():
    for subset in librispeech.DEFAULT_SUBSETS:
        md5 = librispeech.ARCHIVES[subset].md5
        assert len(md5) == 32
        assert set(md5) <= set("0123456789abcdef")


def test_command_line_manifest(tmp_path, capsys):
    write_subset(tmp_path)
    librispeech.main(["manifest", "--root", str(tmp_path), "--subsets", "dev-clean"])
    assert "dev-clean.jsonl" in capsys.readouterr().out
