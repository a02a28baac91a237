"""BraTS 2023 lesion-wise Dice and HD95: invariants on seeded random multi-lesion cases, edge cases, rules.

Cases are ellipsoid lesions, one per cell of a 2×2×2 grid of cells, so lesions of different
cells lie far beyond the dilation of each other and every rule can be checked lesion by lesion.
"""

from __future__ import annotations

import itertools

import numpy as np
import pytest
from nnunet_holder.conversion.labels import nnunet_to_brats
from scipy import ndimage

from nnunet_holder.brats import NNUNET_REGIONS, REGION_NAMES, brats_regions
from nnunet_holder.evaluate.lesion import (
    CHALLENGE_RULES,
    CONNECTIVITY,
    DILATION_STRUCTURE,
    LESION_HD95_PENALTY,
    LesionRules,
    LesionScore,
    evaluate_case_lesionwise,
    lesion_metric_columns,
    lesion_scores,
)
from nnunet_holder.evaluate.metrics import dice, hd95

CELL = 28  # lesions ±8 voxels, predictions ±9 voxels around the cell centre: far beyond 2 × dilation
SHAPE = (2 * CELL, 2 * CELL, 2 * CELL)
CELLS = list(itertools.product((0, 1), repeat=3))
GLI = CHALLENGE_RULES["GLI"]
SEEDS = range(8)
SPACINGS = [(1.0, 1.0, 1.0), (1.5, 1.0, 0.8)]


def ellipsoid(centre, radii, shape=SHAPE) -> np.ndarray:
    grid = np.indices(shape, dtype=np.float64)
    return sum(((g - c) / r) ** 2 for g, c, r in zip(grid, centre, radii, strict=True)) <= 1.0


def cell_centre(cell) -> np.ndarray:
    return np.array(cell) * CELL + CELL // 2


def lesion(rng: np.random.Generator, cell, small: bool = False) -> np.ndarray:
    radii = rng.uniform(1.0, 1.8, 3) if small else rng.uniform(3.0, 5.0, 3)
    return ellipsoid(cell_centre(cell) + rng.integers(-1, 2, 3), radii)


def imperfect(rng: np.random.Generator, mask: np.ndarray) -> np.ndarray:
    """The lesion shifted by up to 1 voxel and grown or shrunk by one: overlaps it, one component."""
    shifted = ndimage.shift(mask, rng.integers(-1, 2, 3), order=0)
    change = rng.integers(3)
    if change == 1:
        shifted = ndimage.binary_dilation(shifted)
    elif change == 2 and ndimage.binary_erosion(shifted).sum() > 20:
        shifted = ndimage.binary_erosion(shifted)
    return shifted


def case(seed: int, n_lesions: int = 5, n_small: int = 1) -> tuple[np.ndarray, np.ndarray, list]:
    """Reference with `n_lesions` scored lesions and `n_small` below the GLI threshold, each in its
    own cell, and an imperfect prediction of each; returns (pred, gt, cells of the scored lesions)."""
    rng = np.random.default_rng(seed)
    cells = [CELLS[i] for i in rng.permutation(len(CELLS))[: n_lesions + n_small]]
    gt, pred = np.zeros(SHAPE, bool), np.zeros(SHAPE, bool)
    for i, cell in enumerate(cells):
        g = lesion(rng, cell, small=i >= n_lesions)
        gt |= g
        pred |= imperfect(rng, g)
    return pred, gt, cells[:n_lesions]


def cell_slice(cell) -> tuple[slice, ...]:
    return tuple(slice(c * CELL, (c + 1) * CELL) for c in cell)


def test_perfect_prediction_scores_one_and_zero_per_lesion() -> None:
    for seed, spacing in itertools.product(SEEDS, SPACINGS):
        _, gt, cells = case(seed)
        score = lesion_scores(gt, gt, spacing)
        assert (score.dice, score.hd95, score.tp, score.fn, score.fp) == (1.0, 0.0, len(cells), 0, 0)
        assert score.lesion_dice == (1.0,) * len(cells) and score.lesion_hd95 == (0.0,) * len(cells)


def test_per_lesion_values_are_dice_and_hd95_of_the_lesion_and_its_components() -> None:
    for seed in SEEDS:
        pred, gt, cells = case(seed, n_small=0)
        score = lesion_scores(pred, gt, (1.0, 1.0, 1.0))
        expected = sorted(
            (dice(pred & in_cell(c), gt & in_cell(c)), hd95(pred & in_cell(c), gt & in_cell(c), (1, 1, 1)))
            for c in cells
        )
        got = sorted(zip(score.lesion_dice, score.lesion_hd95, strict=True))
        assert np.allclose(got, expected, rtol=0, atol=1e-12)
        assert score.dice == pytest.approx(np.mean([d for d, _ in expected]))
        assert score.hd95 == pytest.approx(np.mean([h for _, h in expected]))


def in_cell(cell) -> np.ndarray:
    mask = np.zeros(SHAPE, bool)
    mask[cell_slice(cell)] = True
    return mask


@pytest.mark.parametrize("spacing", SPACINGS)
def test_a_far_spurious_component_adds_one_penalty_term(spacing) -> None:
    for seed in SEEDS:
        pred, gt, cells = case(seed, n_lesions=4, n_small=0)
        before = lesion_scores(pred, gt, spacing)
        free = next(c for c in CELLS if not gt[cell_slice(c)].any())
        after = lesion_scores(pred | ellipsoid(cell_centre(free), (2, 2, 2)), gt, spacing)
        n = before.tp + before.fn + before.fp
        assert after.dice == pytest.approx(before.dice * n / (n + 1))
        assert after.hd95 == pytest.approx((before.hd95 * n + LESION_HD95_PENALTY) / (n + 1))
        assert (after.fp, after.tp, after.fn) == (before.fp + 1, before.tp, before.fn)
        assert after.lesion_dice == before.lesion_dice and after.lesion_hd95 == before.lesion_hd95


def test_a_missed_lesion_costs_exactly_one_penalty_term() -> None:
    for seed in SEEDS:
        pred, gt, cells = case(seed, n_lesions=4, n_small=0)
        before = lesion_scores(pred, gt, (1.0, 1.0, 1.0))
        n = len(cells)
        dropped = pred & ~in_cell(cells[0])
        after = lesion_scores(dropped, gt, (1.0, 1.0, 1.0))
        (k,) = [
            i for i, (a, b) in enumerate(zip(before.lesion_dice, after.lesion_dice, strict=True)) if a != b
        ]
        assert after.lesion_dice[k] == 0.0 and after.lesion_hd95[k] == LESION_HD95_PENALTY
        assert after.dice == pytest.approx(before.dice - before.lesion_dice[k] / n)
        assert after.hd95 == pytest.approx(before.hd95 + (LESION_HD95_PENALTY - before.lesion_hd95[k]) / n)
        assert (after.tp, after.fn, after.fp) == (before.tp - 1, before.fn + 1, before.fp)


def test_lesions_under_the_threshold_are_not_scored_and_not_penalised() -> None:
    for seed in SEEDS:
        pred, gt, cells = case(seed, n_lesions=3, n_small=2)
        small_cells = [c for c in CELLS if gt[cell_slice(c)].any() and c not in cells]
        assert all(gt[cell_slice(c)].sum() <= GLI.min_volume_mm3 for c in small_cells)
        score = lesion_scores(pred, gt, (1.0, 1.0, 1.0))
        assert score.tp + score.fn == len(cells) and score.fp == 0
        # predicting nothing there changes nothing, while a component of that size elsewhere is spurious
        without_small = pred & ~in_cell(small_cells[0])
        assert lesion_scores(without_small, gt, (1.0, 1.0, 1.0)) == score
        assert lesion_scores(pred, gt & ~in_cell(small_cells[0]), (1.0, 1.0, 1.0)).fp == 1


def test_swapping_prediction_and_reference_of_one_to_one_lesions_keeps_the_score() -> None:
    for seed in SEEDS:
        rng = np.random.default_rng(seed)
        matched, missed, spurious = np.split(rng.permutation(len(CELLS))[:6], [3, 5])
        gt, pred = np.zeros(SHAPE, bool), np.zeros(SHAPE, bool)
        for i in matched:
            g = lesion(rng, CELLS[i])
            gt |= g
            pred |= imperfect(rng, g)
        for i in missed:
            gt |= lesion(rng, CELLS[i])
        for i in spurious:
            pred |= lesion(rng, CELLS[i])
        forward, backward = lesion_scores(pred, gt, (1.5, 1.0, 0.8)), lesion_scores(gt, pred, (1.5, 1.0, 0.8))
        assert backward.dice == pytest.approx(forward.dice) and backward.hd95 == pytest.approx(forward.hd95)
        assert (forward.tp, forward.fn, forward.fp) == (3, 2, 1)
        assert (backward.tp, backward.fn, backward.fp) == (3, 1, 2)


def test_translation_and_axis_permutation_invariance() -> None:
    for seed in SEEDS:
        pred, gt, _ = case(seed)
        spacing = (1.5, 1.0, 0.8)
        score = lesion_scores(pred, gt, spacing)
        shift = tuple(int(s) for s in np.random.default_rng(seed).integers(0, 7, 3))
        pad = [(s, 6 - s) for s in shift]
        moved = lesion_scores(np.pad(pred, pad), np.pad(gt, pad), spacing)
        assert moved == score
        order = (2, 0, 1)
        permuted = lesion_scores(pred.transpose(order), gt.transpose(order), [spacing[a] for a in order])
        assert permuted.dice == pytest.approx(score.dice) and permuted.hd95 == pytest.approx(score.hd95)
        assert (permuted.tp, permuted.fn, permuted.fp) == (score.tp, score.fn, score.fp)


def test_empty_cases() -> None:
    empty = np.zeros(SHAPE, bool)
    _, gt, cells = case(0, n_lesions=3, n_small=0)
    assert lesion_scores(empty, empty, (1, 1, 1)) == LesionScore(1.0, 0.0, (), (), (), 0, 0, 0)
    missed = lesion_scores(empty, gt, (1, 1, 1))
    assert (missed.dice, missed.hd95, missed.tp, missed.fn, missed.fp) == (0.0, LESION_HD95_PENALTY, 0, 3, 0)
    spurious = lesion_scores(gt, empty, (1, 1, 1))
    assert (spurious.dice, spurious.hd95, spurious.tp, spurious.fn, spurious.fp) == (0.0, 374.0, 0, 0, 3)
    # only lesions under the threshold and nothing spurious: nothing to score, as both empty
    _, small, _ = case(1, n_lesions=0, n_small=2)
    assert lesion_scores(empty, small, (1, 1, 1)) == LesionScore(1.0, 0.0, (), (), (), 0, 0, 0)
    assert lesion_scores(small, small, (1, 1, 1)) == LesionScore(1.0, 0.0, (), (), (), 0, 0, 0)


def two_cubes(gap: int, axis: int = 0) -> np.ndarray:
    mask = np.zeros((40, 24, 24), bool)
    mask[4:8, 8:14, 8:14] = True
    second = [slice(8, 14)] * 3
    second[axis] = slice(8 + gap, 12 + gap) if axis == 0 else slice(14 + gap, 18 + gap)
    mask[tuple(second)] = True
    return mask


@pytest.mark.parametrize("dilation", [1, 3])
def test_reference_fragments_within_twice_the_dilation_are_one_lesion(dilation: int) -> None:
    rules = LesionRules(dilation=dilation, min_volume_mm3=0.0)
    for axis in (0, 1):
        near, far = two_cubes(2 * dilation, axis), two_cubes(2 * dilation + 1, axis)
        assert lesion_scores(near, near, (1, 1, 1), rules).tp == 1
        assert lesion_scores(far, far, (1, 1, 1), rules).tp == 2
        # one fragment predicted: the merged lesion is found, two separate lesions lose one
        first = near & (np.indices(near.shape)[axis] < (8 if axis == 0 else 14))
        assert lesion_scores(first, near, (1, 1, 1), rules).fn == 0
        first = far & (np.indices(far.shape)[axis] < (8 if axis == 0 else 14))
        assert lesion_scores(first, far, (1, 1, 1), rules).fn == 1


@pytest.mark.parametrize("dilation", [1, 3])
def test_a_component_matches_when_it_touches_the_dilated_lesion(dilation: int) -> None:
    rules = LesionRules(dilation=dilation, min_volume_mm3=0.0)
    gt = np.zeros((40, 20, 20), bool)
    gt[5:10, 5:10, 5:10] = True
    for gap, matched in ((dilation - 1, True), (dilation, False)):
        pred = np.zeros_like(gt)
        pred[10 + gap : 14 + gap, 5:10, 5:10] = True  # `gap` empty slices between lesion and component
        score = lesion_scores(pred, gt, (1, 1, 1), rules)
        assert (score.tp, score.fn, score.fp) == ((1, 0, 0) if matched else (0, 1, 1))
        assert score.lesion_dice == (0.0,)
        assert (score.lesion_hd95[0] < LESION_HD95_PENALTY) == matched


def test_dilation_is_18_connected_and_components_26_connected() -> None:
    # three iterations of the 18-neighbourhood reach (k, k, k) for 3k <= 6 only (26 would reach k = 3)
    rules = LesionRules(dilation=3, min_volume_mm3=0.0)
    gt = np.zeros((12, 12, 12), bool)
    gt[2, 2, 2] = True
    for k, matched in ((2, True), (3, False)):
        pred = np.zeros_like(gt)
        pred[2 + k, 2 + k, 2 + k] = True
        assert lesion_scores(pred, gt, (1, 1, 1), rules).fp == int(not matched)
    # cubes that touch at one corner are one component, one voxel apart they are two
    for gap, components in ((0, 1), (1, 2)):
        pred = np.zeros((12, 12, 12), bool)
        pred[:3, :3, :3] = True
        pred[3 + gap : 6 + gap, 3 + gap : 6 + gap, 3 + gap : 6 + gap] = True
        assert lesion_scores(pred, np.zeros_like(pred), (1, 1, 1), rules).fp == components


def test_one_component_over_two_lesions_counts_whole_for_each() -> None:
    gt = np.zeros((40, 16, 16), bool)
    gt[4:10, 4:10, 4:10] = gt[28:34, 4:10, 4:10] = True
    pred = np.zeros_like(gt)
    pred[5:33, 5:9, 5:9] = True
    score = lesion_scores(pred, gt, (1, 1, 1), LesionRules(1, 0.0))
    expected = [
        dice(pred, gt & (np.indices(gt.shape)[0] < 20)),
        dice(pred, gt & (np.indices(gt.shape)[0] > 20)),
    ]
    assert score.lesion_dice == pytest.approx(expected) and (score.tp, score.fn, score.fp) == (2, 0, 0)


@pytest.mark.parametrize(
    ("spacing", "voxels", "scored"),
    [((1, 1, 1), 50, False), ((1, 1, 1), 51, True), ((2, 1, 1), 25, False), ((2, 1, 1), 26, True)],
)
def test_minimum_volume_is_in_cubic_mm_and_exclusive(spacing, voxels: int, scored: bool) -> None:
    gt = np.zeros((20, 20, 80), bool)
    gt[5, 5, 5 : 5 + voxels] = True
    score = lesion_scores(np.zeros_like(gt), gt, spacing)
    assert score.fn == int(scored) and score.dice == (0.0 if scored else 1.0)
    assert score.lesion_volume_mm3 == ((voxels * np.prod(spacing),) if scored else ())


def naive_scores(pred: np.ndarray, gt: np.ndarray, spacing, rules: LesionRules) -> tuple[float, float, int]:
    """The 2023 reference's loop on the full volume, no crop: (dice, hd95, fp)."""
    dilated, _ = ndimage.label(
        ndimage.binary_dilation(gt, DILATION_STRUCTURE, iterations=rules.dilation), CONNECTIVITY
    )
    lesions = np.where(gt, dilated, 0)
    components, n = ndimage.label(pred, CONNECTIVITY)
    matched, dices, distances = set(), [], []
    for k in range(1, lesions.max() + 1):
        reach = ndimage.binary_dilation(lesions == k, DILATION_STRUCTURE, iterations=rules.dilation)
        hits = set(np.unique(components[reach])) - {0}
        matched |= hits
        if (lesions == k).sum() * np.prod(spacing) > rules.min_volume_mm3:
            p = np.isin(components, list(hits))
            dices.append(dice(p, lesions == k))
            distances.append(hd95(p, lesions == k, spacing) if hits else LESION_HD95_PENALTY)
    fp = n - len(matched)
    if not dices and not fp:
        return 1.0, 0.0, 0
    return sum(dices) / (len(dices) + fp), (sum(distances) + fp * 374.0) / (len(dices) + fp), fp


def test_crop_agrees_with_the_full_volume_near_borders() -> None:
    for seed in SEEDS:
        rng = np.random.default_rng(seed)
        gt = rng.random((24, 20, 16)) < 0.02  # scattered specks, many at the border, merged by dilation
        gt |= ellipsoid(rng.integers(0, 16, 3), (4, 5, 3), shape=gt.shape)
        pred = rng.random(gt.shape) < 0.015
        rules = LesionRules(int(rng.integers(1, 4)), 2.0)
        score = lesion_scores(pred, gt, (1.0, 1.5, 1.0), rules)
        expected = naive_scores(pred, gt, (1.0, 1.5, 1.0), rules)
        assert (score.dice, score.hd95, score.fp) == pytest.approx(expected)


def test_case_scores_in_nnunet_and_brats_2023_labels_agree() -> None:
    for seed in SEEDS[:4]:
        rng = np.random.default_rng(seed)
        ref, pred = np.zeros(SHAPE, np.uint8), np.zeros(SHAPE, np.uint8)
        for cell in CELLS[: 1 + seed % 4]:
            for label, radius in ((1, 7), (2, 4), (3, 2.5)):  # oedema ⊃ core ⊃ enhancing, nnU-Net labels
                ref[ellipsoid(cell_centre(cell), (radius,) * 3)] = label
                pred[
                    ellipsoid(cell_centre(cell) + rng.integers(-1, 2, 3), (radius + rng.integers(-1, 2),) * 3)
                ] = label
        spacing = (1.0, 1.2, 0.9)
        ours = evaluate_case_lesionwise(pred, ref, NNUNET_REGIONS, REGION_NAMES, spacing)
        brats = evaluate_case_lesionwise(
            nnunet_to_brats(pred, "2023"),
            nnunet_to_brats(ref, "2023"),
            brats_regions("2023"),
            REGION_NAMES,
            spacing,
        )
        assert list(ours) == lesion_metric_columns(REGION_NAMES) == list(brats)
        assert ours == brats
        assert ours["LesionDice_WT"] > 0.5 and ours["LesionHD95_ET"] < LESION_HD95_PENALTY


def test_et_postprocessing_applies_to_the_prediction_only() -> None:
    ref = np.zeros(SHAPE, np.uint8)
    ref[ellipsoid(cell_centre(CELLS[0]), (6, 6, 6))] = 1
    ref[ellipsoid(cell_centre(CELLS[0]), (3, 3, 3))] = 3
    kept = evaluate_case_lesionwise(ref, ref, NNUNET_REGIONS, REGION_NAMES, (1, 1, 1))
    emptied = evaluate_case_lesionwise(
        ref, ref, NNUNET_REGIONS, REGION_NAMES, (1, 1, 1), et_index=2, postprocess_et_voxels=500
    )
    assert kept["LesionDice_ET"] == 1.0 and emptied["LesionDice_ET"] == 0.0
    assert emptied["LesionHD95_ET"] == LESION_HD95_PENALTY and emptied["LesionDice_WT"] == 1.0


def test_argument_checks() -> None:
    mask = np.zeros((4, 4, 4), bool)
    with pytest.raises(ValueError, match="shapes differ"):
        lesion_scores(mask, mask[:3], (1, 1, 1))
    with pytest.raises(ValueError, match="3-D"):
        lesion_scores(mask[0], mask[0], (1, 1))
    with pytest.raises(ValueError, match="spacing"):
        lesion_scores(mask, mask, (1, 1))
    with pytest.raises(ValueError, match="dilation"):
        LesionRules(dilation=0, min_volume_mm3=50.0)
    with pytest.raises(ValueError, match="postprocess_et_voxels needs et_index"):
        evaluate_case_lesionwise(mask, mask, [[1]], ["ET"], (1, 1, 1), postprocess_et_voxels=5)
