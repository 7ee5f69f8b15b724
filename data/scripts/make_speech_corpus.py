"""Build the synthetic multi-speaker speech corpus and the real-speech test set.

Needs the Debian packages flite, festival, festvox-kallpc16k, festvox-kdlpc16k,
festvox-us-slt-hts, espeak-ng, opus-tools and pocketsphinx-testdata, and the
course's Python environment (torch, torchaudio, soundfile). Usage::

    python data/scripts/make_speech_corpus.py            # all splits, all cores
    python data/scripts/make_speech_corpus.py --jobs 2 --train 8000

Output under data/speech/:

* ``synth/{split}.jsonl`` and ``synth/audio/{split}/*.opus`` for the splits
  train, dev, test (seen voices, disjoint sentences) and test_unseen_voices.
* ``real/test.jsonl`` and ``real/audio/*.flac``: LibriVox clips from
  pocketsphinx-testdata.

Every random choice comes from ``--seed`` and the utterance id, so a rebuild
with the same engines and package versions produces identical files.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import math
import os
import random
import shutil
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ProcessPoolExecutor, as_completed
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import soundfile as sf

DATA_ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(DATA_ROOT.parent))
from mytorch.data.text import load_text, normalize_transcript, split_sentences  # noqa: E402

SAMPLE_RATE = 16000
OPUS_BITRATE_KBPS = 16
MIN_WORDS, MAX_WORDS = 4, 12
# Festival and espeak-ng calls are batched per voice so that festival loads a
# voice once per chunk, not once per utterance.
CHUNK_SIZE = 40
LIBRIVOX_DIR = Path("/usr/share/pocketsphinx/test/data/librivox")


@dataclass(frozen=True)
class Voice:
    """One synthetic speaker: a TTS engine and its voice name (espeak-ng: language+variant)."""

    engine: str  # "flite", "festival" or "espeak-ng"
    name: str

    @property
    def id(self) -> str:
        return f"{self.engine}-{self.name}"


# Voices for train, dev and test. flite's slt and festival's HTS slt are both
# built from the CMU ARCTIC speaker slt, so they are seen together.
SEEN_VOICES = [
    Voice("flite", "kal16"),
    Voice("flite", "rms"),
    Voice("flite", "slt"),
    Voice("festival", "kal_diphone"),
    Voice("festival", "ked_diphone"),
    Voice("festival", "cmu_us_slt_arctic_hts"),
    Voice("espeak-ng", "en-us+m1"),
    Voice("espeak-ng", "en-us+f2"),
    Voice("espeak-ng", "en+m3"),
    Voice("espeak-ng", "en+f4"),
    Voice("espeak-ng", "en-gb-scotland+m2"),
    Voice("espeak-ng", "en-gb-x-rp+f1"),
    Voice("espeak-ng", "en-029+m4"),
    Voice("espeak-ng", "en-gb-x-rp+m7"),
]

# Voices never used in train, dev or test: flite's awb (a Scottish male speaker
# of CMU ARCTIC) and espeak-ng accents and variants absent above.
UNSEEN_VOICES = [
    Voice("flite", "awb"),
    Voice("espeak-ng", "en-gb-x-gbclan+f3"),
    Voice("espeak-ng", "en-gb-x-gbcwmd+m6"),
    Voice("espeak-ng", "en-us+klatt2"),
    Voice("espeak-ng", "en-029+f5"),
]


@dataclass(frozen=True)
class Job:
    """One utterance to synthesise, with its sampled prosody settings."""

    utt_id: str
    split: str
    voice: Voice
    text: str  # as written in the corpus
    transcript: str  # normalised for ASR
    speed: float  # tempo and pitch factor, applied by resampling
    rate: float  # engine speaking-rate factor
    pitch: int  # espeak-ng pitch, 0-99
    gain_db: float
    serial: int  # Ogg stream serial number, fixed for reproducible files


# --------------------------------------------------------------------------
# Sentences


def spoken_form(text: str) -> str:
    """Return an ASCII rendering for the engines: no quotes, dashes as pauses."""
    replacements = {"’": "'", "‘": "", "“": "", "”": "", '"': "", "—": ", ", "`": "'", "\\": " "}
    for old, new in replacements.items():
        text = text.replace(old, new)
    text = text.encode("ascii", "ignore").decode()
    return " ".join(text.split()).strip(" '")


def candidate_sentences(split: str) -> list[tuple[str, str]]:
    """Return (written, transcript) pairs of 4-12 words from one WEB split, deduplicated."""
    seen: set[str] = set()
    pairs = []
    for paragraph in load_text("web", split).splitlines():
        for sentence in split_sentences(paragraph):
            if any(ch.isdigit() for ch in sentence):
                continue
            transcript = normalize_transcript(sentence)
            if not MIN_WORDS <= len(transcript.split()) <= MAX_WORDS or transcript in seen:
                continue
            seen.add(transcript)
            pairs.append((sentence.strip("“”‘’\"' "), transcript))
    return pairs


def plan_jobs(args: argparse.Namespace) -> list[Job]:
    """Assign sentences and voices to every utterance of every split.

    Training sentences come from the WEB train text, dev sentences from the
    validation text and both test splits from the test text, so a language
    model trained on WEB train has seen none of the evaluation transcripts.
    """
    rng = random.Random(args.seed)
    train_pool = candidate_sentences("train")
    dev_pool = candidate_sentences("validation")
    test_pool = candidate_sentences("test")
    # The three held-out text pools are disjoint books, but sentences such as
    # "he said" can repeat across books, so transcripts are checked as well.
    for pool in (train_pool, dev_pool, test_pool):
        rng.shuffle(pool)
    held_out = {t for _, t in dev_pool} | {t for _, t in test_pool}
    train_pool = [p for p in train_pool if p[1] not in held_out]
    dev_pool = [p for p in dev_pool if p[1] not in {t for _, t in test_pool}]

    plan = {
        "train": (train_pool[: args.train], SEEN_VOICES),
        "dev": (dev_pool[: args.dev], SEEN_VOICES),
        "test": (test_pool[: args.test], SEEN_VOICES),
        "test_unseen_voices": (test_pool[args.test: args.test + args.unseen], UNSEEN_VOICES),
    }
    jobs = []
    for split, (pairs, voices) in plan.items():
        for index, (text, transcript) in enumerate(pairs):
            utt_id = f"{split}-{index:05d}"
            utt_rng = random.Random(f"{args.seed}/{utt_id}")
            jobs.append(Job(
                utt_id=utt_id,
                split=split,
                voice=voices[index % len(voices)],
                text=text,
                transcript=transcript,
                speed=round(utt_rng.uniform(0.9, 1.1), 2),
                rate=round(utt_rng.uniform(0.85, 1.15), 2),
                pitch=utt_rng.randint(30, 70),
                gain_db=round(utt_rng.uniform(-9.0, -1.0), 1),
                serial=int(hashlib.sha256(utt_id.encode()).hexdigest()[:7], 16),
            ))
    return jobs


# --------------------------------------------------------------------------
# Synthesis


def synthesise_chunk(jobs: list[Job], workdir: Path) -> list[Path]:
    """Write one WAV per job with the jobs' shared voice and return the paths."""
    voice = jobs[0].voice
    wavs = [workdir / f"{job.utt_id}.wav" for job in jobs]
    if voice.engine == "festival":
        lines = [f"(voice_{voice.name})"]
        for job, wav in zip(jobs, wavs):
            spoken = spoken_form(job.text).replace('"', "")
            lines.append(f"(Parameter.set 'Duration_Stretch {1 / job.rate:.3f})")
            lines.append(f'(utt.save.wave (utt.synth (Utterance Text "{spoken}")) "{wav}" \'riff)')
        script = workdir / "chunk.scm"
        script.write_text("\n".join(lines) + "\n")
        subprocess.run(["festival", "--batch", str(script)], check=True, capture_output=True)
        return wavs

    for job, wav in zip(jobs, wavs):
        spoken = spoken_form(job.text)
        if voice.engine == "flite":
            command = ["flite", "-voice", voice.name,
                       "--setf", f"duration_stretch={1 / job.rate:.3f}",
                       "-t", spoken, "-o", str(wav)]
        elif voice.engine == "espeak-ng":
            command = ["espeak-ng", "-v", voice.name, "-s", str(round(165 * job.rate)),
                       "-p", str(job.pitch), "-w", str(wav), spoken]
        else:
            raise ValueError(f"unknown engine {voice.engine!r}")
        subprocess.run(command, check=True, capture_output=True)
    return wavs


def resample(waveform: np.ndarray, orig_freq: int, new_freq: int) -> np.ndarray:
    import torch
    import torchaudio.functional as F

    if orig_freq == new_freq:
        return waveform
    return F.resample(torch.from_numpy(waveform), orig_freq, new_freq).numpy()


def trim_silence(waveform: np.ndarray, threshold_db: float = 40.0, margin_s: float = 0.1) -> np.ndarray:
    """Cut leading and trailing frames quieter than the loudest frame minus threshold_db."""
    frame = SAMPLE_RATE // 100
    n_frames = len(waveform) // frame
    if n_frames == 0:
        return waveform
    frames = waveform[: n_frames * frame].reshape(n_frames, frame)
    energy_db = 10 * np.log10(np.mean(frames**2, axis=1) + 1e-12)
    voiced = np.flatnonzero(energy_db > energy_db.max() - threshold_db)
    margin = int(margin_s * SAMPLE_RATE)
    start = max(0, voiced[0] * frame - margin)
    end = min(len(waveform), (voiced[-1] + 1) * frame + margin)
    return waveform[start:end]


def encode_opus(waveform: np.ndarray, path: Path, serial: int) -> None:
    pcm = np.clip(np.round(waveform * 32767), -32768, 32767).astype("<i2").tobytes()
    subprocess.run(
        ["opusenc", "--quiet", "--raw", "--raw-bits", "16", "--raw-rate", str(SAMPLE_RATE),
         "--raw-chan", "1", "--bitrate", str(OPUS_BITRATE_KBPS), "--comp", "10",
         "--serial", str(serial), "-", str(path)],
        input=pcm, check=True,
    )


def process_chunk(jobs: list[Job], out_dir: Path) -> list[dict]:
    """Synthesise, post-process and encode a chunk, and return its manifest rows."""
    import torch

    torch.set_num_threads(1)
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        wavs = synthesise_chunk(jobs, Path(tmp))
        for job, wav in zip(jobs, wavs):
            waveform, rate = sf.read(wav, dtype="float32", always_2d=True)
            waveform = resample(waveform.mean(axis=1), rate, SAMPLE_RATE)
            # Resampling from speed * 16 kHz to 16 kHz shortens the audio by
            # the factor `speed` and raises its pitch by the same factor.
            waveform = resample(waveform, round(SAMPLE_RATE * job.speed), SAMPLE_RATE)
            waveform = trim_silence(waveform)
            peak = float(np.abs(waveform).max()) or 1.0
            waveform = waveform / peak * 10 ** (job.gain_db / 20)

            relative = Path("audio") / job.split / f"{job.utt_id}.opus"
            encode_opus(waveform, out_dir / relative, job.serial)
            rows.append({
                "id": job.utt_id,
                "path": relative.as_posix(),
                "transcript": job.transcript,
                "text": job.text,
                "duration": round(len(waveform) / SAMPLE_RATE, 3),
                "voice": job.voice.id,
                "split": job.split,
            })
    return rows


# --------------------------------------------------------------------------
# Corpus


def write_manifest(path: Path, rows: list[dict]) -> None:
    rows = sorted(rows, key=lambda row: row["id"])
    path.write_text("".join(json.dumps(row, ensure_ascii=False) + "\n" for row in rows), encoding="utf-8")


def build_synthetic(args: argparse.Namespace) -> None:
    out_dir = args.out / "synth"
    if out_dir.exists():
        shutil.rmtree(out_dir)
    jobs = plan_jobs(args)
    for split in {job.split for job in jobs}:
        (out_dir / "audio" / split).mkdir(parents=True, exist_ok=True)

    chunks: list[list[Job]] = []
    for split in sorted({job.split for job in jobs}):
        for voice in {job.voice for job in jobs}:
            same = [job for job in jobs if job.split == split and job.voice == voice]
            chunks += [same[i: i + CHUNK_SIZE] for i in range(0, len(same), CHUNK_SIZE)]
    # Festival chunks are the slowest, so they start first.
    chunks.sort(key=lambda chunk: (chunk[0].voice.engine != "festival", chunk[0].utt_id))

    rows_by_split: dict[str, list[dict]] = {}
    started = time.monotonic()
    with ProcessPoolExecutor(max_workers=args.jobs) as pool:
        futures = [pool.submit(process_chunk, chunk, out_dir) for chunk in chunks]
        for done, future in enumerate(as_completed(futures), start=1):
            for row in future.result():
                rows_by_split.setdefault(row["split"], []).append(row)
            if done % 20 == 0 or done == len(futures):
                print(f"{done}/{len(futures)} chunks, {time.monotonic() - started:.0f} s", flush=True)

    for split, rows in rows_by_split.items():
        write_manifest(out_dir / f"{split}.jsonl", rows)
        hours = sum(row["duration"] for row in rows) / 3600
        print(f"synth/{split}: {len(rows)} utterances, {hours:.2f} h")


def build_real(args: argparse.Namespace) -> None:
    """Copy the LibriVox clips of pocketsphinx-testdata as FLAC with a manifest."""
    out_dir = args.out / "real"
    if out_dir.exists():
        shutil.rmtree(out_dir)
    (out_dir / "audio").mkdir(parents=True)
    rows = []
    for line in (LIBRIVOX_DIR / "transcription").read_text().splitlines():
        # Format: "<s> words </s> (utterance-id)"
        words, utt_id = line.rsplit("(", 1)
        utt_id = utt_id.rstrip(")").strip()
        words = words.replace("<s>", "").replace("</s>", "").strip()
        waveform, rate = sf.read(LIBRIVOX_DIR / f"{utt_id}.wav", dtype="int16")
        if rate != SAMPLE_RATE:
            raise RuntimeError(f"{utt_id}.wav has sample rate {rate}, expected {SAMPLE_RATE}")
        relative = Path("audio") / f"{utt_id}.flac"
        sf.write(out_dir / relative, waveform, rate, format="FLAC", subtype="PCM_16")
        rows.append({
            "id": utt_id,
            "path": relative.as_posix(),
            "transcript": normalize_transcript(words),
            "duration": round(len(waveform) / rate, 3),
            "voice": "librivox-" + utt_id.split("-")[0],
            "split": "test",
        })
    write_manifest(out_dir / "test.jsonl", rows)
    print(f"real/test: {len(rows)} utterances")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", type=Path, default=DATA_ROOT / "speech", help="output folder")
    parser.add_argument("--seed", type=int, default=1234)
    parser.add_argument("--train", type=int, default=8000, help="training utterances")
    parser.add_argument("--dev", type=int, default=400, help="dev utterances")
    parser.add_argument("--test", type=int, default=400, help="test utterances (seen voices)")
    parser.add_argument("--unseen", type=int, default=400, help="test_unseen_voices utterances")
    parser.add_argument("--jobs", type=int, default=os.cpu_count(), help="worker processes")
    args = parser.parse_args()

    started = time.monotonic()
    build_real(args)
    build_synthetic(args)
    print(f"done in {math.ceil(time.monotonic() - started)} s with {args.jobs} workers")


if __name__ == "__main__":
    main()
