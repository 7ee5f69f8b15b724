"""Course data: bundled corpora, tokenizers, language-model and speech batches.

Submodules:

* ``paths``: the data root (``$MYTORCH_DATA`` or the repository's data/) and DataNotFoundError.
* ``text``: the WEB and Shakespeare text splits, transcript normalisation.
* ``tokenizers``: CharTokenizer, BPETokenizer and the fixed special-token ids.
* ``lm``: token windows, random batches, sentence batches, perplexity.
* ``features``: log-mel filterbank, feature statistics, feature cache.
* ``speech``: manifests, audio loading, SpeechDataset, collate_speech.
* ``sampler``: LengthBucketSampler.
* ``librispeech``: LibriSpeech download and loader.

The names below are imported on first use, so ``import mytorch.data`` does not
load torch.
"""

from __future__ import annotations

from mytorch.lazy import lazy_exports

_MODULES = {  # name -> its submodule of mytorch.data
    "DataNotFoundError": "paths", "data_root": "paths", "cache_root": "paths",
    "load_text": "text", "normalize_transcript": "text", "split_sentences": "text",
    "SPECIAL_TOKENS": "tokenizers", "PAD_ID": "tokenizers", "BOS_ID": "tokenizers",
    "EOS_ID": "tokenizers", "UNK_ID": "tokenizers", "BLANK_ID": "tokenizers",
    "CharTokenizer": "tokenizers", "BPETokenizer": "tokenizers", "load_tokenizer": "tokenizers",
    "TokenWindows": "lm", "random_batch": "lm", "collate_sentences": "lm",
    "SentenceDataset": "lm", "encode_corpus": "lm", "Perplexity": "lm", "evaluate_perplexity": "lm",
    "FeatureConfig": "features", "LogMelFilterbank": "features", "FeatureStats": "features",
    "Utterance": "speech", "load_manifest": "speech", "read_manifest": "speech",
    "load_audio": "speech", "SpeechDataset": "speech", "SpeechBatch": "speech",
    "collate_speech": "speech", "load_feature_stats": "speech",
    "LengthBucketSampler": "sampler", "padding_fraction": "sampler",
    "load_librispeech": "librispeech",
}

__all__, __getattr__, __dir__ = lazy_exports(
    __name__, {name: f"{__name__}.{module}" for name, module in _MODULES.items()}
)
