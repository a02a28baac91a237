"""The ceiling of a comparison: one vanilla nnU-Net per modality subset, trained on that subset only.

What a user can always do instead of one unified model is train a dedicated nnU-Net per protocol
on a copy of the dataset that holds only the protocol's channels (Ruffle et al. 2023 trained all
15 BraTS subsets this way; GlioMODA ships 12). `derive_subset_dataset` builds such a dataset from a
planned one: its raw folder hard-links the subset's channel files (renumbered from `_0000`), the
labels and the test cases; its dataset.json records the source and the kept channels; its plans
are the source's plans with the per-channel entries (intensity properties, normalisation schemes)
of the kept channels only, so the network, patch size and spacing are the source's and only the
input channels differ; its `splits_final.json` is the source's (or the split nnU-Net would draw
for the same cases). nnU-Net's own `nnUNetv2_preprocess` then preprocesses it. A derived dataset
is found again by its record, so a re-run reuses it. Workers of a comparison that start together
derive one after another, under a lock in nnU-Net's raw folder (`LOCK_FOLDER`, `claims.exclusive`):
the first derives and preprocesses, the others find its dataset; files a reuse rewrites are
replaced whole and only where they changed, so a worker already training on the dataset never
reads half a file.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from collections.abc import Mapping, Sequence
from pathlib import Path

from nnunet_holder.compare.claims import exclusive
from nnunet_holder.parts import atomic_write
from nnunet_holder.subsets import all_subsets, modality_names, subset_name

RECORD_KEY = "nnunet_holder_dedicated"
"""The key of a derived dataset's dataset.json that names its source and kept channels."""
FIRST_ID = 900
"""Derived datasets take the lowest free nnU-Net dataset id from here up (ids stop at 999)."""
LAST_ID = 999
LOCK_FOLDER = ".nnunet_holder_derive_lock"
"""The claims folder, in nnU-Net's raw folder, of the lock that derivations hold (one at a time,
because the free dataset id is shared by all of them)."""


def parse_subsets(specs: Sequence[str], channel_names: Mapping[str, str]) -> list[tuple[int, ...]]:
    """`--dedicated` arguments → subsets (channel indices) in the paper's order, the full set excluded.

    No argument or `all` means every subset but the full set. A subset is its modalities joined by
    `+` or `,` (`T1c+FLAIR`, `1,3`), or `~NAME` for all modalities but one, names as in
    `predict --modalities`. The full set's ceiling is the vanilla model on the source dataset.
    """
    from nnunet_holder.predict.model import parse_modalities

    m = len(channel_names)
    proper = [s for s in all_subsets(m) if len(s) < m]
    if not specs or list(specs) == ["all"]:
        return proper
    chosen = set()
    for spec in specs:
        if spec.startswith("~"):
            left_out = parse_modalities(spec[1:], channel_names)
            subset = tuple(i for i in range(m) if i not in left_out)
        else:
            subset = parse_modalities(spec.replace("+", ","), channel_names)
        if not subset:
            raise SystemExit(f"--dedicated {spec!r}: no modality left")
        if len(subset) == m:
            raise SystemExit(
                f"--dedicated {spec!r} is the full set: its ceiling is the vanilla model on the dataset "
                "itself (--dedicated-trainer), trained with every --dedicated"
            )
        chosen.add(subset)
    return [s for s in proper if s in chosen]


def subset_code(subset: tuple[int, ...], names: Sequence[str]) -> str:
    """A file-name-safe name of a subset: `T1cFl`, `noT1`."""
    return subset_name(subset, tuple(names)).replace("+", "").replace("~", "no")


def _dataset_folders(root: str | None) -> list[Path]:
    return sorted(p for p in Path(root).glob("Dataset*_*") if p.is_dir()) if root else []


def find_derived(source: str, subset: tuple[int, ...], raw_root: Path) -> str | None:
    """The derived dataset of (source, subset) under `raw_root`, by its dataset.json record."""
    for folder in _dataset_folders(str(raw_root)):
        dataset_json = folder / "dataset.json"
        if not dataset_json.is_file():
            continue
        record = json.loads(dataset_json.read_text()).get(RECORD_KEY)
        if record and record["source"] == source and tuple(record["channels"]) == subset:
            return folder.name
    return None


def free_dataset_id(first: int, roots: Sequence[str | None]) -> int:
    """The lowest id ≥ `first` that no dataset of nnU-Net's raw, preprocessed or results folder has."""
    taken = {int(p.name[7:10]) for root in roots for p in _dataset_folders(root) if p.name[7:10].isdigit()}
    for candidate in range(first, LAST_ID + 1):
        if candidate not in taken:
            return candidate
    raise SystemExit(f"no free dataset id between {first} and {LAST_ID} for the dedicated datasets")


def _link(src: Path, dst: Path) -> None:
    dst.parent.mkdir(parents=True, exist_ok=True)
    try:
        os.link(src, dst)
    except OSError:  # another filesystem, or links not allowed: a copy reads the same
        shutil.copy2(src, dst)


def _link_images(src: Path, dst: Path, subset: tuple[int, ...], ending: str) -> int:
    """Hard-link the subset's channel files of every case of `src` into `dst`, renumbered; the case count."""
    cases = sorted({p.name[: -len(ending) - 5] for p in src.glob(f"*_0000{ending}")})
    for case in cases:
        for new, old in enumerate(subset):
            source_file = src / f"{case}_{old:04d}{ending}"
            if not source_file.is_file():
                raise SystemExit(f"{source_file}: channel file of case {case} missing in the source dataset")
            _link(source_file, dst / f"{case}_{new:04d}{ending}")
    return len(cases)


def subset_plans(plans: dict, subset: tuple[int, ...], dataset_name: str) -> dict:
    """The source's plans for a dataset of the subset's channels: per-channel entries kept for them."""
    out = json.loads(json.dumps(plans))
    out["dataset_name"] = dataset_name
    props = plans["foreground_intensity_properties_per_channel"]
    out["foreground_intensity_properties_per_channel"] = {str(n): props[str(o)] for n, o in enumerate(subset)}
    for config in out["configurations"].values():
        for key in ("normalization_schemes", "use_mask_for_norm"):
            if key in config:
                config[key] = [config[key][o] for o in subset]
    return out


def derive_subset_dataset(
    source: str,
    subset: tuple[int, ...],
    plans_identifier: str,
    configuration: str,
    first_id: int = FIRST_ID,
    num_processes: int = 2,
    env: Mapping[str, str] | None = None,
) -> str:
    """The planned and preprocessed dataset of `source` that holds only `subset`'s channels; its folder name.

    Reuses the derived dataset of an earlier run (found by its record) and preprocesses
    `configuration` where its data is not there yet. The source is only read. Holds the
    derivation lock throughout, so concurrent workers neither derive a subset twice nor take the
    same dataset id.
    """
    from nnunetv2.paths import nnUNet_raw

    with exclusive(Path(nnUNet_raw) / LOCK_FOLDER):
        return _derive(source, subset, plans_identifier, configuration, first_id, num_processes, env)


def _write_if_changed(path: Path, text: str) -> None:
    if not path.is_file() or path.read_text() != text:
        atomic_write(path, text)


def _derive(
    source: str,
    subset: tuple[int, ...],
    plans_identifier: str,
    configuration: str,
    first_id: int,
    num_processes: int,
    env: Mapping[str, str] | None,
) -> str:
    from nnunetv2.paths import nnUNet_preprocessed, nnUNet_raw, nnUNet_results
    from nnunetv2.utilities.crossval_split import generate_crossval_split

    raw_root, pre_root = Path(nnUNet_raw), Path(nnUNet_preprocessed)
    src_json = json.loads((raw_root / source / "dataset.json").read_text())
    names = modality_names(src_json["channel_names"])
    name = find_derived(source, subset, raw_root)
    if name is None:
        dataset_id = free_dataset_id(first_id, [nnUNet_raw, nnUNet_preprocessed, nnUNet_results])
        name = f"Dataset{dataset_id:03d}_{source.split('_', 1)[1]}_only{subset_code(subset, names)}"
        raw = raw_root / name
        ending = src_json["file_ending"]
        num_training = _link_images(raw_root / source / "imagesTr", raw / "imagesTr", subset, ending)
        if (raw_root / source / "imagesTs").is_dir():
            _link_images(raw_root / source / "imagesTs", raw / "imagesTs", subset, ending)
        for labels in ("labelsTr", "labelsTs"):
            for f in sorted((raw_root / source / labels).glob(f"*{ending}")):
                _link(f, raw / labels / f.name)
        derived_json = {
            **src_json,
            "name": name.split("_", 1)[1],
            "channel_names": {str(n): src_json["channel_names"][str(o)] for n, o in enumerate(subset)},
            "numTraining": num_training,
            RECORD_KEY: {"source": source, "channels": list(subset)},
        }
        # written last: a folder without it is an interrupted derivation that nothing reuses
        (raw / "dataset.json").write_text(json.dumps(derived_json, indent=2))
    pre, src_pre = pre_root / name, pre_root / source
    pre.mkdir(parents=True, exist_ok=True)
    _write_if_changed(pre / "dataset.json", (raw_root / name / "dataset.json").read_text())
    plans = json.loads((src_pre / f"{plans_identifier}.json").read_text())
    derived_plans = json.dumps(subset_plans(plans, subset, name), indent=4)
    _write_if_changed(pre / f"{plans_identifier}.json", derived_plans)
    if (src_pre / "dataset_fingerprint.json").is_file():
        fingerprint = json.loads((src_pre / "dataset_fingerprint.json").read_text())
        props = fingerprint["foreground_intensity_properties_per_channel"]
        fingerprint["foreground_intensity_properties_per_channel"] = {
            str(n): props[str(o)] for n, o in enumerate(subset)
        }
        _write_if_changed(pre / "dataset_fingerprint.json", json.dumps(fingerprint, indent=4))
    splits = src_pre / "splits_final.json"
    if splits.is_file():
        _write_if_changed(pre / "splits_final.json", splits.read_text())
    elif not (pre / "splits_final.json").is_file():
        # what nnU-Net draws for the source at its first training (same sorted cases, same seed)
        ending = src_json["file_ending"]
        cases = sorted(p.name[: -len(ending)] for p in (raw_root / source / "labelsTr").glob(f"*{ending}"))
        (pre / "splits_final.json").write_text(json.dumps(generate_crossval_split(cases, 12345, 5), indent=4))
    _preprocess(name, plans_identifier, configuration, num_processes, env)
    return name


def _preprocess(name: str, plans_identifier: str, configuration: str, num_processes: int, env) -> None:
    """`nnUNetv2_preprocess` of the derived dataset, unless every training case is preprocessed already."""
    from nnunetv2.paths import nnUNet_preprocessed, nnUNet_raw
    from nnunetv2.utilities.plans_handling.plans_handler import PlansManager

    pre = Path(nnUNet_preprocessed) / name
    manager = PlansManager(str(pre / f"{plans_identifier}.json"))
    data = pre / manager.get_configuration(configuration).data_identifier
    cases = json.loads((Path(nnUNet_raw) / name / "dataset.json").read_text())["numTraining"]
    if data.is_dir() and len(list(data.glob("*.pkl"))) == cases:
        return
    exe = Path(sys.executable).parent / "nnUNetv2_preprocess"
    command = [str(exe), "-d", name[7:10], "-plans_name", plans_identifier, "-c", configuration]
    command += ["-np", str(num_processes)]
    proc = subprocess.run(command, env=dict(env or os.environ), capture_output=True, text=True)
    if proc.returncode != 0:
        raise SystemExit(
            f"nnUNetv2_preprocess of {name} failed (exit {proc.returncode}):\n{proc.stdout[-2000:]}\n"
            f"{proc.stderr[-2000:]}"
        )


def subset_of(derived: str, names: Sequence[str]) -> str:
    """The source's name of the subset a derived dataset holds (`T1c+Fl`), from its record."""
    from nnunetv2.paths import nnUNet_raw

    record = json.loads((Path(nnUNet_raw) / derived / "dataset.json").read_text())[RECORD_KEY]
    return subset_name(tuple(record["channels"]), tuple(names))
