"""The encoder-decoder Transformer for speech recognition, with a CTC head on the encoder output."""

import math

import torch
from torch import nn

from mytorch.registry import check_reference_available

# Checked before the imports below, so that grading mode names this module's component rather
# than the speech embedding it imports.
check_reference_available(__name__)

from mytorch.asr.embedding import SpeechEmbedding  # noqa: E402
from mytorch.data.tokenizers import BOS_ID  # noqa: E402
from mytorch.transformer.layers import (  # noqa: E402
    CrossAttentionDecoderLayer,
    SelfAttentionEncoderLayer,
)
from mytorch.transformer.masks import pad_mask  # noqa: E402
from mytorch.transformer.positional import PositionalEncoding  # noqa: E402


class EncoderDecoderTransformer(nn.Module):
    """Pre-LN encoder-decoder Transformer from log-mel features to characters.

    The encoder embeds the features with SpeechEmbedding (time reduced 4x), adds positions and
    runs the encoder layers with a padding mask built from the reduced lengths, then a final
    LayerNorm. The decoder embeds the characters, adds positions and runs the decoder layers:
    causal self-attention, cross-attention over the encoder output (the memory) and
    feed-forward, then a final LayerNorm and a linear layer to the vocabulary. A second linear
    layer on the memory, the CTC head, gives the CTC logits.

    Attributes (the cached decoder of `mytorch.asr.search` calls the decoder's directly):
        embedding: SpeechEmbedding(n_mels, d_model, conv_channels).
        encoder_positions: PositionalEncoding(d_model, max_frames, dropout).
        encoder_layers: nn.ModuleList of SelfAttentionEncoderLayer(d_model, num_heads, d_ff,
            dropout).
        encoder_norm: nn.LayerNorm(d_model).
        ctc_head: nn.Linear(d_model, vocab_size).
        token_embedding: nn.Embedding(vocab_size, d_model), initialised with standard deviation
            d_model ** -0.5 and scaled by sqrt(d_model) on input, so that the embedded
            characters have entries of about unit size, like the positional table.
        decoder_positions: PositionalEncoding(d_model, max_tokens, dropout).
        decoder_layers: nn.ModuleList of CrossAttentionDecoderLayer(d_model, num_heads, d_ff,
            dropout).
        decoder_norm: nn.LayerNorm(d_model).
        output: nn.Linear(d_model, vocab_size).

    max_frames bounds the encoder positions (after subsampling: 4 input frames of 10 ms each,
    so 2000 positions are 80 s of speech) and max_tokens the decoder positions.
    """

    def __init__(self, vocab_size: int, n_mels: int = 80, d_model: int = 144, num_heads: int = 4,
                 d_ff: int = 576, num_encoder_layers: int = 6, num_decoder_layers: int = 2,
                 conv_channels: int = 32, dropout: float = 0.1, max_frames: int = 2000,
                 max_tokens: int = 512):
        super().__init__()
        ### BEGIN SOLUTION
        self.d_model = d_model
        self.embedding = SpeechEmbedding(n_mels, d_model, conv_channels)
        self.encoder_positions = PositionalEncoding(d_model, max_frames, dropout)
        self.encoder_layers = nn.ModuleList(
            SelfAttentionEncoderLayer(d_model, num_heads, d_ff, dropout)
            for _ in range(num_encoder_layers)
        )
        self.encoder_norm = nn.LayerNorm(d_model)
        self.ctc_head = nn.Linear(d_model, vocab_size)

        self.token_embedding = nn.Embedding(vocab_size, d_model)
        # With PyTorch's default N(0, 1) the scaled embeddings would be sqrt(d_model) times
        # larger than everything the cross-attention adds to them, and learning to listen
        # would take the decoder longer.
        nn.init.normal_(self.token_embedding.weight, std=d_model ** -0.5)
        self.decoder_positions = PositionalEncoding(d_model, max_tokens, dropout)
        self.decoder_layers = nn.ModuleList(
            CrossAttentionDecoderLayer(d_model, num_heads, d_ff, dropout)
            for _ in range(num_decoder_layers)
        )
        self.decoder_norm = nn.LayerNorm(d_model)
        self.output = nn.Linear(d_model, vocab_size)
        ### END SOLUTION

    def encode(self, features, lengths):
        """Encode a padded batch of normalised features (N, T, n_mels) with frame counts lengths (N,).

        Returns (memory (N, S, d_model), memory_lengths (N,)), where S is the reduced length
        of the batch and memory_lengths the reduced length of each utterance. Positions of
        memory at or after an utterance's memory length are padding: nothing attends to them.
        """
        ### BEGIN SOLUTION
        x, memory_lengths = self.embedding(features, lengths)  # (N, S, d_model), (N,)
        x = self.encoder_positions(x)
        mask = pad_mask(x, memory_lengths)                     # (N, S), True at padding
        for layer in self.encoder_layers:
            x = layer(x, key_padding_mask=mask)
        memory = self.encoder_norm(x)
        ### END SOLUTION
        return memory, memory_lengths

    def ctc_logits(self, memory):
        """Return the CTC logits (N, S, vocab_size) of the encoder output memory (N, S, d_model)."""
        ### BEGIN SOLUTION
        logits = self.ctc_head(memory)
        ### END SOLUTION
        return logits

    def decode(self, tokens, memory, memory_lengths, return_weights=False):
        """Predict the next character at every position of the decoder input tokens (N, L).

        tokens start with BOS_ID, and position t may only use tokens 0..t. memory
        (N, S, d_model) and memory_lengths (N,) come from encode.

        Returns the logits (N, L, vocab_size). With return_weights=True, returns the tuple
        (logits, cross-attention weights), the weights as a list with one (N, num_heads, L, S)
        tensor per decoder layer.
        """
        ### BEGIN SOLUTION
        x = self.token_embedding(tokens) * math.sqrt(self.d_model)  # (N, L, d_model)
        x = self.decoder_positions(x)
        memory_mask = pad_mask(memory, memory_lengths)               # (N, S), True at padding

        # The causal mask of each layer hides the padding after a transcript from every real
        # position, so the decoder needs no padding mask of its own.
        cross_weights = []
        for layer in self.decoder_layers:
            if return_weights:
                x, _, weights = layer(x, memory, memory_key_padding_mask=memory_mask,
                                      return_weights=True)
                cross_weights.append(weights)
            else:
                x = layer(x, memory, memory_key_padding_mask=memory_mask)

        logits = self.output(self.decoder_norm(x))                   # (N, L, vocab_size)
        ### END SOLUTION
        return (logits, cross_weights) if return_weights else logits

    def forward(self, features, lengths, tokens):
        """Run the model with teacher forcing on a training batch.

        features (N, T, n_mels) and lengths (N,) as for encode; tokens (N, L) the transcripts'
        ids, padded with PAD_ID, without BOS_ID or EOS_ID.

        Returns (decoder logits (N, L + 1, vocab_size), CTC logits (N, S, vocab_size),
        memory_lengths (N,)). The decoder input is BOS_ID followed by tokens, so decoder
        position t predicts tokens[:, t], and position L predicts the end of the transcript.
        """
        ### BEGIN SOLUTION
        memory, memory_lengths = self.encode(features, lengths)
        bos = torch.full((tokens.size(0), 1), BOS_ID, dtype=tokens.dtype, device=tokens.device)
        decoder_input = torch.cat([bos, tokens], dim=1)              # (N, L + 1)
        decoder_logits = self.decode(decoder_input, memory, memory_lengths)
        ctc_logits = self.ctc_logits(memory)
        ### END SOLUTION
        return decoder_logits, ctc_logits, memory_lengths
