"""Tests of the reference layers against torch.nn's norm_first Transformer layers."""

import pytest
import torch
from torch import nn

from mytorch.testing import assert_close
from mytorch.transformer.layers import (
    CrossAttentionDecoderLayer,
    SelfAttentionDecoderLayer,
    SelfAttentionEncoderLayer,
)
from mytorch.transformer.masks import causal_mask, pad_mask

torch.set_num_threads(1)

D_MODEL, NUM_HEADS, D_FF = 8, 2, 16


def randomized(module: nn.Module, seed: int = 0) -> nn.Module:
    """Return `module` in float64 with every parameter drawn from N(0, 0.5^2)."""
    generator = torch.Generator().manual_seed(seed)
    module = module.double()
    with torch.no_grad():
        for parameter in module.parameters():
            parameter.copy_(0.5 * torch.randn(parameter.shape, generator=generator))
    return module


def batch(N=3, T=5, seed=1):
    generator = torch.Generator().manual_seed(seed)
    return torch.randn(N, T, D_MODEL, generator=generator, dtype=torch.float64)


def torch_encoder_layer(layer) -> nn.TransformerEncoderLayer:
    """Return nn.TransformerEncoderLayer (pre-LN, no dropout) with the weights of `layer`."""
    reference = nn.TransformerEncoderLayer(D_MODEL, NUM_HEADS, D_FF, dropout=0.0, batch_first=True,
                                           norm_first=True, dtype=torch.float64).eval()
    reference.self_attn.load_state_dict(layer.self_attention.attention.state_dict())
    reference.norm1.load_state_dict(layer.self_attention.norm.state_dict())
    reference.norm2.load_state_dict(layer.feed_forward.norm.state_dict())
    reference.linear1.load_state_dict(layer.feed_forward.linear1.state_dict())
    reference.linear2.load_state_dict(layer.feed_forward.linear2.state_dict())
    return reference


def torch_decoder_layer(layer) -> nn.TransformerDecoderLayer:
    """Return nn.TransformerDecoderLayer (pre-LN, no dropout) with the weights of `layer`."""
    reference = nn.TransformerDecoderLayer(D_MODEL, NUM_HEADS, D_FF, dropout=0.0, batch_first=True,
                                           norm_first=True, dtype=torch.float64).eval()
    reference.self_attn.load_state_dict(layer.self_attention.attention.state_dict())
    reference.norm1.load_state_dict(layer.self_attention.norm.state_dict())
    reference.multihead_attn.load_state_dict(layer.cross_attention.attention.state_dict())
    reference.norm2.load_state_dict(layer.cross_attention.norm.state_dict())
    reference.norm3.load_state_dict(layer.feed_forward.norm.state_dict())
    reference.linear1.load_state_dict(layer.feed_forward.linear1.state_dict())
    reference.linear2.load_state_dict(layer.feed_forward.linear2.state_dict())
    return reference


def test_encoder_layer_matches_torch():
    layer = randomized(SelfAttentionEncoderLayer(D_MODEL, NUM_HEADS, D_FF)).eval()
    x = batch()
    key_padding_mask = pad_mask(x, [5, 3, 1])
    expected = torch_encoder_layer(layer)(x, src_key_padding_mask=key_padding_mask)

    out, weights = layer(x, key_padding_mask, return_weights=True)
    assert_close(out, expected, "encoder layer output")
    assert_close(layer(x, key_padding_mask), expected, "encoder layer output without weights")
    assert weights.shape == (3, NUM_HEADS, 5, 5)
    assert torch.all(weights[1, :, :, 3:] == 0)


def test_self_attention_decoder_layer_matches_torch():
    layer = randomized(SelfAttentionDecoderLayer(D_MODEL, NUM_HEADS, D_FF)).eval()
    x = batch()
    key_padding_mask = pad_mask(x, [5, 3, 1])
    expected = torch_encoder_layer(layer)(x, src_mask=causal_mask(5),
                                          src_key_padding_mask=key_padding_mask)

    out, weights = layer(x, key_padding_mask, return_weights=True)
    assert_close(out, expected, "decoder layer output")
    assert_close(layer(x, key_padding_mask), expected, "decoder layer output without weights")
    assert torch.all(weights.masked_select(causal_mask(5)) == 0)


def test_cross_attention_decoder_layer_matches_torch():
    layer = randomized(CrossAttentionDecoderLayer(D_MODEL, NUM_HEADS, D_FF)).eval()
    x, memory = batch(T=4), batch(T=6, seed=2)
    key_padding_mask = pad_mask(x, [4, 2, 3])
    memory_key_padding_mask = pad_mask(memory, [6, 1, 4])
    expected = torch_decoder_layer(layer)(
        x, memory, tgt_mask=causal_mask(4), tgt_key_padding_mask=key_padding_mask,
        memory_key_padding_mask=memory_key_padding_mask,
    )

    out, self_weights, cross_weights = layer(x, memory, key_padding_mask, memory_key_padding_mask,
                                             return_weights=True)
    assert_close(out, expected, "decoder layer output")
    assert_close(layer(x, memory, key_padding_mask, memory_key_padding_mask), expected,
                 "decoder layer output without weights")
    assert self_weights.shape == (3, NUM_HEADS, 4, 4)
    assert cross_weights.shape == (3, NUM_HEADS, 4, 6)
    assert torch.all(cross_weights[1, :, :, 1:] == 0)


@pytest.mark.parametrize("layer_class", [SelfAttentionDecoderLayer, CrossAttentionDecoderLayer])
def test_decoder_layers_are_causal(layer_class):
    layer = randomized(layer_class(D_MODEL, NUM_HEADS, D_FF))
    memory = batch(T=6, seed=2)
    x = batch()
    changed = x.clone()
    changed[:, 2:] = batch(3, 3, seed=7)  # random: LayerNorm would undo a constant shift

    arguments = (memory,) if layer_class is CrossAttentionDecoderLayer else ()
    out, out_changed = layer(x, *arguments), layer(changed, *arguments)
    assert torch.equal(out[:, :2], out_changed[:, :2])
    assert not torch.allclose(out[:, 2:], out_changed[:, 2:])


LAYERS = {
    "encoder": (SelfAttentionEncoderLayer, ()),
    "decoder": (SelfAttentionDecoderLayer, ()),
    "cross_decoder": (CrossAttentionDecoderLayer, (batch(T=6, seed=2),)),
}


@pytest.mark.parametrize("kind", LAYERS)
def test_zeroed_sublayers_are_identity(kind):
    layer_class, arguments = LAYERS[kind]
    layer = randomized(layer_class(D_MODEL, NUM_HEADS, D_FF))
    with torch.no_grad():
        for module in layer.modules():
            if isinstance(module, nn.MultiheadAttention):
                module.out_proj.weight.zero_()
                module.out_proj.bias.zero_()
        layer.feed_forward.linear2.weight.zero_()
        layer.feed_forward.linear2.bias.zero_()
    x = batch()
    assert torch.equal(layer(x, *arguments), x)


@pytest.mark.parametrize("kind", LAYERS)
def test_dropout_only_in_training(kind):
    layer_class, arguments = LAYERS[kind]
    layer = randomized(layer_class(D_MODEL, NUM_HEADS, D_FF, dropout=0.5))
    plain = randomized(layer_class(D_MODEL, NUM_HEADS, D_FF)).eval()
    x = batch()

    layer.eval()
    assert torch.equal(layer(x, *arguments), plain(x, *arguments))
    layer.train()
    assert not torch.allclose(layer(x, *arguments), plain(x, *arguments))


@pytest.mark.parametrize("kind", LAYERS)
def test_gradients_reach_every_parameter(kind):
    layer_class, arguments = LAYERS[kind]
    layer = randomized(layer_class(D_MODEL, NUM_HEADS, D_FF, dropout=0.1))
    layer(batch(), *arguments).pow(2).sum().backward()
    for name, parameter in layer.named_parameters():
        assert parameter.grad is not None, name
        assert parameter.grad.abs().sum() > 0, name
