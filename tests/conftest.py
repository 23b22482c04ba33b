"""Shared fixtures: the repository's folders and a builder for small ONNX test models."""

from __future__ import annotations

import importlib.util
import os
from pathlib import Path

import pytest

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")

ROOT = Path(__file__).resolve().parent.parent
SAMPLES = ROOT / "sample_images"


@pytest.fixture(scope="session")
def sample_files() -> list[Path]:
    """Every bundled sample scan."""
    return sorted(p for p in SAMPLES.iterdir() if p.is_file() and p.name != "README.md")


@pytest.fixture(scope="session")
def placeholder_module():
    """``tests/onnx_builders.py`` as a module, to build model variants (wrong input, no card, ...)."""
    spec = importlib.util.spec_from_file_location("onnx_builders", ROOT / "tests" / "onnx_builders.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="session")
def placeholder_path(placeholder_module, tmp_path_factory) -> Path:
    """The untrained placeholder saved as an ONNX file."""
    import onnx

    path = tmp_path_factory.mktemp("models") / "placeholder.onnx"
    onnx.save(placeholder_module.build(), path)
    return path
