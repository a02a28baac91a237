"""DDP without GPUs: two gloo processes on halves of a batch give the single-process gradients.

nnU-Net's own `-num_gpus` path is nccl-only, so this drives the same pieces directly: the
network wrapped in DistributedDataParallel exactly as nnU-Net wraps it (no
find_unused_parameters), the composite loss over every modality subset or over a step's subsets
drawn as the trainers draw them (`draw_step_subsets`: the full set among them, the same on every
rank), one backward. DDP averages the ranks' gradients; every loss term is a mean over samples
(Dice with batch_dice off, per-sample instance norms), so the average over two halves equals the
whole-batch gradient.
"""

from __future__ import annotations

import os
from pathlib import Path

import torch
import torch.distributed as dist
import torch.multiprocessing as mp
from nnunet_holder.architectures import ModalityParallelNet
from nnunet_holder.trainers.holder_mi import draw_step_subsets
from nnunet_holder.trainers.seeding import seed_everything
from torch.nn.parallel import DistributedDataParallel as DDP

from nnunet_holder.losses import HolderMILoss
from nnunet_holder.subsets import all_subsets, subset_mask
from tests.helpers_net import BACKBONES

M, C, B = 4, 3, 4
# float32 summation order differs between one batch and two halves: 1e-4 relative to the largest
# entry of each parameter's gradient, plus 1e-7 absolute for the conv biases in front of instance
# norms, whose true gradient is 0 and whose computed one is rounding noise (~1e-9)
RTOL, ATOL = 1e-4, 1e-7


def _setup(seed: int = 0):
    torch.manual_seed(seed)
    cls, kwargs = BACKBONES["plain"]
    net = ModalityParallelNet(cls, kwargs(), num_modalities=M, num_classes=C, width=0.5)
    loss = HolderMILoss(use_sigmoid=True, ds_weights=[2 / 3, 1 / 3], batch_dice=False)
    g = torch.Generator().manual_seed(1)
    x = torch.randn(B, M, 16, 16, 16, generator=g)
    y = [
        (torch.rand(B, C, 16, 16, 16, generator=g) > 0.7).float(),
        (torch.rand(B, C, 8, 8, 8, generator=g) > 0.7).float(),
    ]
    return net, loss, x, y


SEED, EPOCH, STEP = 3, 2, 5


def _subsets(k: int | None):
    """Every subset, or the trainers' draw of k subsets for one step (the full set last)."""
    mask = subset_mask(all_subsets(M), M)
    return mask if k is None else mask[draw_step_subsets(len(mask), k, SEED, EPOCH, STEP)]


def _worker(rank: int, world: int, folder: str, k: int | None) -> None:
    os.environ.update(MASTER_ADDR="127.0.0.1", MASTER_PORT=os.environ["HOLDER_TEST_PORT"])
    dist.init_process_group("gloo", rank=rank, world_size=world)
    torch.set_num_threads(1)
    net, loss, x, y = _setup()
    ddp = DDP(net)
    half = slice(rank * B // world, (rank + 1) * B // world)
    seed_everything(SEED + rank)  # each rank's global generators, as a seeded trainer's
    subsets = _subsets(k)
    out = ddp(x[half], subsets)
    loss(out, [t[half] for t in y]).backward()
    grads = {n: p.grad.clone() for n, p in net.named_parameters() if p.grad is not None}
    torch.save({"grads": grads, "subsets": subsets}, Path(folder) / f"{rank}.pt")
    dist.destroy_process_group()


def _single(k: int | None) -> dict[str, torch.Tensor]:
    net, loss, x, y = _setup()
    loss(net(x, _subsets(k)), y).backward()
    return {n: p.grad for n, p in net.named_parameters() if p.grad is not None}


def _run(tmp_path, k):
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        os.environ["HOLDER_TEST_PORT"] = str(s.getsockname()[1])
    mp.spawn(_worker, args=(2, str(tmp_path), k), nprocs=2, join=True)
    saved = [torch.load(tmp_path / f"{r}.pt") for r in range(2)]
    assert torch.equal(saved[0]["subsets"], saved[1]["subsets"])  # every rank trains the same subsets
    return [s["grads"] for s in saved], _single(k)


def _assert_close(a: torch.Tensor, b: torch.Tensor, name: str) -> None:
    scale = max(a.abs().max().item(), b.abs().max().item(), 1e-12)
    assert (a - b).abs().max().item() <= RTOL * scale + ATOL, name


def test_ddp_gradients_match_across_ranks_and_single_process(tmp_path):
    ranks, single = _run(tmp_path, None)
    assert set(ranks[0]) == set(ranks[1]) == set(single)
    for name in single:
        assert torch.equal(ranks[0][name], ranks[1][name]), name  # DDP all-reduce: bitwise identical
        _assert_close(ranks[0][name], single[name], name)
    assert any(n.startswith("mi_regressors.") for n in single)


def test_ddp_with_a_sampled_subset_schedule(tmp_path):
    subsets = _subsets(3)
    assert subsets.shape[0] == 3 and bool(subsets[-1].all())  # the trainers' shape: the full set last
    ranks, single = _run(tmp_path, 3)
    for name in single:
        _assert_close(ranks[0][name], single[name], name)
