"""The all-subset evaluation loop and its outputs (tables, heatmap, overlay, timing).

`evaluate_cases` takes already-preprocessed cases (from raw files for `evaluate-subsets`, from
nnU-Net's preprocessed folder for a trainer's final validation), segments every modality subset
(one_pass.py), scores each against the reference with the BraTS rules (metrics.py) and writes
the per-case CSV, the subset table (CSV, Markdown, JSON), the Dice heatmap and, when raw images
are given for a case, the overlay figure.
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from tqdm import tqdm

from nnunet_holder.evaluate.metrics import evaluate_case, metric_columns, regions_from_dataset_labels
from nnunet_holder.evaluate.one_pass import modality_short_names, subset_logits, to_segmentation
from nnunet_holder.evaluate.tables import Summary, summarise, summary_markdown, write_case_csv, write_summary
from nnunet_holder.predict.predictor import HolderPredictor
from nnunet_holder.subsets import all_subsets, subset_name


@dataclass
class PreparedCase:
    case: str
    data: torch.Tensor  # preprocessed (M, *spatial)
    properties: dict  # nnU-Net's properties of the preprocessing
    reference: np.ndarray  # label map in the original geometry
    spacing: tuple[float, ...]  # of the reference's array axes, in mm
    raw_images: np.ndarray | None = None  # (M, *original) for the overlay figure


def evaluate_cases(
    predictor: HolderPredictor,
    cases: Iterable[PreparedCase],
    out_dir: Path,
    postprocess_et: int | None = None,
    num_cases: int | None = None,
    title: str | None = None,
) -> Summary:
    dataset_json = predictor.dataset_json
    short = modality_short_names(dataset_json["channel_names"])
    subsets = all_subsets(len(short))
    regions, region_names = regions_from_dataset_labels(dataset_json["labels"])
    et_index = region_names.index("ET") if "ET" in region_names else None
    if postprocess_et is not None and et_index is None:
        raise SystemExit("--postprocess-et needs an enhancing-tumour region (ET) in dataset.json's labels")
    out_dir.mkdir(parents=True, exist_ok=True)
    rows, timings, overlay = [], [], None
    for prepared in tqdm(cases, total=num_cases, desc="evaluating subsets", unit="case"):
        start = time.perf_counter()
        logits = subset_logits(predictor, prepared.data)
        predict_seconds = time.perf_counter() - start
        segs = {s: to_segmentation(predictor, lg, prepared.properties) for s, lg in logits.items()}
        for s, seg in segs.items():
            scores = evaluate_case(
                seg,
                prepared.reference,
                regions,
                region_names,
                prepared.spacing,
                et_index=et_index,
                postprocess_et_voxels=postprocess_et,
            )
            rows.append({"case": prepared.case, "subset": subset_name(s, short), **scores})
        timings.append(
            {
                "case": prepared.case,
                "predict_seconds": predict_seconds,
                "total_seconds": time.perf_counter() - start,
            }
        )
        if overlay is None and prepared.raw_images is not None:
            overlay = (
                prepared,
                {subset_name(s, short): segs[s] for s in subsets if len(s) in (1, len(short))},
            )
    if not rows:
        raise SystemExit("no case could be evaluated")
    order = [subset_name(s, short) for s in subsets]
    summary = summarise(rows, order, metric_columns(region_names), modality_names=short)
    write_case_csv(rows, out_dir / "subset_metrics_per_case.csv")
    write_summary(summary, out_dir, stem="subset_table")
    (out_dir / "timing.json").write_text(json.dumps(timings, indent=2))
    _figures(summary, overlay, short, out_dir, title)
    return summary


def _figures(summary: Summary, overlay, short: tuple[str, ...], out_dir: Path, title: str | None) -> None:
    from nnunet_holder.evaluate.figures import dice_heatmap, overlay_figure

    dice_heatmap(summary, out_dir / "dice_heatmap.png", title=title)
    if overlay is not None:
        prepared, preds = overlay
        images = {name: prepared.raw_images[i] for i, name in enumerate(short)}
        overlay_figure(
            images, prepared.reference, preds, out_dir / f"overlay_{prepared.case}.png", title=title
        )


def print_summary(summary: Summary) -> None:
    print(summary_markdown(summary))
