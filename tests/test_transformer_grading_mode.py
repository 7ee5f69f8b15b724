"""Grading mode of notebook 03 hides its references and keeps those of notebook 02."""

import os
import subprocess
import sys
import textwrap

import pytest

from mytorch.registry import GRADING_ENV

CHECK = textwrap.dedent("""
    import sys

    import mytorch.transformer
    from mytorch.registry import ReferenceUnavailableError

    loaded = sorted(name for name in sys.modules if name.startswith("mytorch.transformer."))
    assert loaded == [], f"import mytorch.transformer loaded {loaded}"

    for statement in (
        "from mytorch.transformer.layers import SelfAttentionDecoderLayer",
        "from mytorch.transformer.sublayers import SelfAttentionLayer",
        "from mytorch.transformer import CrossAttentionDecoderLayer",
    ):
        try:
            exec(statement)
        except ReferenceUnavailableError as error:
            print(f"hidden: {statement}: {error}")
        else:
            raise AssertionError(f"{statement} succeeded under grading mode")

    from mytorch.transformer.masks import causal_mask, pad_mask
    from mytorch.transformer.positional import PositionalEncoding
    from mytorch.transformer import PositionalEncoding as Exported

    assert Exported is PositionalEncoding
    print("available: PositionalEncoding, pad_mask, causal_mask")
""")


def test_grading_03_hides_layers_keeps_02():
    env = {**os.environ, GRADING_ENV: "03_transformer_layers"}
    result = subprocess.run([sys.executable, "-c", CHECK], env=env, capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
    hidden = [line for line in result.stdout.splitlines() if line.startswith("hidden: ")]
    assert len(hidden) == 3, result.stdout
    assert "03_transformer_layers" in hidden[0]
    assert "mytorch.transformer.layers" in hidden[0]
    assert "SelfAttentionDecoderLayer" in hidden[0]
    assert "available: PositionalEncoding" in result.stdout


def test_package_rejects_unknown_name():
    import mytorch.transformer

    with pytest.raises(AttributeError, match="NotAComponent"):
        mytorch.transformer.NotAComponent
