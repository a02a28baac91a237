"""The subset table of a trainer's final validation (called by every trainer of this package).

Runs after nnU-Net's own validation, on the same validation cases, with the trainer's network,
and writes `validation/subset_table.{csv,md,json}` and `subset_metrics_per_case.csv` beside
nnU-Net's summary.json. A modality-parallel network segments every subset in one pass per case;
any other network (vanilla nnU-Net, modality dropout) gets one pass per subset with the absent
channels zero-filled, as `evaluate-subsets` treats it. Under DDP only the first rank evaluates;
the others finish without waiting for it, because a barrier held for the whole evaluation of a
large validation set would outlast nccl's collective timeout.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
from torch._dynamo import OptimizedModule
from torch.nn.parallel import DistributedDataParallel

from nnunet_holder.evaluate.runner import evaluate_cases
from nnunet_holder.evaluate.sources import validation_cases
from nnunet_holder.file_names import SUBSET_TABLE_MD, VALIDATION_FOLDER
from nnunet_holder.predict.predictor import HolderPredictor
from nnunet_holder.provenance import model_setting


def evaluate_validation_subsets(trainer) -> None:
    if trainer.local_rank != 0:
        return
    network = trainer.network
    network = network.module if isinstance(network, DistributedDataParallel) else network
    network = network._orig_mod if isinstance(network, OptimizedModule) else network
    trainer.set_deep_supervision_enabled(False)
    network.eval()
    predictor = HolderPredictor(
        tile_step_size=0.5,
        use_gaussian=True,
        use_mirroring=True,
        perform_everything_on_device=trainer.device.type == "cuda",
        device=trainer.device,
        verbose=False,
        allow_tqdm=False,
    )
    predictor.manual_initialization(
        network,
        trainer.plans_manager,
        trainer.configuration_manager,
        None,
        trainer.dataset_json,
        type(trainer).__name__,
        trainer.inference_allowed_mirroring_axes,
    )
    n, cases = validation_cases(trainer)
    out_dir = Path(trainer.output_folder) / VALIDATION_FOLDER
    # the network in memory (checkpoint None): the one this training ends with, or the one --val loaded
    model = model_setting(
        Path(trainer.output_folder_base),
        [trainer.fold],
        None,
        predictor.use_mirroring,
        predictor.tile_step_size,
    )
    summary = evaluate_cases(
        predictor, cases, out_dir, num_cases=n, title=f"{type(trainer).__name__} validation", model=model
    )
    dice_cols = [m for m in summary.metrics if m.startswith("Dice_")]
    per_subset = {s: float(np.mean([summary.stats[s][m].mean for m in dice_cols])) for s in summary.order}
    trainer.print_to_log_file(
        f"Subset validation ({n} cases), mean Dice over regions: "
        + ", ".join(f"{s} {v:.4f}" for s, v in per_subset.items())
        + f"; table: {out_dir / SUBSET_TABLE_MD}"
    )
