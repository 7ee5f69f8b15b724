"""Tests of the bundled text corpora, the tokenizers and the language-model batches."""

import json
import math

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from mytorch.data import paths
from mytorch.data.lm import (
    Perplexity,
    SentenceDataset,
    TokenWindows,
    collate_sentences,
    encode_corpus,
    evaluate_perplexity,
    random_batch,
)
from mytorch.data.text import TEXT_CORPORA, TEXT_SPLITS, load_text, normalize_transcript, split_sentences
from mytorch.data.tokenizers import (
    BLANK_ID,
    BOS_ID,
    EOS_ID,
    PAD_ID,
    SPECIAL_TOKENS,
    TOKENIZER_NAMES,
    UNK_ID,
    BPETokenizer,
    CharTokenizer,
    load_tokenizer,
)


@pytest.fixture(scope="module")
def web_char():
    return load_tokenizer("web_char")


@pytest.mark.parametrize("corpus", TEXT_CORPORA)
@pytest.mark.parametrize("split", TEXT_SPLITS)
def test_text_split_loads(corpus, split):
    text = load_text(corpus, split)
    assert len(text) > 100_000
    assert "\r" not in text
    assert "\ufeff" not in text


def test_web_text_has_no_markup_or_verse_numbers():
    text = load_text("web", "train")
    assert "<" not in text
    assert ">" not in text
    assert not any(ch.isdigit() for ch in text[:2000])
    assert text.startswith("In the beginning, God created the heavens and the earth.")


def test_web_test_books_absent_from_training():
    splits = json.loads((paths.data_root() / "text" / "web" / "splits.json").read_text())
    assert not set(splits["test"]) & set(splits["train"])
    assert not set(splits["validation"]) & set(splits["train"])

    train = load_text("web", "train")
    train_chapters = set(train.splitlines())
    test_chapters = [line for line in load_text("web", "test").splitlines() if line]
    assert not [c for c in test_chapters if c in train_chapters]

    # Paul quotes the Hebrew scriptures, so a few 100-character windows of the
    # test text do occur in training; a leaked passage would give many.
    test = load_text("web", "test")
    windows = [test[i: i + 100] for i in range(0, len(test) - 100, 250)]
    shared = sum(window in train for window in windows)
    assert shared / len(windows) < 0.01


def test_shakespeare_held_out_plays_absent_from_training():
    splits = json.loads((paths.data_root() / "text" / "shakespeare" / "splits.json").read_text())
    held_out = set(splits["validation"]) | set(splits["test"])
    assert not held_out & set(splits["train"])
    assert "HAMLET, PRINCE OF DENMARK" not in load_text("shakespeare", "train")


def test_missing_corpus_names_command(tmp_path, monkeypatch):
    monkeypatch.setenv(paths.DATA_ENV_VAR, str(tmp_path))
    with pytest.raises(paths.DataNotFoundError) as info:
        load_text("web", "train")
    message = str(info.value)
    assert str(tmp_path / "text" / "web" / "train.txt") in message
    assert "python data/scripts/make_text_corpus.py" in message


def test_unknown_split_rejected():
    with pytest.raises(ValueError, match="unknown split"):
        load_text("web", "dev")


def test_normalize_transcript_cases():
    assert normalize_transcript("“Don’t go,” he said—twice.") == "don't go he said twice"
    assert normalize_transcript("Israel’s 12 tribes") == "israel's tribes"
    assert normalize_transcript("‘Quoted’ words") == "quoted words"
    assert normalize_transcript("  Many   spaces\n") == "many spaces"


def test_split_sentences_keeps_closing_quotes():
    sentences = split_sentences("He asked, “Are you ready?” She said, “Yes.” Then they left.")
    assert sentences == ["He asked, “Are you ready?”", "She said, “Yes.”", "Then they left."]


@pytest.mark.parametrize("name", TOKENIZER_NAMES)
def test_saved_tokenizer_loads_with_fixed_special_ids(name):
    tokenizer = load_tokenizer(name)
    assert (tokenizer.pad_id, tokenizer.bos_id, tokenizer.eos_id, tokenizer.unk_id, tokenizer.blank_id) == (
        0, 1, 2, 3, 4)
    for token_id, token in enumerate(SPECIAL_TOKENS):
        assert tokenizer.decode([token_id], strip_special=False) == token
    assert tokenizer.decode([PAD_ID, BOS_ID, EOS_ID, BLANK_ID]) == ""


def test_tokenizer_vocab_sizes():
    assert load_tokenizer("web_bpe_1k").vocab_size == 1000
    assert load_tokenizer("web_bpe_5k").vocab_size == 5000
    asr = load_tokenizer("asr_char")
    assert asr.vocab_size == len(SPECIAL_TOKENS) + 28
    assert "".join(asr.chars) == " 'abcdefghijklmnopqrstuvwxyz"


def test_char_tokenizer_vocabulary_from_train_only(web_char):
    assert set(web_char.chars) == set(load_text("web", "train"))
    assert web_char.encode("Z\u00e9") == [web_char.char_to_id["Z"], UNK_ID]


def test_web_test_text_round_trips(web_char):
    text = load_text("web", "test")[:20_000]
    assert web_char.decode(web_char.encode(text)) == text
    bpe = load_tokenizer("web_bpe_5k")
    ids = bpe.encode(text)
    assert bpe.decode(ids) == text
    assert len(ids) < len(text) / 3


@settings(max_examples=200, deadline=None)
@given(st.text(alphabet=st.sampled_from(sorted(set("Hello, world! ’“”—abcxyz\n"))), max_size=200))
def test_char_round_trip_property(text):
    tokenizer = CharTokenizer.from_text("Hello, world! ’“”—abcxyz\n")
    ids = tokenizer.encode(text)
    assert all(i >= len(SPECIAL_TOKENS) for i in ids)
    assert tokenizer.decode(ids) == text


@settings(max_examples=100, deadline=None)
@given(st.text(max_size=100))
def test_bpe_round_trip_property(text):
    # Byte-level BPE encodes any Unicode text, including characters it never saw.
    tokenizer = load_tokenizer("web_bpe_1k")
    assert tokenizer.decode(tokenizer.encode(text)) == text


def test_bpe_train_reserves_special_ids(tmp_path):
    tokenizer = BPETokenizer.train(["the cat sat on the mat"] * 20, vocab_size=300)
    path = tmp_path / "bpe.json"
    tokenizer.save(path)
    loaded = load_tokenizer(path)
    assert isinstance(loaded, BPETokenizer)
    assert loaded.backend.token_to_id("<blank>") == BLANK_ID
    assert loaded.decode(loaded.encode("the mat")) == "the mat"


def test_token_windows_shift_by_one():
    ids = torch.arange(101)
    windows = TokenWindows(ids, block_size=10)
    assert len(windows) == 10
    x, y = windows[3]
    assert torch.equal(x, torch.arange(30, 40))
    assert torch.equal(y, torch.arange(31, 41))
    x_last, y_last = windows[len(windows) - 1]
    assert int(y_last[-1]) == 100
    with pytest.raises(IndexError):
        windows[len(windows)]


def test_token_windows_over_web_corpus(web_char):
    ids = encode_corpus(load_text("web", "validation"), web_char)
    windows = TokenWindows(ids, block_size=256)
    loader = torch.utils.data.DataLoader(windows, batch_size=8)
    x, y = next(iter(loader))
    assert x.shape == y.shape == (8, 256)
    assert torch.equal(x[:, 1:], y[:, :-1])


def test_random_batch_reproducible():
    ids = torch.arange(1000)
    x1, y1 = random_batch(ids, 4, 16, generator=torch.Generator().manual_seed(0))
    x2, _ = random_batch(ids, 4, 16, generator=torch.Generator().manual_seed(0))
    assert x1.shape == (4, 16)
    assert torch.equal(x1, x2)
    assert torch.equal(y1, x1 + 1)


def test_collate_sentences_adds_start_end_and_padding(web_char):
    dataset = SentenceDataset(["In the beginning.", "Amen."], web_char)
    inputs, targets, lengths = collate_sentences([dataset[0], dataset[1]])
    assert inputs.shape == targets.shape == (2, len("In the beginning.") + 1)
    assert lengths.tolist() == [18, 6]
    assert (inputs[:, 0] == BOS_ID).all()
    assert targets[0, 17] == EOS_ID
    assert targets[1, 5] == EOS_ID
    assert (targets[1, 6:] == PAD_ID).all()
    assert (inputs[1, 6:] == PAD_ID).all()
    assert web_char.decode(targets[1].tolist()) == "Amen."


def test_perplexity_of_uniform_model_is_vocab_size():
    vocab = 7

    def uniform(inputs):
        return torch.zeros(*inputs.shape, vocab)

    ids = torch.randint(vocab, (1000,), generator=torch.Generator().manual_seed(0))
    result = evaluate_perplexity(uniform, ids, num_chars=2 * 999, block_size=64, batch_size=5)
    assert result.num_tokens == 999
    assert result.token_perplexity == pytest.approx(vocab, rel=1e-5)
    assert result.char_perplexity == pytest.approx(math.sqrt(vocab), rel=1e-5)


def test_perplexity_report_values():
    report = Perplexity(total_nll=100 * math.log(4), num_tokens=50, num_chars=100)
    assert report.char_perplexity == pytest.approx(4.0)
    assert report.token_perplexity == pytest.approx(16.0)
    assert report.bits_per_char == pytest.approx(2.0)
