"""Tests of the reference pre-LN sublayers against the same computation from torch.nn modules."""

import pytest
import torch
from torch import nn

from mytorch.testing import assert_close
from mytorch.transformer.masks import causal_mask, pad_mask
from mytorch.transformer.sublayers import CrossAttentionLayer, FeedForwardLayer, SelfAttentionLayer

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


def copied(module: nn.Module, source: nn.Module) -> nn.Module:
    """Return `module` in float64 with the state of `source`."""
    module = module.double()
    module.load_state_dict(source.state_dict())
    return module


def record_calls(layer: nn.Module, names: list[str]) -> list[tuple[str, tuple, dict, object]]:
    """Record (name, args, kwargs, output) of every call of the named submodules of `layer`."""
    calls = []
    for name in names:
        def hook(module, args, kwargs, output, name=name):
            calls.append((name, args, kwargs, output))
        getattr(layer, name).register_forward_hook(hook, with_kwargs=True)
    return calls


def batch(N=3, T=5, seed=1):
    generator = torch.Generator().manual_seed(seed)
    return torch.randn(N, T, D_MODEL, generator=generator, dtype=torch.float64)


class TestSelfAttentionLayer:
    def test_matches_torch_modules(self):
        layer = randomized(SelfAttentionLayer(D_MODEL, NUM_HEADS)).eval()
        norm = copied(nn.LayerNorm(D_MODEL), layer.norm)
        attention = copied(nn.MultiheadAttention(D_MODEL, NUM_HEADS, batch_first=True), layer.attention)
        x = batch()
        key_padding_mask = pad_mask(x, [5, 3, 2])
        attn_mask = causal_mask(5)

        h = norm(x)
        out, weights = attention(h, h, h, key_padding_mask=key_padding_mask, attn_mask=attn_mask,
                                 average_attn_weights=False)
        actual, actual_weights = layer(x, key_padding_mask, attn_mask, return_weights=True)

        assert_close(actual, x + out, "output")
        assert_close(actual_weights, weights, "weights")
        assert_close(layer(x, key_padding_mask, attn_mask), x + out, "output without weights")

    def test_weights_only_when_requested(self):
        layer = SelfAttentionLayer(D_MODEL, NUM_HEADS)
        calls = record_calls(layer, ["attention"])
        out = layer(batch().float())
        assert isinstance(out, torch.Tensor)
        assert calls[0][2]["need_weights"] is False

    def test_padded_key_gets_zero_attention(self):
        layer = randomized(SelfAttentionLayer(D_MODEL, NUM_HEADS))
        x = batch()
        _, weights = layer(x, key_padding_mask=pad_mask(x, [5, 3, 2]), return_weights=True)
        assert weights.shape == (3, NUM_HEADS, 5, 5)
        assert torch.all(weights[1, :, :, 3:] == 0)
        assert torch.all(weights[2, :, :, 2:] == 0)
        assert torch.allclose(weights.sum(-1), torch.ones((), dtype=torch.float64))

    def test_causal_mask_hides_future(self):
        layer = randomized(SelfAttentionLayer(D_MODEL, NUM_HEADS))
        x = batch()
        changed = x.clone()
        changed[:, 3:] = batch(3, 2, seed=7)  # random: LayerNorm would undo a constant shift
        out, out_changed = layer(x, attn_mask=causal_mask(5)), layer(changed, attn_mask=causal_mask(5))
        assert torch.equal(out[:, :3], out_changed[:, :3])
        assert not torch.allclose(out[:, 3:], out_changed[:, 3:])

    def test_zeroed_attention_is_identity(self):
        layer = randomized(SelfAttentionLayer(D_MODEL, NUM_HEADS))
        with torch.no_grad():
            layer.attention.out_proj.weight.zero_()
            layer.attention.out_proj.bias.zero_()
        x = batch()
        assert torch.equal(layer(x), x)

    def test_pre_ln_order(self):
        layer = randomized(SelfAttentionLayer(D_MODEL, NUM_HEADS))
        calls = record_calls(layer, ["norm", "attention"])
        x = batch()
        out = layer(x)
        assert [call[0] for call in calls] == ["norm", "attention"]
        (_, norm_args, _, norm_out), (_, attention_args, _, attention_out) = calls
        assert norm_args[0] is x
        assert all(argument is norm_out for argument in attention_args[:3])
        assert torch.equal(out, x + attention_out[0])


class TestCrossAttentionLayer:
    def test_matches_torch_modules(self):
        layer = randomized(CrossAttentionLayer(D_MODEL, NUM_HEADS)).eval()
        norm = copied(nn.LayerNorm(D_MODEL), layer.norm)
        attention = copied(nn.MultiheadAttention(D_MODEL, NUM_HEADS, batch_first=True), layer.attention)
        x, memory = batch(T=4), batch(T=6, seed=2)
        key_padding_mask = pad_mask(memory, [6, 1, 4])

        out, weights = attention(norm(x), memory, memory, key_padding_mask=key_padding_mask,
                                 average_attn_weights=False)
        actual, actual_weights = layer(x, memory, key_padding_mask, return_weights=True)

        assert_close(actual, x + out, "output")
        assert_close(actual_weights, weights, "weights")
        assert torch.all(actual_weights[1, :, :, 1:] == 0)

    def test_memory_used_unnormalized(self):
        layer = randomized(CrossAttentionLayer(D_MODEL, NUM_HEADS))
        calls = record_calls(layer, ["norm", "attention"])
        x, memory = batch(T=4), batch(T=6, seed=2)
        out = layer(x, memory)
        assert [call[0] for call in calls] == ["norm", "attention"]
        (_, norm_args, _, norm_out), (_, attention_args, _, attention_out) = calls
        assert norm_args[0] is x
        assert attention_args[0] is norm_out
        assert attention_args[1] is memory
        assert attention_args[2] is memory
        assert torch.equal(out, x + attention_out[0])


class TestFeedForwardLayer:
    def test_matches_torch_modules(self):
        layer = randomized(FeedForwardLayer(D_MODEL, D_FF)).eval()
        reference = nn.Sequential(nn.LayerNorm(D_MODEL), nn.Linear(D_MODEL, D_FF), nn.ReLU(),
                                  nn.Linear(D_FF, D_MODEL)).double()
        reference[0].load_state_dict(layer.norm.state_dict())
        reference[1].load_state_dict(layer.linear1.state_dict())
        reference[3].load_state_dict(layer.linear2.state_dict())
        x = batch()
        assert_close(layer(x), x + reference(x), "output")

    def test_zeroed_linear2_is_identity(self):
        layer = randomized(FeedForwardLayer(D_MODEL, D_FF))
        with torch.no_grad():
            layer.linear2.weight.zero_()
            layer.linear2.bias.zero_()
        x = batch()
        assert torch.equal(layer(x), x)


SUBLAYERS = {
    "self": (lambda p: SelfAttentionLayer(D_MODEL, NUM_HEADS, p), lambda layer, x: layer(x)),
    "cross": (lambda p: CrossAttentionLayer(D_MODEL, NUM_HEADS, p),
              lambda layer, x: layer(x, batch(T=6, seed=2))),
    "feed_forward": (lambda p: FeedForwardLayer(D_MODEL, D_FF, p), lambda layer, x: layer(x)),
}


@pytest.mark.parametrize("kind", SUBLAYERS)
def test_dropout_only_in_training(kind):
    build, call = SUBLAYERS[kind]
    layer = randomized(build(0.5))
    plain = randomized(build(0.0)).eval()
    x = batch()

    layer.eval()
    assert torch.equal(call(layer, x), call(plain, x))
    layer.train()
    assert not torch.allclose(call(layer, x), call(plain, x))


@pytest.mark.parametrize("kind", SUBLAYERS)
def test_gradients_reach_every_parameter(kind):
    build, call = SUBLAYERS[kind]
    layer = randomized(build(0.1))
    call(layer, batch()).pow(2).sum().backward()
    for name, parameter in layer.named_parameters():
        assert parameter.grad is not None, name
        assert parameter.grad.abs().sum() > 0, name
