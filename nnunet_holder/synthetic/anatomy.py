"""The BraTS image grid and a per-case brain on it: the MNI152 tissue maps under a small random affine.

BraTS volumes are 240×240×155 voxels of 1 mm with an LPS header (ITK direction identity, origin
(0, -239, 0)). A coarser `spacing` keeps that field of view with fewer voxels, each voxel centre at the
centre of the block of 1 mm voxels it replaces. Every case draws its own rotation, scale and shift, so
the cases do not share one brain shape voxel for voxel.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
from scipy.ndimage import affine_transform
from scipy.spatial.transform import Rotation

from nnunet_holder.synthetic.template import MAPS, load_template

BRATS_SHAPE_MM = (240, 240, 155)
BRATS_ORIGIN_LPS = (0.0, -239.0, 0.0)
_LPS_TO_RAS = np.diag([-1.0, -1.0, 1.0])


@dataclass(frozen=True)
class Grid:
    spacing: float
    shape: tuple[int, int, int]  # (x, y, z), the array order used throughout the generator
    origin: tuple[float, float, float]  # LPS mm of voxel (0, 0, 0)

    @classmethod
    def brats(cls, spacing: float = 1.0) -> Grid:
        if spacing <= 0:
            raise ValueError(f"spacing must be positive, got {spacing}")
        shape = tuple(max(1, math.ceil(n / spacing - 1e-6)) for n in BRATS_SHAPE_MM)
        origin = tuple(o + (spacing - 1) / 2 for o in BRATS_ORIGIN_LPS)
        return cls(float(spacing), shape, origin)

    def index_to_ras(self) -> np.ndarray:
        """4×4 matrix: voxel index (x, y, z) -> RAS mm."""
        matrix = np.eye(4)
        matrix[:3, :3] = _LPS_TO_RAS * self.spacing
        matrix[:3, 3] = _LPS_TO_RAS @ np.asarray(self.origin)
        return matrix

    def centre_ras(self) -> np.ndarray:
        return (self.index_to_ras() @ np.append((np.asarray(self.shape) - 1) / 2, 1))[:3]


@dataclass
class Anatomy:
    grid: Grid
    tissue: dict[str, np.ndarray]  # brain, gm, wm, csf -> probability map on the grid
    brain_mask: np.ndarray  # bool
    index_to_mni: np.ndarray  # 4×4


def sample_anatomy(grid: Grid, rng: np.random.Generator) -> Anatomy:
    template = load_template(grid.spacing)
    rotation = Rotation.from_rotvec(rng.normal(0.0, 0.05, 3)).as_matrix()
    # MNI152 is a large brain (~1.9 l); BraTS brains are 1.2-1.6 l
    scale = rng.uniform(0.86, 0.95, 3)
    shift = rng.normal(0.0, 3.0, 3)
    ras_to_mni = np.eye(4)
    ras_to_mni[:3, :3] = rotation @ np.diag(1.0 / scale)
    ras_to_mni[:3, 3] = template.brain_centre + shift - ras_to_mni[:3, :3] @ grid.centre_ras()
    index_to_mni = ras_to_mni @ grid.index_to_ras()
    index_to_template = np.linalg.inv(template.affine) @ index_to_mni
    # resample only the grid's part that the template's brain maps into (about half the field of view)
    corners = np.array(np.meshgrid(*[(lo, hi) for lo, hi in zip(*template.brain_box, strict=True)])).reshape(
        3, -1
    )
    to_index = np.linalg.inv(index_to_template)
    mapped = to_index[:3, :3] @ corners + to_index[:3, 3:]
    lower = np.clip(np.floor(mapped.min(1)).astype(int) - 2, 0, grid.shape)
    upper = np.clip(np.ceil(mapped.max(1)).astype(int) + 3, 0, grid.shape)
    box = tuple(slice(lo, hi) for lo, hi in zip(lower, upper, strict=True))
    offset = index_to_template[:3, :3] @ lower + index_to_template[:3, 3]
    tissue = {}
    for i, name in enumerate(MAPS):
        tissue[name] = np.zeros(grid.shape, dtype=np.float32)
        tissue[name][box] = affine_transform(
            template.maps[i],
            index_to_template[:3, :3],
            offset=offset,
            output_shape=tuple(upper - lower),
            order=1,
            mode="constant",
            cval=0.0,
        )
    tissue["csf"] = np.clip(tissue["brain"] - tissue["gm"] - tissue["wm"], 0.0, 1.0)
    brain_mask = tissue["brain"] > 0.5
    return Anatomy(grid, tissue, brain_mask, index_to_mni)
