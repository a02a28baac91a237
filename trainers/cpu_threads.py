"""CPU threads of a training: `nnUNet_torch_threads=N nnUNetv2_train ... -device cpu`.

`nnUNetv2_train -device cpu` gives torch every core (`torch.set_num_threads(cpu_count())`), which
is right for one training and wrong for several side by side: on a 2-core machine two 2-thread
runs oversubscribe the cores, where two 1-thread runs together train more iterations per second
than one 2-thread run (docs/records/benchmarks.md, "CPU kernels"). Every
nnunet-holder trainer (they all carry `OverridesMixin`) reads `nnUNet_torch_threads` when it is
built and, on the CPU, sets torch's intra-op threads to it. The thread count changes how CPU
kernels split their sums, so a seeded run repeats exactly only with the same count. Unset,
nnU-Net's choice stands; on CUDA nnU-Net's single thread always stands.
"""

from __future__ import annotations

from nnunet_holder.trainers.environment import int_from_environment

THREADS_VARIABLE = "nnUNet_torch_threads"


def threads_from_environment() -> int | None:
    """The torch threads of a CPU training from `nnUNet_torch_threads`, or None where unset or empty."""
    return int_from_environment(THREADS_VARIABLE, 1)
