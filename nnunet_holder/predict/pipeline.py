"""One streaming pipeline for a folder of partial cases: a preprocessing pool, the network, an export pool.

nnU-Net's route (`predict_from_data_iterator`): worker processes read and preprocess cases ahead
of the network, the network predicts one case at a time, and another pool resamples and writes
the segmentations. Here both pools live for the whole folder (with `-npp 0 -nps 0`, nnU-Net's
sequential mode, their work is done in this process instead), and at most `npp + 1` preprocessed
cases wait for the network and at most `nps + 2` predictions wait for export, so memory stays
bounded however many cases the folder holds. A case that fails to read, preprocess, predict or
export fails alone, with its reason in its report. Every file is written under a temporary name
and renamed when complete, so an interrupted run never leaves a half-written segmentation.
"""

from __future__ import annotations

import multiprocessing
import os
from collections import deque
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
from tqdm import tqdm

from nnunet_holder.predict.inputs import CaseError, CaseFiles, CaseImages, read_case

if TYPE_CHECKING:  # torch is imported when cases are predicted: `predict` refuses bad runs without it
    from nnunet_holder.predict.predictor import HolderPredictor

TEMP_PREFIX = ".partial_"
"""Name prefix of files being written; renamed to the final name once complete."""


@dataclass
class CaseReport:
    case: str
    status: str = "ok"  # ok | failed | skipped (output existed, --continue_prediction)
    used: list[str] = field(default_factory=list)
    missing: list[str] = field(default_factory=list)
    zero_filled: list[str] = field(default_factory=list)
    unusable: list[str] = field(default_factory=list)  # file present but no image: all NaN, no contrast
    ignored: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)  # per file: NaN voxels set to 0, why a file was unusable
    error: str = ""


@dataclass(frozen=True)
class ModelFiles:
    """What the workers need of the model: nnU-Net's managers and dataset.json (all picklable)."""

    plans_manager: object
    configuration_manager: object
    dataset_json: dict

    @classmethod
    def of(cls, predictor: HolderPredictor) -> ModelFiles:
        return cls(predictor.plans_manager, predictor.configuration_manager, predictor.dataset_json)


def output_files(output_dir: Path, case: str, file_ending: str, save_probabilities: bool) -> list[Path]:
    """The files one predicted case leaves in `output_dir`, as nnU-Net's export names them."""
    files = [output_dir / f"{case}{file_ending}"]
    if save_probabilities:
        files += [output_dir / f"{case}.npz", output_dir / f"{case}.pkl"]
    return files


def _names(indices: Sequence[int], channel_names: dict[str, str]) -> list[str]:
    return [channel_names[str(i)] for i in indices]


def _select(case: CaseImages, forced: tuple[int, ...] | None, report: CaseReport, names: dict) -> None:
    used = case.present if forced is None else tuple(c for c in case.present if c in forced)
    ignored = () if forced is None else tuple(c for c in case.present if c not in forced)
    for c in ignored:
        case.images[c] = 0
    report.used = _names(used, names)
    report.missing = _names(case.missing, names)
    report.zero_filled = _names(case.zero_filled, names)
    report.unusable = _names(sorted(case.unusable), names)
    report.ignored = _names(ignored, names)
    report.notes = case.notes
    if not used:
        wanted = "" if forced is None else f" among the requested {_names(forced, names)}"
        raise CaseError(
            case.case,
            None,
            f"no usable modality{wanted}: every channel is missing, all zero, all NaN or without contrast"
            + (f" ({'; '.join(case.notes)})" if case.notes else ""),
        )


def prepare_case(
    files: CaseFiles, model: ModelFiles, forced: tuple[int, ...] | None
) -> tuple[CaseReport, np.ndarray | None, dict | None]:
    """Read, select the modalities of, and preprocess one case (runs in a preprocessing worker)."""
    report = CaseReport(files.case)
    names = model.dataset_json["channel_names"]
    try:
        case = read_case(files, model.plans_manager.image_reader_writer_class(), len(names))
        _select(case, forced, report, names)
        preprocessor = model.configuration_manager.preprocessor_class(verbose=False)
        data, _, properties = preprocessor.run_case_npy(
            case.images,
            None,
            dict(case.properties),
            model.plans_manager,
            model.configuration_manager,
            model.dataset_json,
        )
    except CaseError as e:
        report.status, report.error = "failed", str(e)
        return report, None, None
    except Exception as e:  # nnU-Net's preprocessing raises many types; name the case
        report.status, report.error = (
            "failed",
            f"case {files.case}: preprocessing failed: {type(e).__name__}: {e}",
        )
        return report, None, None
    return report, np.ascontiguousarray(data), properties


def export_case(
    logits: np.ndarray,
    properties: dict,
    model: ModelFiles,
    output_dir: Path,
    case: str,
    save_probabilities: bool,
) -> None:
    """nnU-Net's export of one case under temporary names, then renamed into place (export worker)."""
    from nnunetv2.inference.export_prediction import export_prediction_from_logits

    ending = model.dataset_json["file_ending"]
    temp = output_dir / f"{TEMP_PREFIX}{case}"
    export_prediction_from_logits(
        logits,
        properties,
        model.configuration_manager,
        model.plans_manager,
        model.dataset_json,
        str(temp),
        save_probabilities,
    )
    # the segmentation last: its presence is what --continue_prediction takes as "done"
    for final in reversed(output_files(output_dir, case, ending, save_probabilities)):
        suffix = final.name[len(case) :]
        os.replace(output_dir / f"{TEMP_PREFIX}{case}{suffix}", final)


def remove_partial_files(output_dir: Path, cases: Sequence[str]) -> None:
    """Delete what an interrupted run left under temporary names for these cases."""
    for case in cases:
        for leftover in output_dir.glob(f"{TEMP_PREFIX}{case}.*"):
            leftover.unlink()


class _Finished:
    """The result of a call already made in this process, with the methods of an AsyncResult."""

    def __init__(self, fn, args: tuple) -> None:
        self._value, self._error = None, None
        try:
            self._value = fn(*args)
        except Exception as e:  # re-raised by get(), where a pool's result would raise it
            self._error = e

    def ready(self) -> bool:
        return True

    def wait(self, timeout: float | None = None) -> None:
        pass

    def get(self):  # noqa: ANN201 (whatever the call returned)
        if self._error is not None:
            raise self._error
        return self._value


class _InThisProcess:
    """A stand-in for a worker pool that does each task in this process when it is submitted
    (nnUNetv2_predict's `-npp 0 -nps 0`: no worker processes, each of which imports torch)."""

    _pool: list = []

    def __enter__(self) -> _InThisProcess:
        return self

    def __exit__(self, *exc: object) -> None:
        pass

    def apply_async(self, fn, args: tuple) -> _Finished:
        return _Finished(fn, args)


def _wait(result, workers: list, what: str):
    """`result` once ready; a dead worker (killed by the OS, e.g. for RAM) would otherwise hang us."""
    while not result.ready():
        if not all(w.is_alive() for w in workers):
            raise RuntimeError(
                f"a {what} worker died, most likely killed by the OS for lack of RAM; "
                f"use fewer processes (-npp/-nps)"
            )
        result.wait(0.1)
    return result


def predict_cases(
    predictor: HolderPredictor,
    cases: Sequence[CaseFiles],
    output_dir: Path,
    forced: tuple[int, ...] | None = None,
    num_processes_preprocessing: int = 3,
    num_processes_export: int = 3,
    save_probabilities: bool = False,
    progress: bool = True,
    on_predicted: Callable[[str], None] | None = None,
) -> list[CaseReport]:
    """Predict `cases` into `output_dir` through one preprocessing and one export pool.

    Returns one report per case, in the order of `cases`. A case is "ok" only once its files
    are in place under their final names. `on_predicted(case)` runs in this process once the
    case's prediction succeeded, before its export starts.
    """
    import torch

    model = ModelFiles.of(predictor)
    reports: dict[str, CaseReport] = {}
    sequential = num_processes_preprocessing == 0 and num_processes_export == 0  # nnUNetv2_predict's rule
    # as nnU-Net: never more workers than cases (each spawned worker imports torch and nnU-Net)
    num_processes_preprocessing = max(1, min(num_processes_preprocessing, len(cases)))
    num_processes_export = max(1, min(num_processes_export, len(cases)))
    context = multiprocessing.get_context("spawn")  # like nnU-Net: no forked CUDA or torch threads
    with (
        _InThisProcess() if sequential else context.Pool(num_processes_preprocessing) as pre_pool,
        _InThisProcess() if sequential else context.Pool(num_processes_export) as export_pool,
    ):
        pre_workers, export_workers = list(pre_pool._pool), list(export_pool._pool)
        todo = deque(cases)
        preparing: deque = deque()
        exporting: deque = deque()

        def refill() -> None:
            while todo and len(preparing) < num_processes_preprocessing + 1:
                preparing.append(pre_pool.apply_async(prepare_case, (todo.popleft(), model, forced)))

        def finish_export() -> None:
            report, result = exporting.popleft()
            try:
                _wait(result, export_workers, "export").get()
            except Exception as e:  # a failed export fails its case only
                report.status = "failed"
                report.error = f"case {report.case}: export failed: {type(e).__name__}: {e}"
                tqdm.write(f"ERROR {report.error}")

        refill()
        with tqdm(total=len(cases), desc="predicting", unit="case", disable=not progress) as bar:
            while preparing:
                report, data, properties = _wait(preparing.popleft(), pre_workers, "preprocessing").get()
                refill()
                reports[report.case] = report
                for note in report.notes:
                    tqdm.write(f"NOTE case {report.case}: {note}")
                if data is None:
                    tqdm.write(f"ERROR {report.error}")
                    bar.update()
                    continue
                try:
                    logits = predictor.predict_logits_from_preprocessed_data(torch.from_numpy(data))
                    logits = logits.cpu().numpy()  # numpy pickles safely to the export workers
                except Exception as e:  # e.g. out of memory on one huge case: the others go on
                    report.status = "failed"
                    report.error = f"case {report.case}: prediction failed: {type(e).__name__}: {e}"
                    tqdm.write(f"ERROR {report.error}")
                    bar.update()
                    continue
                if on_predicted is not None:
                    on_predicted(report.case)
                while len(exporting) > num_processes_export + 1:  # nnU-Net's bound on queued exports
                    finish_export()
                exporting.append(
                    (
                        report,
                        export_pool.apply_async(
                            export_case,
                            (logits, properties, model, output_dir, report.case, save_probabilities),
                        ),
                    )
                )
                bar.update()
            while exporting:
                finish_export()
    return [reports[c.case] for c in cases]
