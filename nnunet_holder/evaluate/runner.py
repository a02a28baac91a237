"""The all-subset evaluation loop and its outputs (tables, heatmap, overlay, timing).

`evaluate_cases` takes already-preprocessed cases (from raw files for `evaluate-subsets`, from
nnU-Net's preprocessed folder for a trainer's final validation), segments every modality subset
(an incomplete case: every subset of the modalities it has, so it has no row for the others and
each cell of the tables averages the cases that have its subset) under one of two protocols
(`PROTOCOLS`), scores each against the reference with the BraTS rules
(metrics.py) and writes the per-case CSV, the subset table (CSV, Markdown, JSON), the Dice
heatmap, timing.json, when raw images are given for a case the overlay figure and, on request,
every subset's segmentation.

The protocols differ in where a missing modality is zeroed. nnU-Net crops to the union of the
channels' non-zero voxels and z-scores inside that mask, so zeroing before preprocessing (what
`nnunet-holder predict` does with absent files) can give another crop and normalisation than
zeroing the network input of the complete case.
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from tqdm import tqdm

from nnunet_holder.brats import ET
from nnunet_holder.evaluate.metric_sets import DEFAULT_METRIC_SETS, metric_set_columns, score_case
from nnunet_holder.evaluate.metrics import regions_from_dataset_labels
from nnunet_holder.evaluate.one_pass import subset_logits, to_segmentation
from nnunet_holder.evaluate.records import (
    case_file,
    evaluation_setting,
    refuse_continuing,
    refuse_mixed_parts,
)
from nnunet_holder.evaluate.tables import Summary, summarise, summary_markdown, write_case_csv, write_summary
from nnunet_holder.file_names import (
    DICE_HEATMAP,
    PER_CASE_TABLE,
    SEGMENTATIONS_FOLDER,
    SUBSET_CASES_FOLDER,
    SUBSET_PARTS_FOLDER,
    SUBSET_TABLE_STEM,
    TIMING,
)
from nnunet_holder.parts import Part, atomic_write
from nnunet_holder.predict.predictor import HolderPredictor
from nnunet_holder.provenance import Setting
from nnunet_holder.subsets import all_subsets, modality_names, subset_name

PROTOCOLS: dict[str, str] = {
    "preprocessed": "the complete case preprocessed once, missing modalities zeroed in the network input",
    "raw": "missing modalities zeroed in the raw images, each subset preprocessed and predicted on its own "
    "(as `nnunet-holder predict` treats absent files)",
}
"""Evaluation protocols (the names `evaluate-subsets --protocol` accepts) and their header lines."""

SubsetLogits = dict[tuple[int, ...], tuple[torch.Tensor, dict]]
"""Per subset: fused logits in the preprocessed frame and the properties that export them."""


@dataclass
class PreparedCase:
    case: str
    data: torch.Tensor  # preprocessed (M, *spatial)
    properties: dict  # nnU-Net's properties of the preprocessing
    reference: np.ndarray  # label map in the original geometry
    spacing: tuple[float, ...]  # of the reference's array axes, in mm
    raw_images: np.ndarray | None = None  # (M, *original) for the overlay figure and the raw protocol
    raw_properties: dict | None = None  # the reader's properties of raw_images (raw protocol)
    available: tuple[int, ...] | None = None  # the channels an incomplete case has (None: every one)

    def subsets(self, num_modalities: int) -> list[tuple[int, ...]]:
        """The subsets this case is scored on: those inside what it has, in the paper's order."""
        have = set(range(num_modalities) if self.available is None else self.available)
        return [s for s in all_subsets(num_modalities) if have.issuperset(s)]


def _zeroed_after_preprocessing(predictor: HolderPredictor, prepared: PreparedCase) -> SubsetLogits:
    # one preprocessing of the complete case; one pass for all subsets on a modality-parallel model
    logits = subset_logits(predictor, prepared.data, prepared.subsets(prepared.data.shape[0]))
    return {s: (lg, prepared.properties) for s, lg in logits.items()}


def _zeroed_before_preprocessing(predictor: HolderPredictor, prepared: PreparedCase) -> SubsetLogits:
    if prepared.raw_images is None or prepared.raw_properties is None:
        raise ValueError(f"case {prepared.case}: the raw protocol needs the case's raw images")
    m = prepared.raw_images.shape[0]
    preprocessor = predictor.configuration_manager.preprocessor_class(verbose=False)
    out: SubsetLogits = {}
    for s in prepared.subsets(m):
        if len(s) == m:  # nothing zeroed: the source's preprocessing of the complete case is this one
            data, properties = prepared.data, prepared.properties
        else:
            images = prepared.raw_images.copy()
            images[[i for i in range(m) if i not in s]] = 0
            array, _, properties = preprocessor.run_case_npy(
                images,
                None,
                dict(prepared.raw_properties),  # run_case_npy adds its keys to the dict it is given
                predictor.plans_manager,
                predictor.configuration_manager,
                predictor.dataset_json,
            )
            data = torch.from_numpy(array)
        out[s] = (predictor.predict_logits_from_preprocessed_data(data), properties)
    return out


_SUBSET_LOGITS = {"preprocessed": _zeroed_after_preprocessing, "raw": _zeroed_before_preprocessing}


def evaluate_cases(
    predictor: HolderPredictor,
    cases: Iterable[PreparedCase],
    out_dir: Path,
    postprocess_et: int | None = None,
    num_cases: int | None = None,
    title: str | None = None,
    protocol: str = "preprocessed",
    save_segmentations: bool = False,
    part: Part = Part(),  # noqa: B008 (frozen)
    earlier_cases: Sequence[str] = (),
    failures: Sequence[str] = (),
    metrics: Sequence[str] = DEFAULT_METRIC_SETS,
    model: Setting | None = None,
) -> Summary | None:
    """Score every subset of every case under `protocol` (a key of `PROTOCOLS`) into `out_dir`.

    Each case's rows are written to `subset_cases/CASE.json` as soon as it is done; then the
    part's manifest lists them, the `earlier_cases` a continued run keeps, and `failures`. A
    single-part evaluation is merged at once into the tables and figures, and its Summary
    returned; a part of several returns None and waits for `merge_evaluation`. With
    `save_segmentations`, each subset's label map (the network's, before `postprocess_et`) is
    written in nnU-Net's format to out_dir/segmentations/<subset>/<case><ending>. `metrics` names
    the metric sets to compute (keys of `metric_sets.METRIC_SETS`).

    `model` is `provenance.model_setting` of the predictor's model (folder, folds, checkpoint,
    mirroring, step size). Every case result and the manifest record it with the evaluation's own
    setting (records.py; the metric columns included), and the `earlier_cases` must have been
    evaluated under the same one. Without `model`, only what the predictor itself knows is recorded
    (trainer, plans, mirroring, step size; the folder, configuration, folds and checkpoint as null),
    which a continuation or a merge then has to match.
    """
    if protocol not in PROTOCOLS:
        raise ValueError(f"unknown protocol {protocol!r}; one of {sorted(PROTOCOLS)}")
    dataset_json = predictor.dataset_json
    short = modality_names(dataset_json["channel_names"])
    subsets = all_subsets(len(short))
    regions, region_names = regions_from_dataset_labels(dataset_json["labels"])
    et_index = region_names.index(ET) if ET in region_names else None
    if postprocess_et is not None and et_index is None:
        raise SystemExit("--postprocess-et needs an enhancing-tumour region (ET) in dataset.json's labels")
    setting = evaluation_setting(
        model if model is not None else _predictor_setting(predictor),
        protocol,
        postprocess_et,
        dataset_json,
        metric_set_columns(metrics, region_names),
    )
    refuse_continuing(out_dir, earlier_cases, setting)
    (out_dir / SUBSET_CASES_FOLDER).mkdir(parents=True, exist_ok=True)
    evaluated, overlay_done = [], part.part_id != 0  # one overlay per evaluation, from part 0
    for prepared in tqdm(cases, total=num_cases, desc="evaluating subsets", unit="case"):
        start = time.perf_counter()
        logits = _SUBSET_LOGITS[protocol](predictor, prepared)
        predict_seconds = time.perf_counter() - start
        segs = {s: to_segmentation(predictor, lg, props) for s, (lg, props) in logits.items()}
        if save_segmentations:
            _write_segmentations(predictor, prepared, segs, short, out_dir)
        rows = [
            {
                "case": prepared.case,
                "subset": subset_name(s, short),
                **score_case(
                    seg,
                    prepared.reference,
                    regions,
                    region_names,
                    prepared.spacing,
                    metrics,
                    et_index=et_index,
                    postprocess_et_voxels=postprocess_et,
                ),
            }
            for s, seg in segs.items()
        ]
        # predict_seconds: the network's passes, and in the raw protocol the subsets' preprocessing
        timing = {"predict_seconds": predict_seconds, "total_seconds": time.perf_counter() - start}
        result = {"rows": rows, "timing": timing, "setting": setting}
        atomic_write(case_file(out_dir, prepared.case), json.dumps(result))
        evaluated.append(prepared.case)
        if not overlay_done and prepared.raw_images is not None and prepared.available is None:
            # each modality alone, by its name, and the full set: in a one-channel dataset (a dedicated
            # model of `compare`) the one subset is both
            preds = {short[s[0]]: segs[s] for s in subsets if len(s) == 1}
            preds["Full"] = segs[tuple(range(len(short)))]
            _overlay(prepared, preds, short, out_dir, _figure_title(title, protocol))
            overlay_done = True
    manifest = {
        "part_id": part.part_id,
        "num_parts": part.num_parts,
        "cases": sorted({*earlier_cases, *evaluated}),
        "failures": list(failures),
        "title": title,
        "order": [subset_name(s, short) for s in subsets],
        "modality_names": list(short),
        "setting": setting,
    }
    parts_folder = out_dir / SUBSET_PARTS_FOLDER
    parts_folder.mkdir(exist_ok=True)
    for stale in parts_folder.glob("manifest_part_*.json"):  # a new split replaces an old one
        if Part.from_suffix(stale.stem).num_parts != part.num_parts:
            stale.unlink()
    atomic_write(
        parts_folder / f"manifest_part_{part.part_id}_of_{part.num_parts}.json",
        json.dumps(manifest),
    )
    return merge_evaluation(out_dir) if part.num_parts == 1 else None


def merge_evaluation(out_dir: Path) -> Summary:
    """The tables, per-case CSV, timing and heatmap of every part of the evaluation in `out_dir`."""
    manifests = sorted((out_dir / SUBSET_PARTS_FOLDER).glob("manifest_part_*_of_*.json"))
    if not manifests:
        raise SystemExit(
            f"{out_dir} holds no evaluation parts ({SUBSET_PARTS_FOLDER}/manifest_part_K_of_N.json)"
        )
    n = Part.from_suffix(manifests[0].stem).num_parts
    parts = {Part.from_suffix(m.stem).part_id: json.loads(m.read_text()) for m in manifests}
    if missing := sorted(set(range(n)) - set(parts)):
        raise SystemExit(f"{out_dir}: part(s) {missing} of {n} have not finished their evaluation yet")
    refuse_mixed_parts(out_dir, parts)
    first = parts[0]
    cases = sorted({c for p in parts.values() for c in p["cases"]})
    failures = [f for p in parts.values() for f in p["failures"]]
    rows, timings = [], []
    for case in cases:
        path = case_file(out_dir, case)
        result = json.loads(path.read_text())
        rows += result["rows"]
        timings.append({"case": case, **result["timing"]})
    if not rows:
        raise SystemExit("no case could be evaluated" + (":\n" + "\n".join(failures) if failures else ""))
    setting = first["setting"]
    protocol = setting["protocol"]
    summary = summarise(rows, first["order"], setting["metrics"], modality_names=first["modality_names"])
    write_case_csv(rows, out_dir / PER_CASE_TABLE)
    write_summary(summary, out_dir, stem=SUBSET_TABLE_STEM, protocol=protocol_line(protocol))
    (out_dir / TIMING).write_text(
        json.dumps(
            {"protocol": protocol, "setting": setting, "cases": timings, "failures": failures}, indent=2
        )
    )
    from nnunet_holder.evaluate.figures import dice_heatmap

    if summary.regions("Dice"):  # not with lesion-wise metrics only
        dice_heatmap(summary, out_dir / DICE_HEATMAP, title=_figure_title(first["title"], protocol))
    return summary


def _predictor_setting(predictor: HolderPredictor) -> Setting:
    return {
        "model": None,
        "trainer": predictor.trainer_name,
        "plans": predictor.plans_manager.plans_name,
        "configuration": None,
        "folds": None,
        "checkpoint": None,
        "mirroring": bool(predictor.use_mirroring),
        "step_size": float(predictor.tile_step_size),
    }


def _figure_title(title: str | None, protocol: str) -> str:
    return f"{title}, {protocol} protocol" if title else f"{protocol} protocol"


def protocol_line(protocol: str) -> str:
    """The protocol as the tables' header states it."""
    return f"{protocol}: {PROTOCOLS[protocol]}"


def _write_segmentations(
    predictor: HolderPredictor,
    prepared: PreparedCase,
    segs: dict[tuple[int, ...], np.ndarray],
    short: tuple[str, ...],
    out_dir: Path,
) -> None:
    writer = predictor.plans_manager.image_reader_writer_class()
    ending = predictor.dataset_json["file_ending"]
    for s, seg in segs.items():
        folder = out_dir / SEGMENTATIONS_FOLDER / subset_name(s, short)
        folder.mkdir(parents=True, exist_ok=True)
        # the same writer and geometry keys nnU-Net's export uses, so these read like `predict`'s files
        writer.write_seg(seg, str(folder / f"{prepared.case}{ending}"), prepared.properties)


def _overlay(prepared: PreparedCase, preds: dict, short: tuple[str, ...], out_dir: Path, title: str) -> None:
    from nnunet_holder.evaluate.figures import overlay_figure

    images = {name: prepared.raw_images[i] for i, name in enumerate(short)}
    overlay_figure(images, prepared.reference, preds, out_dir / f"overlay_{prepared.case}.png", title=title)


def print_summary(summary: Summary, protocol: str = "preprocessed") -> None:
    print(summary_markdown(summary, protocol=protocol_line(protocol)))
