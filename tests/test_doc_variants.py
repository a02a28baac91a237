"""The trainer variants in docs/variants, with which the records in docs/ were trained: every module
imports, and a variant whose name ends in a number of epochs (`_demo100`, `_small160`) trains that
many, so a record's trainer name cannot silently mean another schedule."""

from __future__ import annotations

import importlib.util
import re
from pathlib import Path

import pytest

VARIANTS = Path(__file__).resolve().parents[1] / "docs" / "variants"


def _classes(path: Path) -> dict[str, type]:
    spec = importlib.util.spec_from_file_location(f"doc_variants_{path.stem}", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return {n: c for n, c in vars(module).items() if isinstance(c, type) and c.__module__ == module.__name__}


@pytest.mark.parametrize("path", sorted(VARIANTS.glob("*.py")), ids=lambda p: p.name)
def test_a_variant_named_for_its_epochs_trains_that_many(path):
    classes = _classes(path)
    assert classes, f"{path} defines no trainer"
    for name, cls in classes.items():
        epochs = re.search(r"(\d+)$", name)
        if epochs:
            assert cls.merged_overrides()["num_epochs"] == int(epochs.group(1)), name
