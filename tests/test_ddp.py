"""DDP without GPUs: two gloo processes on halves of a batch give the single-process gradients.

nnU-Net's own `-num_gpus` path is nccl-only, so this drives the same pieces directly: the
network wrapped in DistributedDataParallel exactly as nnU-Net wraps it (no
find_unused_parameters), the composite loss over every modality subset, one backward. DDP
averages the ranks' gradients; every loss term is a mean over samples (Dice with batch_dice off,
per-sample instance norms), so the average over two halves equals the whole-batch gradient.
"""

from __future__ import annotations

import os
from pathlib import Path

import torch
import torch.distributed as dist
import torch.multiprocessing as mp
from nnunet_holder.architectures import ModalityParallelNet
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


def _subsets(k: int | None):
    mask = subset_mask(all_subsets(M), M)
    return mask if k is None else mask[[0, 5, 9, len(mask) - 1][:k]]


def _worker(rank: int, world: int, folder: str, k: int | None) -> None:
    os.environ.update(MASTER_ADDR="127.0.0.1", MASTER_PORT=os.environ["HOLDER_TEST_PORT"])
    dist.init_process_group("gloo", rank=rank, world_size=world)
    torch.set_num_threads(1)
    net, loss, x, y = _setup()
    ddp = DDP(net)
    half = slice(rank * B // world, (rank + 1) * B // world)
    out = ddp(x[half], _subsets(k))
    loss(out, [t[half] for t in y]).backward()
    torch.save(
        {n: p.grad.clone() for n, p in net.named_parameters() if p.grad is not None},
        Path(folder) / f"{rank}.pt",
    )
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
    return [torch.load(tmp_path / f"{r}.pt") for r in range(2)], _single(k)


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
    ranks, single = _run(tmp_path, 3)
    for name in single:
        _assert_close(ranks[0][name], single[name], name)
