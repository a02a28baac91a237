"""The four BraTS contrasts rendered from tissue and tumour fractions, following the radiological picture.

Relative signal (normal white matter on T1 = 1): T1 white matter brighter than grey matter, CSF dark;
T1ce like T1 plus a bright enhancing rim, necrosis dark; T2 CSF, oedema and necrosis bright; FLAIR
like T2 with CSF suppressed (dark), oedema brightest. The enhancing tumour stands out only on T1ce:
elsewhere it sits between the other tumour parts. Each case jitters these values, has its own bias
field per contrast, Rician noise and an arbitrary intensity scale, and is zero outside the brain
like skull-stripped BraTS data.
"""

from __future__ import annotations

import numpy as np

from nnunet_holder.brats import MODALITIES
from nnunet_holder.synthetic.anatomy import Anatomy
from nnunet_holder.synthetic.noise import bias_field, rician, smooth_noise
from nnunet_holder.synthetic.tumour import Tumour

CONTRASTS: tuple[str, ...] = MODALITIES

SIGNAL: dict[str, dict[str, float]] = {
    #          wm    gm    csf   edema  necrosis  enhancing  non-enhancing core
    "T1": dict(wm=1.00, gm=0.72, csf=0.28, edema=0.62, necrosis=0.32, enhancing=0.64, nonenhancing=0.55),
    "T1ce": dict(wm=1.00, gm=0.74, csf=0.28, edema=0.64, necrosis=0.30, enhancing=1.70, nonenhancing=0.58),
    "T2": dict(wm=0.48, gm=0.72, csf=1.45, edema=1.10, necrosis=1.40, enhancing=0.95, nonenhancing=1.00),
    "FLAIR": dict(wm=0.55, gm=0.78, csf=0.12, edema=1.25, necrosis=0.85, enhancing=1.10, nonenhancing=1.15),
}
_JITTER = 0.04  # per-case relative spread of each tissue's signal
_NOISE = 0.025  # Rician sigma relative to white matter on T1
_TEXTURE = {"edema": (0.05, 10.0), "solid": (0.08, 4.0), "necrosis": (0.12, 5.0)}  # (amplitude, scale mm)


def render(anatomy: Anatomy, tumour: Tumour, rng: np.random.Generator) -> dict[str, np.ndarray]:
    """int16 images per contrast, on the anatomy's grid (x, y, z order)."""
    grid = anatomy.grid
    tissue = anatomy.tissue
    box_shape = tuple(s.stop - s.start for s in tumour.box)
    textures = {}
    for part, (amplitude, scale) in _TEXTURE.items():
        texture = np.ones(grid.shape, dtype=np.float32)
        texture[tumour.box] += amplitude * smooth_noise(rng, box_shape, grid.spacing, scale)
        textures[part] = texture
    textures["edema"][tumour.box] *= tumour.edema_gradient
    normal = np.clip(1.0 - tumour.whole, 0.0, 1.0)
    solid_kind = "enhancing" if tumour.kind.enhancing else "nonenhancing"
    images = {}
    for contrast in CONTRASTS:
        signal = {k: v * (1.0 + rng.normal(0.0, _JITTER)) for k, v in SIGNAL[contrast].items()}
        image = normal * (
            signal["wm"] * tissue["wm"] + signal["gm"] * tissue["gm"] + signal["csf"] * tissue["csf"]
        )
        image += signal["edema"] * tumour.edema * textures["edema"]
        image += signal[solid_kind] * tumour.solid * textures["solid"]
        image += signal["necrosis"] * tumour.necrosis * textures["necrosis"]
        image *= bias_field(rng, grid.shape)
        scale = rng.uniform(300.0, 1500.0)
        # skull-stripped like BraTS: exactly zero outside the brain, noise only inside
        inside = rician(rng, image[anatomy.brain_mask].astype(np.float32), _NOISE) * scale
        out = np.zeros(grid.shape, dtype=np.int16)
        out[anatomy.brain_mask] = np.clip(np.rint(inside), 0, np.iinfo(np.int16).max)
        images[contrast] = out
    return images
