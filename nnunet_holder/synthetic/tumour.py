"""Irregular nested glioma-like tumours: oedema ⊃ tumour core ⊃ necrosis, with an enhancing rim.

Each compartment is the inside of a deformed ellipsoid: a level function r·(1 + smooth noise) below a
radius. Core and necrosis share the large-scale deformation (so the enhancing rim follows the core's
shape); the oedema has its own shape and centre and reaches further into white matter than into
grey matter, as vasogenic oedema does. Soft (partial-volume) weights feed the image intensities, and
the hard label masks are those weights above 0.5, so labels and images agree at every spacing.
Sizes are in mm and checked in mm³, so a case keeps its tumour at 4 mm (WT ≥ 20 cm³ ≈ 310 voxels,
ET ≥ 3 cm³ ≈ 47 voxels).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy.ndimage import binary_dilation, distance_transform_edt, label
from scipy.spatial.transform import Rotation

from nnunet_holder.synthetic.anatomy import Anatomy
from nnunet_holder.synthetic.noise import smooth_noise

MIN_WT_MM3 = 20_000.0
MIN_CORE_MM3 = 4_000.0
MIN_ET_MM3 = 3_000.0
MIN_NECROSIS_MM3 = 1_000.0
_ATTEMPTS = 40


@dataclass(frozen=True)
class TumourKind:
    enhancing: bool
    necrosis: bool

    @classmethod
    def for_case(cls, index: int) -> TumourKind:
        """One case in five has no enhancing tumour (lower-grade-like), one in five no necrosis."""
        if index % 5 == 4:
            return cls(enhancing=False, necrosis=False)
        if index % 5 == 2:
            return cls(enhancing=True, necrosis=False)
        return cls(enhancing=True, necrosis=True)


@dataclass
class Tumour:
    kind: TumourKind
    box: tuple[slice, ...]  # the part of the grid the tumour lies in
    # soft fractions of each voxel, summing with the normal tissue fraction (1 - whole) to 1
    edema: np.ndarray
    solid: np.ndarray  # enhancing tumour if kind.enhancing, else non-enhancing core
    necrosis: np.ndarray
    edema_gradient: np.ndarray  # signal factor of the oedema, over `box` only
    # hard masks, mutually exclusive, nested as regions: WT = edema|solid|necrosis, TC = solid|necrosis
    edema_mask: np.ndarray
    solid_mask: np.ndarray
    necrosis_mask: np.ndarray

    @property
    def whole(self) -> np.ndarray:
        return self.edema + self.solid + self.necrosis


def _sigmoid(x: np.ndarray) -> np.ndarray:
    return (0.5 * (1.0 + np.tanh(0.5 * x))).astype(np.float32)


def _deformation(noise: np.ndarray) -> np.ndarray:
    # bounded so that no lobe reaches past the box the tumour is drawn in (1.17 / 0.6 < 2.2 radii)
    return np.clip(1.0 + noise, 0.6, 1.6)


def _ellipsoid_radius(rng: np.random.Generator, offsets: np.ndarray, elongation: float) -> np.ndarray:
    """Distance in mm from the centre, measured in a random ellipsoid of unit volume ratio."""
    rotation = Rotation.random(random_state=rng).as_matrix().astype(np.float32)
    axes = np.exp(rng.normal(0.0, elongation, 3))
    axes /= np.cbrt(axes.prod())
    squared = np.zeros(offsets.shape[1:], dtype=np.float32)
    for k in range(3):
        local = offsets[0] * rotation[0, k] + offsets[1] * rotation[1, k] + offsets[2] * rotation[2, k]
        squared += (local / np.float32(axes[k])) ** 2
    return np.sqrt(squared)


def _connected_to(mask: np.ndarray, seed: np.ndarray) -> np.ndarray:
    """The parts of `mask` connected to `seed`: no islands of oedema away from the tumour."""
    components, _ = label(mask)
    keep = np.unique(components[seed & mask])
    return np.isin(components, keep[keep > 0])


def _centre_candidates(anatomy: Anatomy, core_radius: float) -> np.ndarray:
    # the distance map on a ~4 mm stride is plenty to place a centre, and 60× cheaper at 1 mm
    stride = max(1, round(4.0 / anatomy.grid.spacing))
    mask = anatomy.brain_mask[::stride, ::stride, ::stride]
    depth = distance_transform_edt(mask, sampling=anatomy.grid.spacing * stride)
    wm = anatomy.tissue["wm"][::stride, ::stride, ::stride]
    candidates = np.argwhere((depth >= core_radius + 6.0) & (wm > 0.4)) * stride
    mni_z = (anatomy.index_to_mni[2, :3] @ candidates.T) + anatomy.index_to_mni[2, 3]
    return candidates[mni_z > -10.0]  # supratentorial, where adult gliomas mostly grow


def _draw(anatomy: Anatomy, kind: TumourKind, rng: np.random.Generator) -> Tumour | None:
    grid = anatomy.grid
    r_whole = rng.uniform(20.0, 29.0)
    r_core = r_whole * rng.uniform(0.5, 0.65)
    # a rim of at least 4.5 mm survives 4 mm sampling
    r_necrosis = r_core - max(4.5, r_core * rng.uniform(0.3, 0.45)) if kind.necrosis else 0.0
    candidates = _centre_candidates(anatomy, r_core)
    if len(candidates) == 0:
        return None
    centre = candidates[rng.integers(len(candidates))]
    half = int(np.ceil((2.2 * r_whole + 10.0) / grid.spacing))
    box = tuple(
        slice(max(0, c - half), min(n, c + half + 1)) for c, n in zip(centre, grid.shape, strict=True)
    )
    box_shape = tuple(s.stop - s.start for s in box)
    offsets = np.stack(
        np.meshgrid(
            *[(np.arange(s.start, s.stop) - c) * grid.spacing for s, c in zip(box, centre, strict=True)],
            indexing="ij",
        )
    ).astype(np.float32)

    large = smooth_noise(rng, box_shape, grid.spacing, 22.0)
    fine = smooth_noise(rng, box_shape, grid.spacing, 8.0)
    core_r = _ellipsoid_radius(rng, offsets, 0.15)
    f_core = core_r * _deformation(0.2 * large + 0.06 * fine)
    f_necrosis = core_r * _deformation(0.2 * large + 0.12 * smooth_noise(rng, box_shape, grid.spacing, 6.0))
    edema_shift = rng.normal(0.0, 0.15 * r_core, 3).astype(np.float32)
    edema_r = _ellipsoid_radius(rng, offsets - edema_shift[:, None, None, None], 0.25)
    f_edema = edema_r * _deformation(0.28 * smooth_noise(rng, box_shape, grid.spacing, 16.0) + 0.08 * fine)
    # vasogenic oedema follows white matter and stops at CSF
    r_edema_local = r_whole * (0.72 + 0.45 * anatomy.tissue["wm"][box] - 0.4 * anatomy.tissue["csf"][box])

    width = 0.35 * max(grid.spacing, 1.0)  # partial-volume blur of the boundaries, in mm
    edema_width = 1.0 + width  # oedema fades out over a few mm
    brain = np.clip(anatomy.tissue["brain"][box], 0.0, 1.0)
    zero = np.zeros_like(brain)
    w_necrosis = _sigmoid((r_necrosis - f_necrosis) / width) * brain if kind.necrosis else zero
    w_core = np.maximum(_sigmoid((r_core - f_core) / width) * brain, w_necrosis)
    w_whole = np.maximum(_sigmoid((r_edema_local - f_edema) / edema_width) * brain, w_core)

    inside = anatomy.brain_mask[box]
    necrosis_box = (w_necrosis > 0.5) & inside
    core_box = (w_core > 0.5) & inside
    whole_box = _connected_to((w_whole > 0.5) & inside, core_box)
    w_whole = np.where(binary_dilation(whole_box, iterations=2), w_whole, w_core)
    voxel = grid.spacing**3
    volumes = {
        "whole": whole_box.sum() * voxel,
        "core": core_box.sum() * voxel,
        "solid": (core_box & ~necrosis_box).sum() * voxel,
        "necrosis": necrosis_box.sum() * voxel,
    }
    if (
        volumes["whole"] < MIN_WT_MM3
        or volumes["core"] < MIN_CORE_MM3
        or (kind.enhancing and volumes["solid"] < MIN_ET_MM3)
        or (kind.necrosis and volumes["necrosis"] < MIN_NECROSIS_MM3)
    ):
        return None

    def full(part: np.ndarray) -> np.ndarray:
        out = np.zeros(grid.shape, dtype=part.dtype)
        out[box] = part
        return out

    return Tumour(
        kind=kind,
        box=box,
        edema=full(w_whole - w_core),
        solid=full(w_core - w_necrosis),
        necrosis=full(w_necrosis),
        # oedema is brightest next to the tumour core and fades with distance
        edema_gradient=0.85 + 0.25 * np.exp(-np.maximum(f_core - r_core, 0.0) / 12.0),
        edema_mask=full(whole_box & ~core_box),
        solid_mask=full(core_box & ~necrosis_box),
        necrosis_mask=full(necrosis_box),
    )


def grow_tumour(anatomy: Anatomy, kind: TumourKind, rng: np.random.Generator) -> Tumour:
    """Draw tumours until one is large enough in every compartment the kind asks for."""
    for _ in range(_ATTEMPTS):
        tumour = _draw(anatomy, kind, rng)
        if tumour is not None:
            return tumour
    raise RuntimeError(f"no tumour of kind {kind} fitted this brain in {_ATTEMPTS} attempts")
