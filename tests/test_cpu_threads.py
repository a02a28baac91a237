"""`nnUNet_torch_threads` reaches torch in a CPU training, bad values are refused, and `compare
--jobs` gives each concurrent training its share of the cores or its own GPU."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest
import torch
from nnunet_holder.trainers.cpu_threads import threads_from_environment
from nnunetv2.run.run_training import get_trainer_from_args

from nnunet_holder.compare.runs import CHILD_THREAD_VARIABLES, slot_env
from tests.conftest import DATASET_ID


@pytest.fixture
def restore_threads():
    before = torch.get_num_threads()
    yield
    torch.set_num_threads(before)


@pytest.mark.parametrize("trainer", ["HolderMITrainer_smoke", "nnUNetTrainerModalityDropout_smoke"])
def test_a_cpu_training_uses_the_threads_it_is_given(in_nnunet_env, monkeypatch, restore_threads, trainer):
    torch.set_num_threads(2)
    monkeypatch.setenv("nnUNet_torch_threads", "1")
    built = get_trainer_from_args(str(DATASET_ID), "3d_fullres", 0, trainer, device=torch.device("cpu"))
    assert torch.get_num_threads() == 1
    assert "nnUNet_torch_threads=1" in open(built.log_file).read()


def test_unset_keeps_nnunets_choice(in_nnunet_env, monkeypatch, restore_threads):
    torch.set_num_threads(2)
    monkeypatch.delenv("nnUNet_torch_threads", raising=False)
    get_trainer_from_args(str(DATASET_ID), "3d_fullres", 0, "HolderMITrainer_smoke",
                          device=torch.device("cpu"))

    assert torch.get_num_threads() == 2


@pytest.mark.parametrize("value", ["0", "two", "-1"])
def test_bad_thread_counts_are_refused(monkeypatch, value):
    monkeypatch.setenv("nnUNet_torch_threads", value)
    with pytest.raises(SystemExit, match="nnUNet_torch_threads"):
        threads_from_environment()


def test_concurrent_trainings_share_the_cores_or_get_one_gpu_each(monkeypatch):
    cores = len(os.sched_getaffinity(0))
    if cores == os.cpu_count():  # a lone training on the whole machine keeps nnU-Net's own choice
        assert slot_env(0, 1, "cpu") == {}
    assert slot_env(1, 2, "cpu")["nnUNet_torch_threads"] == str(max(1, cores // 2))
    assert slot_env(0, 4 * cores, "cpu")["nnUNet_torch_threads"] == "1"
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "3, 5")
    assert [slot_env(s, 3, "cuda") for s in range(3)] == [
        {"CUDA_VISIBLE_DEVICES": g} for g in ("3", "5", "3")
    ]


@pytest.mark.skipif(len(os.sched_getaffinity(0)) < 2, reason="needs a machine of two cores or more")
def test_a_lone_training_on_part_of_the_machine_keeps_to_its_cores():
    """nnUNetv2_train -device cpu takes os.cpu_count() threads: a worker that may run on one core
    (taskset, a Slurm allocation) must hand its training that one core's thread."""
    probe = (
        "import os; os.sched_setaffinity(0, {sorted(os.sched_getaffinity(0))[0]}); "
        "from nnunet_holder.compare.runs import slot_env; print(slot_env(0, 1, 'cpu'))"
    )
    seen = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, check=True)
    assert "'nnUNet_torch_threads': '1'" in seen.stdout


def test_the_processes_a_concurrent_training_starts_keep_to_its_share(monkeypatch):
    """nnU-Net's validation workers are fresh interpreters: they must see the slot's share too, as
    torch threads and as nnU-Net's worker count (without it each took every core)."""
    for name in CHILD_THREAD_VARIABLES:
        monkeypatch.delenv(name, raising=False)
    jobs = 4 * len(os.sched_getaffinity(0))
    env = {**os.environ, **slot_env(0, jobs, "cpu")}
    probe = (
        "import torch; from nnunetv2.configuration import default_num_processes as n; "
        "print(torch.get_num_threads(), n)"
    )
    seen = subprocess.run([sys.executable, "-c", probe], env=env, capture_output=True, text=True, check=True)
    assert seen.stdout.split() == ["1", "1"]
