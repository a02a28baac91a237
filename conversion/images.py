"""NIfTI file checks and copies used by the conversion: geometry, payload integrity, NaN voxels, gzip copy.

Image channels are copied byte for byte (or gzipped when the source is `.nii`), never resampled or
re-encoded, so intensities and headers reach nnU-Net exactly as BraTS shipped them. Because the
copy skips decoding, the payload is checked separately: a truncated or corrupt file is an error
here rather than a crash in nnU-Net's preprocessing much later. The one exception is a file with
NaN (or infinite) voxels, which nnU-Net's normalisation would spread over the whole channel: its
copy is re-encoded with those voxels set to 0 and the header unchanged (`non_finite` is the rule
that `predict` and `evaluate-subsets` apply too).
"""

from __future__ import annotations

import gzip
import os
import shutil
import struct
import zlib
from dataclasses import dataclass
from pathlib import Path

import nibabel as nib
import numpy as np
import SimpleITK as sitk

_CHUNK = 1 << 22
_GZIP_LEVEL = 3  # sources shipped as .nii: a fast level, the files are rewritten only once


@dataclass(frozen=True)
class Geometry:
    size: tuple[int, ...]
    spacing: tuple[float, ...]
    origin: tuple[float, ...]
    direction: tuple[float, ...]

    @classmethod
    def of(cls, image: sitk.Image | sitk.ImageFileReader) -> Geometry:
        return cls(
            tuple(int(s) for s in image.GetSize()),
            tuple(image.GetSpacing()),
            tuple(image.GetOrigin()),
            tuple(image.GetDirection()),
        )


def read_geometry(path: Path) -> Geometry:
    """Header-only read; raises ValueError when the file is not a 3-D single-channel image.

    A trailing axis of length 1 (a 4-D header of one volume) is read as 3-D, as nnU-Net's SimpleITK
    reader reads it."""
    reader = sitk.ImageFileReader()
    reader.SetFileName(str(path))
    try:
        reader.ReadImageInformation()
    except RuntimeError as e:
        raise ValueError(f"unreadable image: {str(e).strip().splitlines()[-1]}") from e
    dimension, components = reader.GetDimension(), reader.GetNumberOfComponents()
    if dimension != 3 or components != 1:
        vector = f" of {components}-component voxels" if components != 1 else ""
        raise ValueError(
            f"the image is {dimension}-D{vector} (size {tuple(reader.GetSize())}), where a 3-D "
            "single-channel volume is expected"
        )
    return Geometry.of(reader)


def geometry_difference(image: Geometry, reference: Geometry) -> str | None:
    """What differs between two geometries, in words, or None (nnU-Net's own np.allclose tolerances)."""
    if image.size != reference.size:
        return f"shape {image.size} vs {reference.size}"
    for what in ("spacing", "origin", "direction"):
        a, b = getattr(image, what), getattr(reference, what)
        if not np.allclose(a, b, rtol=1e-5, atol=1e-5):
            label = "orientation (direction)" if what == "direction" else what
            return f"{label} {tuple(round(x, 5) for x in a)} vs {tuple(round(x, 5) for x in b)}"
    return None


def _decompressed_size(path: Path) -> int:
    size = 0
    try:
        with gzip.open(path, "rb") as stream:
            while chunk := stream.read(_CHUNK):
                size += len(chunk)
    except EOFError as e:  # the stream stops before its end marker: the file was cut short
        raise ValueError(f"truncated file: the gzip stream ends early ({e})") from e
    except (OSError, zlib.error) as e:
        raise ValueError(f"corrupt gzip data: {e}") from e
    return size


def _gzip_trailer_size(path: Path) -> int:
    """The uncompressed size (mod 2**32) that a single-member gzip file records in its last 4 bytes."""
    with open(path, "rb") as stream:
        stream.seek(-4, os.SEEK_END)
        return struct.unpack("<I", stream.read(4))[0]


def check_payload(path: Path) -> None:
    """Raise ValueError when the voxel data are shorter than the header says or the gzip stream is corrupt.

    A complete gzip file records its uncompressed size in its trailer; a truncated one ends in arbitrary
    bytes. Only when that size disagrees with the header is the file decompressed to find out (it also
    differs for valid multi-member gzip files), which keeps the check cheap for the usual good files.
    """
    compressed = path.name.lower().endswith(".gz")
    try:
        voxels = nib.load(str(path)).dataobj  # reads the header only
    except Exception as e:  # nibabel raises its own ImageFileError and others for broken headers
        if compressed:
            _decompressed_size(path)  # a broken gzip stream is the likelier cause: report that instead
        raise ValueError(f"unreadable NIfTI header: {e}") from e
    expected = int(voxels.offset) + int(np.prod(voxels.shape)) * np.dtype(voxels.dtype).itemsize
    if compressed:
        if _gzip_trailer_size(path) == expected % 2**32:
            return
        size = _decompressed_size(path)
    else:
        size = path.stat().st_size
    if size < expected:
        raise ValueError(
            f"truncated file: {size} bytes of voxel data and header, the header needs {expected}"
        )


def non_finite(array: np.ndarray) -> tuple[np.ndarray, str]:
    """The mask of NaN and infinite voxels of `array`, and what they are in words ("NaN" when all are)."""
    bad = ~np.isfinite(array)
    return bad, "NaN" if np.isnan(array[bad]).all() else "NaN or infinite"


def count_non_finite(path: Path) -> tuple[int, int, str]:
    """(NaN and infinite voxels, all voxels, their words) of a NIfTI image; integer images hold
    none and are not decoded."""
    image = nib.load(str(path))
    if not np.issubdtype(image.get_data_dtype(), np.floating):
        return 0, int(np.prod(image.shape)), "NaN"
    data = np.asanyarray(image.dataobj)
    bad, words = non_finite(data)
    return int(bad.sum()), data.size, words


def copy_with_non_finite_as_zero(source: Path, target: Path) -> None:
    """Write `source` to `target` with its NaN and infinite voxels set to 0; header and geometry kept."""
    image = nib.load(str(source))
    data = np.asanyarray(image.dataobj)
    data = np.where(np.isfinite(data), data, 0).astype(image.get_data_dtype())
    nib.save(type(image)(data, None, image.header), str(target))


def copy_as_nii_gz(source: Path, target: Path) -> None:
    """Copy a NIfTI file to a `.nii.gz` target without decoding it (gzip on the fly for `.nii`)."""
    if source.name.lower().endswith(".gz"):
        shutil.copyfile(source, target)
        return
    with open(source, "rb") as src, gzip.open(target, "wb", compresslevel=_GZIP_LEVEL) as dst:
        shutil.copyfileobj(src, dst, _CHUNK)


def write_labels(values: np.ndarray, geometry_from: sitk.Image, target: Path) -> None:
    """Write a uint8 label map with the geometry (origin, spacing, direction) of `geometry_from`."""
    image = sitk.GetImageFromArray(values.astype(np.uint8, copy=False))
    image.CopyInformation(geometry_from)
    sitk.WriteImage(image, str(target), useCompression=True)


def write_zero_like(reference: Path, target: Path) -> None:
    """Write a zero-filled uint8 image with the grid (size, spacing, origin, direction) of `reference`:
    the file of a channel that a case lacks. nnU-Net's z-score normalisation keeps it exactly 0."""
    reader = sitk.ImageFileReader()
    reader.SetFileName(str(reference))
    reader.ReadImageInformation()  # the header alone: the reference's voxels are not decoded
    image = sitk.Image([int(s) for s in reader.GetSize()], sitk.sitkUInt8)
    image.SetSpacing(reader.GetSpacing())
    image.SetOrigin(reader.GetOrigin())
    image.SetDirection(reader.GetDirection())
    sitk.WriteImage(image, str(target), useCompression=True)
