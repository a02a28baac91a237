"""Random smooth fields: deformations of tumour shapes, tissue texture and the scanner's bias field."""

from __future__ import annotations

import numpy as np
from scipy.ndimage import affine_transform, gaussian_filter


def smooth_noise(
    rng: np.random.Generator, shape: tuple[int, ...], spacing: float, scale_mm: float
) -> np.ndarray:
    """Zero-mean, unit-variance Gaussian noise with a correlation length of about `scale_mm`.

    Smoothed on a grid of scale/4 mm and linearly interpolated from there: the cost does not grow with
    the smoothing kernel, the field looks the same at every spacing, and at a quarter of the correlation
    length the linear interpolation's kinks are invisible.
    """
    step = scale_mm / 4.0
    coarse = tuple(int(np.ceil(n * spacing / step)) + 4 for n in shape)
    field = gaussian_filter(rng.standard_normal(coarse, dtype=np.float32), sigma=2.0, mode="wrap")
    zoom = np.full(len(shape), spacing / step)
    fine = affine_transform(field, zoom, offset=1.5, output_shape=shape, order=1, mode="nearest")
    fine -= fine.mean()
    return (fine / (fine.std() + 1e-6)).astype(np.float32)


def bias_field(rng: np.random.Generator, shape: tuple[int, ...], strength: float = 0.08) -> np.ndarray:
    """A smooth multiplicative field exp(quadratic polynomial) over the volume, near 1 (about ±20 %)."""
    axes = [np.linspace(-1.0, 1.0, n, dtype=np.float32) for n in shape]
    x, y, z = np.ix_(*axes)
    terms = [x, y, z, x * x, y * y, z * z, x * y, x * z, y * z]
    log_field = np.zeros(shape, dtype=np.float32)
    for term, coefficient in zip(terms, rng.normal(0.0, strength, len(terms)), strict=True):
        log_field += np.float32(coefficient) * term
    return np.exp(log_field)


def rician(rng: np.random.Generator, values: np.ndarray, sigma: float) -> np.ndarray:
    """Magnitude of the values plus complex Gaussian noise: Rician, as in magnitude MR images."""
    real = values + np.float32(sigma) * rng.standard_normal(values.shape, dtype=np.float32)
    imaginary = np.float32(sigma) * rng.standard_normal(values.shape, dtype=np.float32)
    return np.sqrt(real * real + imaginary * imaginary)
