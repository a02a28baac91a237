"""The MNI152 anatomy that synthetic cases are built on, read from the copy shipped inside the nilearn wheel.

Files: `nilearn/datasets/data/mni_icbm152_{t1,gm,wm}_tal_nlin_sym_09a_converted.nii.gz` (the ICBM 2009a
nonlinear symmetric template, skull-stripped, and its grey/white-matter probability maps; nilearn's
`load_mni152_template`, `load_mni152_gm_template` and `load_mni152_wm_template` read the same files).
They are located through the installed package and read with nibabel: no network access, and
nilearn itself (with its pandas/scikit-learn imports) is never imported.

Licence. nilearn's description of this dataset (`nilearn/datasets/description/icbm152_2009.rst`)
points to http://www.bic.mni.mcgill.ca/ServicesAtlases/ICBM152NLin2009 and cites Collins et al. 1999,
Fonov et al. 2009 and Fonov et al. 2011 (NeuroImage 54:313-327). The template's own distribution
carries this notice, kept here with the code that uses the data:

    Copyright (C) 1993-2004 Louis Collins, McConnell Brain Imaging Centre, Montreal Neurological
    Institute, McGill University. Permission to use, copy, modify, and distribute this software and
    its documentation for any purpose and without fee is hereby granted, provided that the above
    copyright notice appear in all copies. The authors and McGill University make no representations
    about the suitability of this software for any purpose. It is provided "as is" without express or
    implied warranty. The authors are not responsible for any data loss, equipment damage, property
    loss, or injury to subjects or patients resulting from the use or misuse of this software package.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass
from importlib.util import find_spec
from pathlib import Path

import nibabel as nib
import numpy as np
from scipy.ndimage import gaussian_filter

_FILES = {
    "t1": "mni_icbm152_t1_tal_nlin_sym_09a_converted.nii.gz",
    "gm": "mni_icbm152_gm_tal_nlin_sym_09a_converted.nii.gz",
    "wm": "mni_icbm152_wm_tal_nlin_sym_09a_converted.nii.gz",
}
MAPS: tuple[str, ...] = ("brain", "gm", "wm")


@dataclass(frozen=True)
class Template:
    maps: np.ndarray  # (3, X, Y, Z) float32 in MAPS order, probabilities in [0, 1]
    affine: np.ndarray  # voxel -> MNI (RAS) mm
    brain_box: tuple[np.ndarray, np.ndarray]  # first and last voxel index of the brain, with a margin
    brain_centre: np.ndarray  # MNI mm, centre of the brain's bounding box


def template_dir() -> Path:
    spec = find_spec("nilearn")
    if spec is None or not spec.submodule_search_locations:
        raise RuntimeError("nilearn is not installed; the synthetic data need its bundled MNI152 template")
    folder = Path(next(iter(spec.submodule_search_locations))) / "datasets" / "data"
    missing = [name for name in _FILES.values() if not (folder / name).is_file()]
    if missing:
        raise RuntimeError(f"nilearn's MNI152 files are missing from {folder}: {', '.join(missing)}")
    return folder


@functools.lru_cache(maxsize=2)
def load_template(spacing: float) -> Template:
    """Tissue maps at 1 mm, smoothed to the target spacing so coarse grids are not aliased."""
    folder = template_dir()
    images = {key: nib.load(str(folder / name)) for key, name in _FILES.items()}
    data = {key: np.asarray(img.dataobj, dtype=np.float32) / 255.0 for key, img in images.items()}
    brain = (data["t1"] > 0).astype(np.float32)
    gm = np.minimum(data["gm"], brain)
    wm = np.minimum(data["wm"], brain)
    maps = np.stack([brain, gm, wm])
    if spacing > 1:
        # a Gaussian whose FWHM makes the 1 mm template look like an acquisition at `spacing`
        sigma = 0.42 * np.sqrt(spacing**2 - 1)
        maps = np.stack([gaussian_filter(m, sigma) for m in maps])
    affine = images["t1"].affine
    inside = np.argwhere(brain > 0)
    first, last = inside.min(0), inside.max(0)
    centre_voxel = (first + last) / 2
    margin = 2 + int(np.ceil(spacing))  # the smoothing spreads the maps a little beyond the brain
    return Template(
        maps.astype(np.float32),
        affine,
        (first - margin, last + margin),
        (affine @ np.append(centre_voxel, 1))[:3],
    )
