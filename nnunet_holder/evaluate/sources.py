"""Where the evaluated cases come from: a raw image/label folder, or a trainer's validation split.

Both yield `PreparedCase`s: preprocessed data (nnU-Net's own preprocessor, in this process),
nnU-Net's properties to export back to the original geometry, and the reference label map with
its spacing. Raw cases also keep their images and the reader's properties, which the overlay
figure and the raw protocol (every subset preprocessed on its own, runner.py) need. A raw case
that lacks a modality (a file absent, all zero, all NaN or without contrast, see predict/inputs.py)
is incomplete: it is evaluated on the subsets of the modalities it has, with a note naming what it
lacks; a validation case is incomplete where dataset.json's record says so (availability.py). A
raw case that cannot be read, has no usable modality or no label, or whose label holds values that
are not the dataset's labels (reference_labels.py) is reported by name and skipped; the others are
evaluated. NaN voxels in a file are set to 0 with a note naming the file, as `predict` does.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import numpy as np
import torch
from tqdm import tqdm

from nnunet_holder.availability import absent_channels, available_channels
from nnunet_holder.evaluate.records import image_cases
from nnunet_holder.evaluate.reference_labels import check_reference_labels
from nnunet_holder.evaluate.runner import PreparedCase
from nnunet_holder.predict.inputs import CaseError, CaseFiles, check_intact, read_case
from nnunet_holder.predict.predictor import HolderPredictor


def raw_cases(
    predictor: HolderPredictor, images_dir: Path, labels_dir: Path, failures: list[str]
) -> tuple[int, Iterator[PreparedCase]]:
    """(number of candidate cases, generator of prepared cases) of a whole folder; see `prepare_raw`."""
    return prepare_raw(predictor, image_cases(images_dir, predictor.dataset_json), labels_dir, failures)


def prepare_raw(
    predictor: HolderPredictor, cases: list[CaseFiles], labels_dir: Path, failures: list[str]
) -> tuple[int, Iterator[PreparedCase]]:
    """(number of cases, generator of prepared cases); problems go to `failures`."""
    dataset_json = predictor.dataset_json
    ending = dataset_json["file_ending"]
    m = len(dataset_json["channel_names"])
    reader = predictor.plans_manager.image_reader_writer_class()
    preprocessor = predictor.configuration_manager.preprocessor_class(verbose=False)

    def generate() -> Iterator[PreparedCase]:
        for files in cases:
            label_file = labels_dir / f"{files.case}{ending}"
            try:
                case = read_case(files, reader, m)
                if not case.present:
                    why = [f"{case.files[c].name}: {reason}" for c, reason in sorted(case.unusable.items())]
                    why.insert(0, "no usable modality: every channel missing or all zero")
                    raise CaseError(files.case, None, "; ".join(why))
                absent = sorted(case.missing + case.zero_filled)
                notes = case.notes + ([f"channels {absent} missing or all zero"] if absent else [])
                if len(case.present) < m:
                    notes.append(f"incomplete: scored on the subsets of channels {list(case.present)} only")
                for note in notes:  # NaN voxels set to 0, modalities absent: the case is evaluated
                    tqdm.write(f"NOTE case {files.case}: {note}")
                if not label_file.is_file():
                    raise CaseError(files.case, label_file, "reference segmentation not found")
                check_intact(files.case, label_file)
                try:
                    seg, seg_props = reader.read_seg(str(label_file))
                except Exception as e:
                    raise CaseError(files.case, label_file, f"unreadable: {e}") from e
                if seg.shape[1:] != case.images.shape[1:]:
                    raise CaseError(
                        files.case,
                        label_file,
                        f"shape {seg.shape[1:]} differs from the images' {case.images.shape[1:]}",
                    )
                check_reference_labels(files.case, label_file, seg, dataset_json["labels"])
            except CaseError as e:
                failures.append(str(e))
                tqdm.write(f"ERROR {e}")
                continue
            properties = dict(case.properties)  # run_case_npy adds its keys to this copy
            data, _, properties = preprocessor.run_case_npy(
                case.images.copy(),
                None,
                properties,
                predictor.plans_manager,
                predictor.configuration_manager,
                dataset_json,
            )
            yield PreparedCase(
                case=files.case,
                data=torch.from_numpy(np.ascontiguousarray(data)),
                properties=properties,
                reference=seg[0],
                spacing=tuple(float(s) for s in seg_props["spacing"]),
                raw_images=case.images,
                raw_properties=case.properties,
                available=None if len(case.present) == m else case.present,
            )

    return len(cases), generate()


def validation_cases(trainer) -> tuple[int, Iterator[PreparedCase]]:
    """The trainer's validation cases from nnU-Net's preprocessed folder (no raw images)."""
    _, val_keys = trainer.do_split()
    dataset = trainer.dataset_class(trainer.preprocessed_dataset_folder, val_keys)
    reader = trainer.plans_manager.image_reader_writer_class()
    gt_folder = Path(trainer.preprocessed_dataset_folder_base) / "gt_segmentations"
    ending = trainer.dataset_json["file_ending"]
    absent = absent_channels(trainer.dataset_json)

    def generate() -> Iterator[PreparedCase]:
        for key in dataset.identifiers:
            data, _, _, properties = dataset.load_case(key)
            have = available_channels(absent, key, data.shape[0])
            seg, seg_props = reader.read_seg(str(gt_folder / f"{key}{ending}"))
            yield PreparedCase(
                case=key,
                data=torch.from_numpy(np.ascontiguousarray(data[:])),
                properties=properties,
                reference=seg[0],
                spacing=tuple(float(s) for s in seg_props["spacing"]),
                available=None if len(have) == data.shape[0] else have,
            )

    return len(dataset.identifiers), generate()
