"""HolderMITrainer on the real nnU-Net: training through nnUNetv2_train, resume, variants, lookup."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
import time
from pathlib import Path

import nnunet_holder.trainers as holder_trainers
import numpy as np
import pytest
import torch
from dynamic_network_architectures.building_blocks.simple_conv_blocks import ConvDropoutNormReLU
from nnunet_holder.architectures import ModalityNorm
from nnunet_holder.trainers import NETWORKS, PAPER_TABLES
from nnunet_holder.trainers.overrides import SMALL, SMOKE, ThinnedProgressPlot, plots_progress
from nnunetv2.run.run_training import get_trainer_from_args
from torch import nn
from torch.nn.modules.instancenorm import _InstanceNorm

from nnunet_holder.file_names import SUBSET_TABLE_MD
from tests.conftest import DATASET_ID, train_command, train_env
from tests.helpers_nnunet import run_cli, with_experiment_variants


def _checkpoint(path):
    return torch.load(path, map_location="cpu", weights_only=False)


def test_smoke_training_reaches_final_checkpoint_and_loss_decreases(trained):
    ckpt = _checkpoint(trained["fold"] / "checkpoint_final.pth")
    assert ckpt["trainer_name"] == "HolderMITrainer_smoke"
    assert any(k.startswith("mi_regressors.") for k in ckpt["network_weights"])
    losses = ckpt["logging"]["train_losses"]
    assert len(losses) == 3
    assert losses[-1] < losses[0], f"training loss did not decrease: {losses}"
    log = next(trained["fold"].glob("training_log_*.txt")).read_text()
    assert "Pseudo dice, mean over 15 modality subsets" in log
    assert "train loss parts" in log


def test_progress_png_is_drawn_at_the_last_epoch_of_a_thinned_schedule(trained):
    # SMOKE draws it only at its last epoch (plot_every 10 > 3 epochs); nnUNetv2_train ran all 3
    assert (trained["fold"] / "progress.png").is_file()


def test_plot_every_thins_progress_png_and_keeps_the_last_epoch():
    epochs, every = SMALL["num_epochs"], SMALL["plot_every"]
    assert [e for e in range(epochs) if plots_progress(e, epochs, every)] == list(range(9, 80, 10))
    assert [e for e in range(3) if plots_progress(e, 3, SMOKE["plot_every"])] == [2]
    assert all(plots_progress(e, 7, 1) for e in range(7))  # nnU-Net's own: every epoch
    assert [e for e in range(25) if plots_progress(e, 25, 10)] == [9, 19, 24]


CPU = torch.device("cpu")


def test_thinned_logger_skips_plots_between_and_passes_everything_else(in_nnunet_env, monkeypatch):
    trainer = _trainer("nnUNetTrainer_smoke")
    assert isinstance(trainer.logger, ThinnedProgressPlot)
    drawn = []
    inner = trainer.logger._logger
    monkeypatch.setattr(inner, "plot_progress_png", lambda folder: drawn.append(trainer.current_epoch))
    for epoch in range(trainer.num_epochs):
        trainer.current_epoch = epoch
        trainer.logger.log("train_losses", float(epoch), epoch)
        trainer.logger.plot_progress_png(trainer.output_folder)
    assert drawn == [trainer.num_epochs - 1]
    assert trainer.logger.get_value("train_losses", step=-1) == trainer.num_epochs - 1
    assert "train_losses" in trainer.logger.get_checkpoint()
    # nnU-Net's own trainer keeps its logger: plot_every stays 1 without our schedules
    plain = get_trainer_from_args(str(DATASET_ID), "3d_fullres", 0, "nnUNetTrainer_5epochs", device=CPU)
    assert not isinstance(plain.logger, ThinnedProgressPlot)


def test_final_validation_writes_subset_table(trained):
    validation = trained["fold"] / "validation"
    assert (validation / "summary.json").is_file()  # nnU-Net's own
    table = (validation / SUBSET_TABLE_MD).read_text()
    for column in ("Fl", "T1c+T2", "~T1c", "Full", "Avg"):
        assert column in table


def test_resume_with_c_continues_from_latest(trained, tmp_path):
    results = tmp_path / "results"
    shutil.copytree(trained["root"] / "results", results)
    fold = results / trained["fold"].relative_to(trained["root"] / "results")
    final = _checkpoint(fold / "checkpoint_final.pth")
    # checkpoint_latest as nnU-Net writes it after epoch 1 of 3: the epoch counter and two epochs of logs
    latest = dict(final)
    latest["current_epoch"] = 2
    latest["logging"] = {k: v[:2] for k, v in final["logging"].items()}
    # The state dict names each block's conv twice (`conv` and `all_modules.0`, one tensor); the
    # first name of each tensor, in order, is the parameter order the optimizer indexes (no buffers)
    first_names: dict[int, str] = {}
    for name, tensor in final["network_weights"].items():
        first_names.setdefault(tensor.data_ptr(), name)
    names = list(first_names.values())
    assert len(names) == len(final["optimizer_state"]["param_groups"][0]["params"])
    # Markers only a loaded checkpoint can bring back. The lowest deep-supervision head has weight 0
    # in the loss, so it gets no gradient and SGD touches neither its weights nor its momentum
    # buffers; a fresh network and optimizer would show a new random init and no buffers.
    head = [i for i, n in enumerate(names) if n.startswith("backbone.decoder.seg_layers.0.")]
    assert head and not any(i in final["optimizer_state"]["state"] for i in head)
    weights, state = dict(final["network_weights"]), dict(final["optimizer_state"]["state"])
    for i in head:
        weights[names[i]] = torch.full_like(weights[names[i]], 0.125)
        state[i] = {"momentum_buffer": torch.full_like(weights[names[i]], -0.25)}
    latest["network_weights"] = weights
    latest["optimizer_state"] = {**final["optimizer_state"], "state": state}
    torch.save(latest, fold / "checkpoint_latest.pth")
    (fold / "checkpoint_final.pth").unlink()
    logs_before = set(fold.glob("training_log_*.txt"))
    started = time.time()
    env = {**train_env(trained["env"]), "nnUNet_results": str(results)}
    run_cli(
        train_command("HolderMITrainer_smoke", "--c"),
        env,
        timeout=900,
    )
    # the run's own log (nnU-Net starts a new one per run) trained epoch 2 and nothing before it
    (log,) = set(fold.glob("training_log_*.txt")) - logs_before
    assert re.findall(r": Epoch (\d+)\s*$", log.read_text(), flags=re.MULTILINE) == ["2"]
    resumed = _checkpoint(fold / "checkpoint_final.pth")
    assert resumed["current_epoch"] == 3  # nnU-Net stores the number of epochs done
    after, before = resumed["logging"], final["logging"]
    assert after["train_losses"][:2] == before["train_losses"][:2]
    assert len(after["train_losses"]) == 3
    assert after["epoch_start_timestamps"][:2] == before["epoch_start_timestamps"][:2]
    assert after["epoch_start_timestamps"][2] > started  # epoch 2 ran in this run
    # the poly schedule continued at epoch 2's learning rate, not epoch 0's
    assert after["lrs"] == before["lrs"] and after["lrs"][2] < after["lrs"][0]
    restored = resumed["optimizer_state"]["state"]
    for i in head:
        assert torch.equal(resumed["network_weights"][names[i]], weights[names[i]]), names[i]
        assert i in restored, f"momentum buffer of {names[i]} lost: the optimizer state was not restored"
        assert torch.equal(restored[i]["momentum_buffer"], state[i]["momentum_buffer"]), names[i]


def _trainer(name: str):
    trainer = get_trainer_from_args(str(DATASET_ID), "3d_fullres", 0, name, device=torch.device("cpu"))
    trainer.initialize()
    return trainer


def test_checkpoint_restores_network_and_optimizer_state(in_nnunet_env, tmp_path):
    trainer = _trainer("HolderMITrainer_smoke")
    dl_train, _ = trainer.get_dataloaders()
    trainer.network.train()
    trainer.train_step(next(dl_train))
    trainer.train_step(next(dl_train))
    trainer.save_checkpoint(str(tmp_path / "checkpoint_latest.pth"))
    restored = _trainer("HolderMITrainer_smoke")
    restored.load_checkpoint(str(tmp_path / "checkpoint_latest.pth"))
    for key, value in trainer.network.state_dict().items():
        assert torch.equal(value, restored.network.state_dict()[key]), key
    saved, loaded = trainer.optimizer.state_dict(), restored.optimizer.state_dict()
    names = [n for n, _ in trainer.network.named_parameters()]
    regressor = [i for i, n in enumerate(names) if n.startswith("mi_regressors.")]
    assert regressor and all(i in saved["state"] for i in regressor)  # the MI regressor is optimised
    for idx, state in saved["state"].items():
        assert torch.equal(state["momentum_buffer"], loaded["state"][idx]["momentum_buffer"])


# the schedule variants change only `overrides` (test_trainer_catalogue.py): their steps are these
@pytest.mark.parametrize("trainer_class", [*NETWORKS, *PAPER_TABLES], ids=lambda c: c.__name__)
def test_every_variant_runs_a_train_and_a_validation_step(in_nnunet_env, trainer_class):
    trainer = _trainer(trainer_class.__name__)
    dl_train, dl_val = trainer.get_dataloaders()
    trainer.network.train()
    out = trainer.train_step(next(dl_train))
    assert np.isfinite(out["loss"])
    trainer.on_validation_epoch_start()
    with torch.no_grad():
        val = trainer.validation_step(next(dl_val))
    assert np.isfinite(val["loss"])
    assert val["tp_hard"].shape == (3,)


@pytest.mark.parametrize(
    "name",
    ["HolderMITrainer_smoke", "HolderMITrainer_featureFusion_smoke", "HolderMITrainer_inputFusion_smoke"],
)
def test_every_parameter_gets_a_gradient_in_a_train_step(in_nnunet_env, name):
    trainer = _trainer(name)
    dl_train, _ = trainer.get_dataloaders()
    trainer.network.train()
    trainer.train_step(next(dl_train))
    grads = {name: p.grad for name, p in trainer.network.named_parameters()}

    def bias_feeds_instance_norm(module: nn.Module) -> bool:
        if not isinstance(module, ConvDropoutNormReLU) or module.conv.bias is None:
            return False
        norm = getattr(module, "norm", None)
        ops = list(module.all_modules)
        # the feature-fusion decoder has the plans' own InstanceNorm, the encoders a ModalityNorm
        instance = isinstance(norm, _InstanceNorm) or (
            isinstance(norm, ModalityNorm) and isinstance(norm.norm, _InstanceNorm)
        )
        return instance and ops.index(norm) == ops.index(module.conv) + 1 + hasattr(module, "dropout")

    # A conv bias right before an instance norm adds a per-channel constant that the norm's
    # per-sample, per-channel mean takes out again: its exact gradient is 0, and what backward
    # computes is float32 rounding noise, which a `> 0` test would count as a gradient.
    cancelled = {f"{n}.conv.bias" for n, m in trainer.network.named_modules() if bias_feeds_instance_norm(m)}
    # nnU-Net weights the lowest-resolution deep-supervision head 0 and the loss skips that scale,
    # so its seg layer is outside the graph (dynamic-network-architectures orders heads deep to shallow)
    lowest_head = {n for n in grads if re.match(r"(backbone\.)?decoder\.seg_layers\.0\.", n)}
    assert cancelled and lowest_head
    # Measured relative to the largest gradient entry: the rounding noise of the cancelled biases
    # stays below ~1e-7 of it, genuine gradients (each modality's norm affine included) above ~1e-4.
    threshold = 3e-6 * max(g.abs().max() for g in grads.values() if g is not None)
    modality_norm_params = {
        f"{n}.{p}"
        for n, m in trainer.network.named_modules()
        if isinstance(m, ModalityNorm)
        for p in ("weight", "bias")
    }
    for name, grad in grads.items():
        if name in lowest_head:
            assert grad is None or not grad.any(), name
        elif name in cancelled:
            # in the graph (DDP requires that), carrying no signal
            assert grad is not None and grad.abs().max() < threshold, name
        elif name in modality_norm_params:
            # (M, C): every modality's own affine must learn, not only one of them
            assert grad is not None and (grad.abs().amax(dim=1) > threshold).all(), name
        else:
            assert grad is not None and grad.abs().max() > threshold, name


def test_learned_fusion_weights_train_and_are_logged(in_nnunet_env, monkeypatch):
    # an experiment variant: found in experiments/variants, as the records' commands find it
    monkeypatch.setenv("nnUNet_extTrainer", with_experiment_variants(os.environ)["nnUNet_extTrainer"])
    trainer = _trainer("HolderMITrainer_learnedFusion")
    beta = trainer.parallel_network().fusion_logits
    assert beta is not None and not beta.any()  # starts at the plain mean
    dl_train, _ = trainer.get_dataloaders()
    trainer.on_train_epoch_start()
    outputs = [trainer.train_step(next(dl_train)) for _ in range(2)]
    assert beta.abs().sum() > 0
    trainer.on_train_epoch_end(outputs)
    log = Path(trainer.log_file).read_text()
    assert "fusion weights (full set), per output channel: 0: T1 " in log


def test_modality_dropout_zeroes_whole_channels_but_never_all(in_nnunet_env):
    trainer = _trainer("nnUNetTrainerModalityDropout_smoke")
    seen = []
    trainer.network.register_forward_pre_hook(lambda mod, args: seen.append(args[0].detach().clone()))
    dl_train, _ = trainer.get_dataloaders()
    trainer.network.train()
    for _ in range(4):
        trainer.train_step(next(dl_train))
    kept = torch.cat([(x.flatten(2).abs().sum(-1) > 0) for x in seen])  # (samples, channels)
    assert kept.any(dim=1).all()
    assert not kept.all()  # with 8 samples, some channel was dropped (probability 1 - (1/15)^8)


@pytest.mark.parametrize(
    "cls",
    [holder_trainers.nnUNetTrainerModalityDropout, holder_trainers.nnUNetTrainerModalityDropout_fullHalf],
)
def test_modality_dropout_draws_the_full_set_as_often_as_it_says(cls):
    torch.manual_seed(0)
    n, m = 30_000, 4
    keep = cls.keep_mask(cls.__new__(cls), n, m)
    assert keep.shape == (n, m) and set(keep.unique().tolist()) <= {0.0, 1.0}
    assert keep.any(dim=1).all()
    full = keep.all(dim=1)
    subsets = 2**m - 1
    expected_full = cls.full_set_probability + (1 - cls.full_set_probability) / subsets
    assert abs(full.float().mean().item() - expected_full) < 0.01  # binomial std ~0.003
    # the other draws stay uniform over the 14 proper subsets
    codes = (keep[~full] * 2 ** torch.arange(m)).sum(1).long()
    counts = torch.bincount(codes, minlength=subsets)[1:subsets]
    assert (counts > 0).all() and counts.float().std() / counts.float().mean() < 0.06


def test_trainer_path_cli_prints_the_shim_folder(env):
    out = run_cli(["nnunet-holder", "trainer-path"], env).stdout.strip()
    assert out == env["nnUNet_extTrainer"]
    assert (Path(out) / "nnunet_holder_trainers.py").is_file()


def test_trainer_path_imports_neither_torch_nor_the_trainers():
    # users run `export nnUNet_extTrainer=$(nnunet-holder trainer-path)` in every shell; importing
    # the trainers for it cost half a minute of CPU on a 2-core host
    check = (
        "import sys; from nnunet_holder.trainer_path import trainer_path; print(trainer_path());"
        "print(sorted(m for m in ('torch', 'nnunetv2', 'nnunet_holder.trainers') if m in sys.modules))"
    )
    out = subprocess.run([sys.executable, "-c", check], check=True, capture_output=True, text=True).stdout
    folder, imported = out.splitlines()
    assert (Path(folder) / "nnunet_holder_trainers.py").is_file()
    assert Path(folder) == Path(holder_trainers.__file__).parent / "ext"
    assert imported == "[]"
