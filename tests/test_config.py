"""The YAML config loader rejects unknown keys and wrong types with one clear line."""

from dataclasses import dataclass, field
from pathlib import Path

import pytest

from mytorch.config import CONFIG_DIR, ConfigError, load_config


@dataclass
class Optimizer:
    learning_rate: float = 1e-3
    betas: list[float] = field(default_factory=lambda: [0.9, 0.95])


@dataclass
class Run:
    steps: int
    name: str = "demo"
    device: str | None = None
    optimizer: Optimizer = field(default_factory=Optimizer)


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "run.yaml"
    path.write_text(text)
    return path


def test_valid_file_loads(tmp_path):
    path = write(tmp_path, "steps: 10\noptimizer:\n  learning_rate: 3\n  betas: [0.8, 0.9]\n")
    run = load_config(path, Run)
    assert run.steps == 10
    assert run.optimizer.learning_rate == 3.0
    assert run.optimizer.betas == [0.8, 0.9]
    assert run.device is None


def test_misspelled_key_names_key_file_and_allowed(tmp_path):
    path = write(tmp_path, "steps: 10\nnmae: x\n")
    with pytest.raises(ConfigError) as error:
        load_config(path, Run)
    message = str(error.value)
    assert "\n" not in message
    assert str(path) in message
    assert "unknown key 'nmae'" in message
    assert "did you mean 'name'" in message
    assert "allowed keys: device, name, optimizer, steps" in message


def test_misspelled_nested_key_named_with_prefix(tmp_path):
    path = write(tmp_path, "steps: 1\noptimizer:\n  lerning_rate: 0.1\n")
    with pytest.raises(ConfigError, match=r"unknown key 'optimizer.lerning_rate'.*allowed keys: betas, learning_rate"):
        load_config(path, Run)


@pytest.mark.parametrize("text, fragment", [
    ("steps: ten\n", "'steps' must be of type int"),
    ("steps: true\n", "'steps' must be an integer"),
    ("steps: 1\noptimizer: 3\n", "optimizer. must be a mapping"),
    ("steps: 1\noptimizer:\n  betas: 0.9\n", "'optimizer.betas' must be a list"),
    ("name: x\n", "missing required key 'steps'"),
    ("steps: [1\n", "invalid YAML"),
])
def test_wrong_values_rejected(tmp_path, text, fragment):
    with pytest.raises(ConfigError, match=fragment.replace("(", r"\(").replace("[", r"\[")):
        load_config(write(tmp_path, text), Run)


def test_missing_file_named(tmp_path):
    with pytest.raises(ConfigError, match="config file not found"):
        load_config(tmp_path / "absent.yaml", Run)


def test_course_config_loads():
    from mytorch.course.setup_cell import CourseConfig

    assert load_config(CONFIG_DIR / "course.yaml", CourseConfig).repository_url.startswith("https://")
