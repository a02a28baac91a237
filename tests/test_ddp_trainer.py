"""DDP through HolderMITrainer (both networks): two gloo processes run the trainer's own steps.

nnU-Net's `-num_gpus` path is nccl and CUDA only (it moves each rank to cuda:rank and wraps the
network with device_ids), so each process here builds the trainer from the tiny dataset's real
plans on the CPU, wraps its network in DistributedDataParallel exactly as nnU-Net does
otherwise (no find_unused_parameters), and rebuilds the loss with DDP on. Everything after that
is the trainer's code: `train_step` (subsets passed through DDP), the composite loss with
nnU-Net's batch Dice gathered across ranks, `validation_step` and the validation gather of
`on_validation_epoch_end`. Each rank gets one half of a fixed batch; one process on the whole
batch is the reference. The `+incomplete` runs name the batch's cases, two of which lack modalities
(`INCOMPLETE`, as dataset.json's record gives it): each rank takes its samples' subsets inside them.
"""

from __future__ import annotations

import copy
import json
import os
import socket
from pathlib import Path

import numpy as np
import pytest
import torch
import torch.distributed as dist
import torch.multiprocessing as mp
from torch.nn.parallel import DistributedDataParallel as DDP

B = 4
STEPS = 2
KEYS = ["case_a", "case_b", "case_c", "case_d"]
INCOMPLETE = {"case_b": (1,), "case_c": (1, 3)}  # one case on each rank lacks modalities
SUFFIX = "+incomplete"


def _trainer(trainer_name: str, dataset_name: str):
    import nnunet_holder.trainers as trainers

    from tests.helpers_nnunet import experiment_variant

    trainer_name, incomplete = trainer_name.removesuffix(SUFFIX), trainer_name.endswith(SUFFIX)
    folder = Path(os.environ["nnUNet_preprocessed"]) / dataset_name
    plans = json.loads((folder / "nnUNetPlans.json").read_text())
    plans = {**copy.deepcopy(plans), "continue_training": False}  # as nnUNetv2_train adds it
    plans["configurations"]["3d_fullres"]["batch_dice"] = True  # the Dice sums are gathered over ranks
    dataset_json = json.loads((folder / "dataset.json").read_text())
    cls = getattr(trainers, trainer_name, None) or experiment_variant(trainer_name)
    trainer = cls(plans, "3d_fullres", 0, dataset_json, torch.device("cpu"))
    torch.manual_seed(0)  # the same initial weights in every process and in the reference
    trainer.initialize()
    if incomplete:
        trainer._absent = INCOMPLETE
    return trainer


def _batch(trainer, part: slice) -> dict:
    g = torch.Generator().manual_seed(0)
    patch = list(trainer.configuration_manager.patch_size)
    data = torch.randn(B, trainer.num_input_channels, *patch, generator=g)
    targets = []
    for scale in trainer._get_deep_supervision_scales():
        shape = [max(1, round(p * s)) for p, s in zip(patch, scale, strict=True)]
        targets.append((torch.rand(B, 3, *shape, generator=g) > 0.6).float())
    return {"data": data[part], "target": [t[part] for t in targets], "keys": KEYS[part]}


def _run_steps(trainer, part: slice) -> dict:
    trainer.network.train()
    losses = [float(trainer.train_step(_batch(trainer, part))["loss"]) for _ in range(STEPS)]
    trainer.network.eval()
    with torch.no_grad():
        trainer.on_validation_epoch_start()
        val = [trainer.validation_step(_batch(trainer, part))]
    trainer.on_validation_epoch_end(val)
    net = trainer.parallel_network()
    return {
        "losses": losses,
        "params": {n: p.detach().clone() for n, p in net.named_parameters()},
        "subset_dice": trainer.logger.get_value("mean_subset_dice", step=-1),
    }


TRAINERS = (
    "HolderMITrainer_smoke",
    "HolderMITrainer_noMI",
    # experiment variants (experiments/variants): learned fusion weights, and the feature-fusion
    # network with a learned operator, 4 sampled subsets per step
    "HolderMITrainer_learnedFusion",
    "HolderMITrainer_featureFusion_attention",
    "HolderMITrainer_smoke" + SUFFIX,
    "HolderMITrainer_featureFusion_attention" + SUFFIX,
)


def _worker(rank: int, world: int, folder: str, dataset_name: str) -> None:
    torch.set_num_threads(1)
    # built before the process group exists: nnU-Net's constructor moves a DDP rank to CUDA
    # with the torch RNG state each one has right after its seeded build, as in the reference
    built = {name: (_trainer(name, dataset_name), torch.get_rng_state()) for name in TRAINERS}
    os.environ.update(MASTER_ADDR="127.0.0.1", MASTER_PORT=os.environ["HOLDER_TEST_PORT"])
    dist.init_process_group("gloo", rank=rank, world_size=world)
    for name, (trainer, rng) in built.items():
        torch.set_rng_state(rng)
        # what nnU-Net's initialize does under DDP, on the CPU: wrap, then a loss that gathers
        trainer.is_ddp, trainer.local_rank = True, rank
        trainer.network = DDP(trainer.network)
        trainer.loss = trainer._build_loss()
        result = _run_steps(trainer, slice(rank * B // world, (rank + 1) * B // world))
        torch.save(result, Path(folder) / f"{name}_{rank}.pt")
    dist.destroy_process_group()


@pytest.fixture(scope="module")
def ranks(tiny_dataset, tmp_path_factory) -> Path:
    """Every trainer of TRAINERS stepped by two gloo ranks; one spawn for all (each process imports
    torch and nnU-Net, which costs more than the steps)."""
    folder = tmp_path_factory.mktemp("ddp_ranks")
    with pytest.MonkeyPatch.context() as m:
        for key in ("nnUNet_raw", "nnUNet_preprocessed", "nnUNet_extTrainer"):
            m.setenv(key, tiny_dataset["env"][key])
        m.setenv("nnUNet_results", str(folder / "results"))
        m.setenv("nnUNet_n_proc_DA", "0")
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            m.setenv("HOLDER_TEST_PORT", str(s.getsockname()[1]))
        mp.spawn(_worker, args=(2, str(folder), tiny_dataset["name"]), nprocs=2, join=True)
    return folder


@pytest.mark.parametrize("trainer_name", TRAINERS)
def test_two_ranks_train_like_one_process_on_the_whole_batch(in_nnunet_env, ranks, trainer_name):
    ranks = [torch.load(ranks / f"{trainer_name}_{r}.pt", weights_only=False) for r in range(2)]
    single = _run_steps(_trainer(trainer_name, in_nnunet_env["name"]), slice(0, B))
    for name, value in single["params"].items():
        # DDP all-reduces the gradients: the ranks' updates are bitwise identical
        assert torch.equal(ranks[0]["params"][name], ranks[1]["params"][name]), name
        scale = max(value.abs().max().item(), 1e-6)
        assert (ranks[0]["params"][name] - value).abs().max().item() <= 1e-4 * scale + 1e-6, name
    # the Dice term is the whole batch's on both ranks (gathered sums); the divergence and MI terms
    # are means over each half, so the ranks' mean is the whole batch's loss
    mean = np.mean([ranks[0]["losses"], ranks[1]["losses"]], axis=0)
    assert np.allclose(mean, single["losses"], rtol=1e-4, atol=1e-5)
    # the validation gather: every rank logs the whole batch's subset pseudo-Dice
    assert ranks[0]["subset_dice"] == pytest.approx(single["subset_dice"], abs=1e-6)
    assert ranks[1]["subset_dice"] == pytest.approx(single["subset_dice"], abs=1e-6)
