"""BraTS 2023+ label conventions: regions in BraTS labels, and `to-brats` naming the convention it writes."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from nnunet_holder.conversion.back_conversion import resolve_convention
from nnunet_holder.conversion.labels import describe_convention, nnunet_to_brats

from nnunet_holder.brats import NNUNET_REGIONS, brats_regions
from nnunet_holder.evaluate.metrics import region_masks
from tests.helpers_brats import read_array, write_volume

SHAPE = (4, 5, 6)


def test_brats_2023_regions_are_netc_snfh_et() -> None:
    assert brats_regions("2023") == [[1, 2, 3], [1, 3], [3]]
    assert brats_regions("2024") == brats_regions("2023")
    assert brats_regions("2018") == [[1, 2, 4], [1, 4], [4]]
    assert describe_convention("2024") == "BraTS 2023+ labels (1 NETC, 2 SNFH, 3 ET)"


@pytest.mark.parametrize("convention", ["2018", "2023"])
def test_regions_hold_the_same_voxels_in_brats_and_nnunet_labels(convention: str) -> None:
    nnunet = np.random.default_rng(5).integers(0, 4, size=(9, 8, 7)).astype(np.uint8)
    brats = nnunet_to_brats(nnunet, convention)
    for ours, theirs in zip(
        region_masks(nnunet, NNUNET_REGIONS), region_masks(brats, brats_regions(convention)), strict=True
    ):
        np.testing.assert_array_equal(ours, theirs)


def _predictions(folder: Path) -> np.ndarray:
    values = np.array([0, 1, 2, 3] * 30, dtype=np.uint8).reshape(SHAPE)
    write_volume(folder / "case_a.nii.gz", values)
    return values


def test_to_brats_cli_accepts_2024_and_writes_2023_labels(tmp_path: Path, capsys) -> None:
    from nnunet_holder.cli import main

    values = _predictions(tmp_path / "pred")
    out = tmp_path / "out"
    assert main(["to-brats", str(tmp_path / "pred"), str(out), "--convention", "2024"]) == 0
    np.testing.assert_array_equal(read_array(out / "case_a.nii.gz"), np.array([0, 2, 1, 3])[values])
    captured = capsys.readouterr()
    assert "BraTS 2023+ labels (1 NETC, 2 SNFH, 3 ET)" in captured.out
    assert "warning" not in captured.err


def test_to_brats_warns_when_the_convention_is_only_the_default(tmp_path: Path, capsys) -> None:
    from nnunet_holder.cli import main

    values = _predictions(tmp_path / "pred")
    out = tmp_path / "out"
    assert main(["to-brats", str(tmp_path / "pred"), str(out)]) == 0
    np.testing.assert_array_equal(read_array(out / "case_a.nii.gz"), np.array([0, 2, 1, 4])[values])
    captured = capsys.readouterr()
    assert "warning: no --convention given" in captured.err and "--convention 2023" in captured.err
    assert "BraTS 2018-2021 labels (1 NCR/NET, 2 ED, 4 ET)" in captured.out


def test_resolve_convention_sources(tmp_path: Path) -> None:
    pred = tmp_path / "pred"
    _predictions(pred)
    assert resolve_convention(pred)[0] == "2018" and resolve_convention(pred)[1] is not None
    assert resolve_convention(pred, "2024") == ("2023", None)
    (pred / "dataset.json").write_text(json.dumps({"brats_convention": "2023", "file_ending": ".nii.gz"}))
    assert resolve_convention(pred) == ("2023", None)
    other = tmp_path / "dataset.json"
    other.write_text(json.dumps({"file_ending": ".nii.gz"}))
    assert resolve_convention(pred, dataset_json=other)[0] == "2018"
    assert resolve_convention(pred, "2018", dataset_json=other) == ("2018", None)
