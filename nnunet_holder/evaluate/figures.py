"""Figures of the all-subset evaluation: a Dice heatmap (subsets × regions) and a Fig. 2-style overlay.

Both write PNG files through matplotlib's object API rendered by Agg: no display is needed and
pyplot's global backend is never touched (a notebook importing this keeps its own); matplotlib
is imported here only, so importing the evaluation package stays light. Volumes are in
nnU-Net/SimpleITK array order (z, y, x): axial slices are taken along axis 0 and shown with
row 0 at the top, which for BraTS (LPS, identity direction) is the radiological view
(anterior up, patient's right on the left).
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

import matplotlib
import numpy as np
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.colors import ListedColormap, to_hex, to_rgba
from matplotlib.figure import Figure
from matplotlib.patches import Patch

from nnunet_holder.brats import FLAIR_NAMES, NNUNET_LABEL_NAMES
from nnunet_holder.evaluate.tables import AVERAGE, Summary

# the usual BraTS viewer colours: edema green, necrosis red, enhancing yellow
_LABEL_COLOURS = {1: "#2ca02c", 2: "#d62728", 3: "#ffd700"}


def dice_heatmap(summary: Summary, path: str | Path, title: str | None = None) -> Path:
    """Mean Dice (%) per subset (rows, in the summary's order, then Avg) and region (columns)."""
    regions = summary.regions("Dice")
    if not regions:
        raise ValueError("the summary has no Dice metrics")
    rows = [*summary.order, AVERAGE]
    values = np.array([[summary.stats[s][f"Dice_{r}"].mean * 100 for r in regions] for s in rows])

    fig = _figure(figsize=(1.3 * len(regions) + 2.4, 0.36 * len(rows) + 1.4), dpi=150)
    ax = fig.subplots()
    image = ax.imshow(values, cmap="viridis", vmin=0, vmax=100, aspect="auto")
    ax.set_xticks(range(len(regions)), regions)
    ax.set_yticks(range(len(rows)), [*summary.order, "Avg"])
    ax.xaxis.tick_top()
    ax.tick_params(length=0)
    ax.axhline(len(summary.order) - 0.5, color="white", linewidth=3)
    for i in range(len(rows)):
        for j in range(len(regions)):
            # dark text on the bright (yellow) end of viridis, light text elsewhere
            colour = "black" if values[i, j] > 60 else "white"
            weight = "bold" if i == len(rows) - 1 else "normal"
            ax.text(
                j,
                i,
                f"{values[i, j]:.1f}",
                ha="center",
                va="center",
                color=colour,
                fontsize=8,
                fontweight=weight,
            )
    fig.colorbar(image, ax=ax, label="Dice (%)", fraction=0.08, pad=0.04)
    if title:
        ax.set_title(title, pad=22)
    fig.tight_layout()
    return _save(fig, path)


def overlay_figure(
    images: Mapping[str, np.ndarray],
    gt_seg: np.ndarray,
    preds: Mapping[str, np.ndarray],
    path: str | Path,
    region_labels: Mapping[int, str] | None = None,
    title: str | None = None,
) -> Path:
    """One row like the paper's Fig. 2: each single modality with its prediction, Full, reference.

    `images` maps modality names (channel order) to (z, y, x) volumes; `preds` maps subset names
    to label maps and must hold every modality name and "Full"; `region_labels` maps label
    values to legend names (default: nnU-Net's BraTS labels). The slice is the axial slice with
    the largest reference tumour area; Full and the reference are drawn over FLAIR if there is
    one, else over the first image.
    """
    labels = dict(NNUNET_LABEL_NAMES if region_labels is None else region_labels)
    if not labels:
        raise ValueError("region_labels is empty")
    missing = [k for k in [*images, "Full"] if k not in preds]
    if missing:
        raise ValueError(f"no prediction for {missing}")
    for name, volume in [*images.items(), *preds.items()]:
        if volume.shape != gt_seg.shape:
            raise ValueError(f"{name!r} has shape {volume.shape}, the reference {gt_seg.shape}")

    z = tumour_slice(gt_seg)
    crop = _crop_box(np.stack([np.asarray(v)[z] for v in images.values()]) != 0)
    background = next((k for k in images if k.lower() in FLAIR_NAMES), next(iter(images)))
    panels = [(name, images[name], preds[name], name) for name in images]
    panels.append(("Full", images[background], preds["Full"], f"Full (on {background})"))
    panels.append(("Ground truth", images[background], gt_seg, f"Reference (on {background})"))

    colours = _label_colours(labels)
    lut = np.zeros((max(colours) + 1, 4))
    for value, colour in colours.items():
        lut[value] = to_rgba(colour, alpha=0.55)
    overlay_cmap = ListedColormap(lut)

    fig = _figure(figsize=(2.6 * len(panels), 3.3), dpi=120)
    axes = fig.subplots(1, len(panels), squeeze=False)
    for ax, (label, image, seg, subtitle) in zip(axes[0], panels, strict=True):
        ax.imshow(
            _normalise(np.asarray(image)[z][crop]), cmap="gray", vmin=0, vmax=1, interpolation="nearest"
        )
        seg_slice = np.asarray(seg)[z][crop].astype(np.int64)
        seg_slice[(seg_slice < 0) | (seg_slice >= lut.shape[0])] = 0
        ax.imshow(seg_slice, cmap=overlay_cmap, vmin=0, vmax=lut.shape[0] - 1, interpolation="nearest")
        ax.set_title(label, fontsize=11)
        ax.set_xlabel(subtitle if subtitle != label else "", fontsize=7)
        ax.set_xticks([])
        ax.set_yticks([])
    handles = [Patch(facecolor=colours[v], label=f"{v}: {name}") for v, name in sorted(labels.items())]
    fig.legend(handles=handles, loc="lower center", ncol=len(handles), frameon=False, fontsize=9)
    fig.suptitle(title or f"axial slice z = {z}", fontsize=10)
    fig.tight_layout(rect=(0, 0.08, 1, 0.95))
    return _save(fig, path)


def tumour_slice(gt_seg: np.ndarray) -> int:
    """Index along axis 0 of the slice with the largest tumour (label > 0) area; middle if none."""
    area = (np.asarray(gt_seg) > 0).sum(axis=tuple(range(1, gt_seg.ndim)))
    return int(np.argmax(area)) if area.any() else gt_seg.shape[0] // 2


def _label_colours(labels: Mapping[int, str]) -> dict[int, str]:
    fallback = matplotlib.colormaps["tab10"].colors
    return {
        int(v): _LABEL_COLOURS.get(int(v), to_hex(fallback[i % len(fallback)]))
        for i, v in enumerate(sorted(labels))
    }


def _normalise(image: np.ndarray) -> np.ndarray:
    # percentiles of the non-zero (brain) voxels, so a large zero background does not wash it out
    values = image[image != 0]
    if values.size == 0:
        return np.zeros_like(image, dtype=np.float64)
    low, high = np.percentile(values, [0.5, 99.5])
    return np.clip((image - low) / max(high - low, 1e-12), 0, 1)


def _crop_box(foreground: np.ndarray, margin: int = 4) -> tuple[slice, slice]:
    """In-plane bounding box of the non-zero voxels of any modality, so the brain fills the panel."""
    plane = foreground.any(axis=0)
    if not plane.any():
        return slice(None), slice(None)
    box = []
    for axis in (0, 1):
        hit = np.flatnonzero(plane.any(axis=1 - axis))
        box.append(slice(max(int(hit[0]) - margin, 0), min(int(hit[-1]) + 1 + margin, plane.shape[axis])))
    return box[0], box[1]


def _figure(figsize: tuple[float, float], dpi: int) -> Figure:
    fig = Figure(figsize=figsize, dpi=dpi)
    FigureCanvasAgg(fig)
    return fig


def _save(fig: Figure, path: str | Path) -> Path:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, bbox_inches="tight")
    return path
