"""HolderMITrainer: nnU-Net's trainer with the modality-parallel network and the Hölder + MI loss.

Everything nnU-Net does stays nnU-Net's: data loading, augmentation, SGD with the poly schedule,
AMP on CUDA, checkpoints, `--c`, DDP and the final validation. This class changes the network
(built from the plans by `build_network_architecture`, which the predictor calls too), the loss
(Dice + Hölder divergence at every deep-supervision scale over every modality subset, plus the
variational MI term at the bottleneck), the subset schedule of each step (`draw_step_subsets`),
and adds the pseudo-Dice of every subset to the validation log (the subset table of the final
validation is written by `OverridesMixin`, as for every trainer of the package).
Variants change one class attribute each (see `trainers/variants`).
"""

from __future__ import annotations

import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from os.path import join
from time import time
from typing import ClassVar

import numpy as np
import torch
from nnunet_holder.architectures import ModalityNetwork, ModalityParallelNet
from nnunet_holder.trainers.overrides import OverridesMixin
from nnunet_holder.trainers.setup_checks import refuse_unsupported_setup
from nnunetv2.training.loss.dice import get_tp_fp_fn_tn
from nnunetv2.training.nnUNetTrainer import nnUNetTrainer as nnunet_trainer_module
from nnunetv2.training.nnUNetTrainer.nnUNetTrainer import nnUNetTrainer
from nnunetv2.utilities.collate_outputs import collate_outputs
from nnunetv2.utilities.helpers import dummy_context
from nnunetv2.utilities.plans_handling.plans_handler import ConfigurationManager, PlansManager
from torch import autocast, nn
from torch import distributed as dist
from torch._dynamo import OptimizedModule
from torch.nn.parallel import DistributedDataParallel as DDP

from nnunet_holder.availability import absent_channels, batch_available, subsets_inside, subsets_within
from nnunet_holder.losses import HolderMILoss
from nnunet_holder.predict.predictor import HolderPredictor
from nnunet_holder.subsets import all_subsets, modality_names, subset_mask, subset_name


@contextmanager
def _predictor_class(cls: type) -> Iterator[None]:
    original = nnunet_trainer_module.nnUNetPredictor
    nnunet_trainer_module.nnUNetPredictor = cls
    try:
        yield
    finally:
        nnunet_trainer_module.nnUNetPredictor = original


def draw_step_subsets(
    num_subsets: int,
    k: int,
    seed: int | None,
    epoch: int,
    step: int,
    stream: str = "train",
    probabilities: np.ndarray | None = None,
) -> list[int]:
    """Indices (into `all_subsets`, ascending) of the k subsets of one step: k − 1 others drawn
    without replacement (uniformly, or with `probabilities` over the num_subsets − 1 subsets
    besides the full set), and the full set (the last index), always.

    A function of (seed, epoch, step within the epoch, stream) alone, never of the rank or of a
    global generator: every DDP rank draws the same subsets (batch Dice gathers its channels
    across ranks), and a `--c` resume at an epoch boundary draws what the interrupted run would
    have drawn. `stream` is "train" (`train_step`) or "val" (the loss of `validation_step`).
    Unseeded runs (seed None) key on the epoch and step alone, so every unseeded run draws the
    same sequence.
    """
    key = [epoch, step, {"train": 0, "val": 1}[stream]]
    rng = np.random.default_rng(key if seed is None else [seed, *key])
    partial = rng.choice(num_subsets - 1, size=k - 1, replace=False, p=probabilities)
    return sorted(partial.tolist()) + [num_subsets - 1]


def single_modality_probabilities(subsets: list[tuple[int, ...]], share: float) -> np.ndarray:
    """Draw probabilities over `subsets` without the last (the full set): the single modalities
    get `share` in total, the other subsets the rest, equally within each group."""
    if not 0 < share < 1:
        raise ValueError(f"single_modality_share must be in (0, 1), got {share}")
    single = np.array([len(s) == 1 for s in subsets[:-1]])
    return np.where(single, share / single.sum(), (1 - share) / (~single).sum())


def deep_supervision_weights(num_scales: int, keep_last: bool) -> list[float]:
    """nnU-Net's weights: 1/2^i, the lowest resolution dropped (or ~0 under DDP), normalised.

    A network with a single output (plans with one decoder stage) keeps it: nnU-Net's formula
    would drop the only scale and divide 0 by 0.
    """
    if num_scales == 1:
        return [1.0]
    weights = np.array([1 / (2**i) for i in range(num_scales)])
    # DDP without compile demands a gradient for every head, hence nnU-Net's 1e-6 instead of 0
    weights[-1] = 1e-6 if keep_last else 0
    return list(weights / weights.sum())


class HolderMITrainer(OverridesMixin, nnUNetTrainer):
    """The paper's method on nnU-Net's training pipeline (nnU-Net defaults for everything else)."""

    network_class: ClassVar[type[ModalityNetwork]] = ModalityParallelNet
    """The network: the paper's logit fusion, `FeatureFusionNet` (`HolderMITrainer_featureFusion`) or
    `InputFusionNet` (`HolderMITrainer_inputFusion`)."""
    width: ClassVar[float] = 0.5
    """The backbone's feature counts as a fraction of the plans' (the paper: 0.5)."""
    mi_stages: ClassVar[int] = 1
    """How many of the deepest encoder stages carry an MI regressor (1: the bottleneck)."""
    divergence: ClassVar[str | None] = "holder"
    """The divergence term against the labels: a name of `nnunet_holder.losses.DIVERGENCES`, or None."""
    alpha: ClassVar[float] = 1.1
    """The Hölder exponent α (the paper: 1.1)."""
    lambda_hd: ClassVar[float] = 1.0
    """The weight of the divergence term."""
    lambda_mi: ClassVar[float] = 1.0
    """The weight of the MI term (0: none)."""
    lambda_kd: ClassVar[float] = 0.0
    """The weight of the distillation term D(p_S ‖ sg(p_full)) (0: none, the paper's Eq. 7; see
    `HolderMILoss` and trainers/variants/distillation.py)."""
    kd_temperature: ClassVar[float] = 1.0
    """The temperature of the distillation term (logits / T, term × T²)."""
    detach_teacher: ClassVar[bool] = True
    """Detach the full set's features in the MI term (`HolderMILoss`)."""
    subsets_per_step: ClassVar[int | None] = None
    """None: every non-empty subset each step (the paper). k: k subsets per step, full set included."""
    single_modality_share: ClassVar[float | None] = None
    """None: the subsets besides the full set are drawn uniformly. A share in (0, 1): the single
    modalities are drawn with this probability in total (`single_modality_probabilities`); uniform
    drawing gives them M / (2^M − 2), 4/14 for four modalities. Only where a step draws
    (`subsets_per_step` below the number of subsets)."""
    validation_subsets_per_pass: ClassVar[int | None] = None
    """How many subsets one network pass of `validation_step` segments for the pseudo-Dice of all of
    them. None: as many as a training step (`subsets_per_step`, or all), so that validation, which
    keeps no activations for a backward pass, needs no more memory than training. The pseudo-Dice
    does not depend on it."""
    full_set_weight: ClassVar[float] = 1.0
    """The weight of the full set's loss term relative to each other subset's (the paper: 1)."""
    subset_reduction: ClassVar[str] = "mean"
    """How the subsets' loss terms are combined: "mean" (the paper) or "sum" (see `HolderMILoss`)."""
    learned_fusion: ClassVar[bool] = False
    """False: fuse by the plain mean of logits (the paper). True: learned per-(modality, class) weights."""
    checkpoint_selection: ClassVar[str] = "subsets"
    """What `checkpoint_best` maximises (EMA over epochs, as nnU-Net): "subsets", the validation
    pseudo-Dice averaged over every modality subset (what the method is for), or "full", nnU-Net's
    full-set pseudo-Dice."""

    @classmethod
    def build_network_architecture(
        cls,
        plans_manager: PlansManager,
        configuration_manager: ConfigurationManager,
        num_input_channels: int,
        num_output_channels: int,
        enable_deep_supervision: bool = True,
    ) -> nn.Module:
        return cls.network_class.from_plans(
            configuration_manager,
            num_modalities=num_input_channels,
            num_classes=num_output_channels,
            deep_supervision=enable_deep_supervision,
            **cls.network_options(),
        )

    @classmethod
    def network_options(cls) -> dict:
        """The network's settings from the class attributes (those of `network_class`)."""
        return {"width": cls.width, "mi_stages": cls.mi_stages, "learned_fusion": cls.learned_fusion}

    def initialize(self) -> None:
        if self.label_manager.has_ignore_label:
            raise NotImplementedError(f"{type(self).__name__} does not support datasets with an ignore label")
        if self.checkpoint_selection not in ("subsets", "full"):
            raise ValueError(
                f"checkpoint_selection must be 'subsets' or 'full', got {self.checkpoint_selection!r}"
            )
        refuse_unsupported_setup(
            self, uses_modality_norms=self.network_class.uses_modality_norms, needs_modalities=2
        )
        super().initialize()
        self.init_subset_schedule()
        # the subset pseudo-Dice per epoch and its EMA live in nnU-Net's logger, so they are
        # checkpointed with it and a `--c` resume continues the same average
        logging = self.logger.local_logger.my_fantastic_logging
        for key in ("mean_subset_dice", "ema_subset_dice"):
            logging.setdefault(key, [])

    def init_subset_schedule(self) -> None:
        """The modality subsets, their (S, M) mask on the device and the names (part of `initialize`)."""
        self._subsets = all_subsets(self.num_input_channels)
        self._all_mask = subset_mask(self._subsets, self.num_input_channels).to(self.device)
        self._modality_names = modality_names(self.dataset_json["channel_names"])
        self._absent = absent_channels(self.dataset_json)
        self._step = self._val_step = 0  # steps done in this epoch: keys of the subset draws

    def on_epoch_start(self) -> None:
        super().on_epoch_start()
        self._step = self._val_step = 0

    def _step_subsets(self, stream: str, step: int) -> list[int]:
        """Indices of the subsets of this epoch's training or validation step `step`."""
        k = self.subsets_per_step
        num = len(self._subsets)
        if k is None or k >= num:
            return list(range(num))
        share = self.single_modality_share if stream == "train" else None
        probabilities = None if share is None else single_modality_probabilities(self._subsets, share)
        return draw_step_subsets(num, k, self.seed, self.current_epoch, step, stream, probabilities)

    def _build_loss(self) -> nn.Module:
        ds_weights = None
        if self.enable_deep_supervision:
            ds_weights = deep_supervision_weights(
                len(self._get_deep_supervision_scales()), keep_last=self.is_ddp and not self._do_i_compile()
            )
        return HolderMILoss(
            use_sigmoid=self.label_manager.has_regions,
            ds_weights=ds_weights,
            divergence=self.divergence,
            alpha=self.alpha,
            lambda_hd=self.lambda_hd,
            lambda_mi=self.lambda_mi,
            detach_teacher=self.detach_teacher,
            full_set_weight=self.full_set_weight,
            subset_reduction=self.subset_reduction,
            lambda_kd=self.lambda_kd,
            kd_temperature=self.kd_temperature,
            batch_dice=self.configuration_manager.batch_dice,
            ddp=self.is_ddp,
        )

    def parallel_network(self) -> ModalityNetwork:
        """The network under any DDP / compile wrapping (for settings, never for forward)."""
        mod = self.network.module if isinstance(self.network, DDP) else self.network
        return mod._orig_mod if isinstance(mod, OptimizedModule) else mod

    def _subsets_for_step(self) -> torch.Tensor:
        """The (k, M) mask of this epoch's next training step."""
        return self._all_mask[self._step_subsets("train", self._step)]

    def _available(self, batch: dict) -> torch.Tensor | None:
        """(B, M) mask of the modalities the batch's cases (nnU-Net's batch "keys") have, from
        dataset.json's record; None when all of them are complete."""
        available = batch_available(self._absent, batch, self.num_input_channels)
        return None if available is None else available.to(self.device)

    def _per_sample(self, subsets: torch.Tensor, available: torch.Tensor | None) -> torch.Tensor:
        """The step's (k, M) subsets, or with incomplete cases in the batch (B, k, M): each sample's
        subsets inside what it has (`subsets_within`), its full set its available set."""
        return subsets if available is None else subsets_within(subsets, available)

    def train_step(self, batch: dict) -> dict:
        """nnU-Net's train step with the step's subsets passed to the network (through DDP/compile)."""
        subsets = self._per_sample(self._subsets_for_step(), self._available(batch))
        self._step += 1
        data = batch["data"].to(self.device, non_blocking=True)
        target = batch["target"]
        target = (
            [t.to(self.device, non_blocking=True) for t in target]
            if isinstance(target, list)
            else target.to(self.device, non_blocking=True)
        )
        self.optimizer.zero_grad(set_to_none=True)
        with autocast(self.device.type, enabled=True) if self.device.type == "cuda" else dummy_context():
            loss = self.loss(self.network(data, subsets), target)
        if self.grad_scaler is not None:
            self.grad_scaler.scale(loss).backward()
            self.grad_scaler.unscale_(self.optimizer)
            torch.nn.utils.clip_grad_norm_(self.network.parameters(), 12)
            self.grad_scaler.step(self.optimizer)
            self.grad_scaler.update()
        else:
            loss.backward()
            torch.nn.utils.clip_grad_norm_(self.network.parameters(), 12)
            self.optimizer.step()
        return {"loss": loss.detach().cpu().numpy(), **self.loss.last_parts}

    def on_train_epoch_end(self, train_outputs: list[dict]) -> None:
        super().on_train_epoch_end(train_outputs)
        collated = collate_outputs(train_outputs)
        parts = {k: float(np.mean(collated[k])) for k in ("dice", "hd", "mi", "kd") if k in collated}
        self.print_to_log_file(
            "train loss parts (this rank): " + ", ".join(f"{k} {v:.4f}" for k, v in parts.items())
        )
        net = self.parallel_network()
        beta = net.fusion_logits if isinstance(net, ModalityParallelNet) else None
        if beta is not None:
            # the full set's weights: how much each modality counts for each output channel
            weights = torch.softmax(beta.detach().float(), dim=0).cpu().numpy()
            names = self._modality_names
            self.print_to_log_file(
                "fusion weights (full set), per output channel: "
                + "; ".join(
                    f"{c}: " + " ".join(f"{n} {w:.2f}" for n, w in zip(names, weights[:, c], strict=True))
                    for c in range(weights.shape[1])
                )
            )

    def validation_step(self, batch: dict) -> dict:
        """The loss on a training step's draw of subsets, and the pseudo-Dice counts of every subset.

        The loss is the training loss on subsets drawn as `train_step` draws them (stream "val"),
        so `val_loss` weights the subsets as `train_loss` does and the two compare. The subsets
        outside that draw are segmented `validation_subsets_per_pass` at a time; each subset's
        counts are those of segmenting it alone. An incomplete case's subsets are taken inside what it
        has for the loss, and it counts only for the subsets it has.
        """
        data = batch["data"].to(self.device, non_blocking=True)
        target = batch["target"]
        target = (
            [t.to(self.device, non_blocking=True) for t in target]
            if isinstance(target, list)
            else [target.to(self.device, non_blocking=True)]
        )
        num = len(self._subsets)
        drawn = self._step_subsets("val", self._val_step)
        self._val_step += 1
        available = self._available(batch)
        with autocast(self.device.type, enabled=True) if self.device.type == "cuda" else dummy_context():
            output = self.network(data, self._per_sample(self._all_mask[drawn], available))
            loss = self.loss(output, target)
        inside = None if available is None else subsets_inside(self._all_mask, available)
        counts = dict(
            zip(drawn, self._subset_counts(output["logits"][0], target[0], inside, drawn), strict=True)
        )
        rest = [i for i in range(num) if i not in counts]
        size = self.validation_subsets_per_pass or self.subsets_per_step or num
        net = self.parallel_network()  # no gradients to synchronise: DDP's wrapper is not needed
        for start in range(0, len(rest), size):
            group = rest[start : start + size]
            with autocast(self.device.type, enabled=True) if self.device.type == "cuda" else dummy_context():
                logits = net.subset_logits(data, self._all_mask[group])
            counts.update(zip(group, self._subset_counts(logits, target[0], inside, group), strict=True))
        tp, fp, fn = (np.stack([counts[i][j] for i in range(num)]) for j in range(3))
        return {
            "loss": loss.detach().cpu().numpy(),
            "tp_hard": tp[-1],
            "fp_hard": fp[-1],
            "fn_hard": fn[-1],
            "tp_subsets": tp,
            "fp_subsets": fp,
            "fn_subsets": fn,
        }

    def _subset_counts(
        self,
        logits: torch.Tensor,
        target: torch.Tensor,
        inside: torch.Tensor | None = None,
        subsets: list[int] | None = None,
    ) -> list[tuple[np.ndarray, np.ndarray, np.ndarray]]:
        """(tp, fp, fn) per pseudo-Dice channel of each subset of (B, S, C, *spatial) logits.

        `inside` (B, all subsets) says which subsets each sample has (None: all); `subsets` are the
        indices of the S subsets of `logits`. A sample counts only for the subsets it has.
        """
        fused = logits.float()
        b, s, c = fused.shape[:3]
        if self.label_manager.has_regions:
            pred = torch.sigmoid(fused) > 0.5
            gt = target.bool()
        else:
            classes = torch.arange(c, device=fused.device).view(c, *[1] * (fused.ndim - 3))
            pred = fused.argmax(2, keepdim=True) == classes
            gt = target.long() == classes
        # subsets folded into channels: one count per (subset, channel)
        pred = pred.reshape(b, s * c, *fused.shape[3:]).float()
        gt = gt.repeat(1, s, *[1] * (gt.ndim - 2)).float()
        if inside is None:
            tp, fp, fn, _ = get_tp_fp_fn_tn(pred, gt, axes=[0] + list(range(2, pred.ndim)))
        else:  # per sample, then summed over the samples that have the subset
            counts = get_tp_fp_fn_tn(pred, gt, axes=list(range(2, pred.ndim)))[:3]
            weight = inside[:, subsets].to(pred.dtype).repeat_interleave(c, dim=1)
            tp, fp, fn = ((x * weight).sum(0) for x in counts)
        first = 0 if self.label_manager.has_regions else 1
        tp, fp, fn = (x.view(s, c)[:, first:].detach().cpu().numpy() for x in (tp, fp, fn))
        return list(zip(tp, fp, fn, strict=True))

    def on_validation_epoch_end(self, val_outputs: list[dict]) -> None:
        super().on_validation_epoch_end(val_outputs)
        collated = collate_outputs(val_outputs)
        counts = [np.sum(collated[k], 0) for k in ("tp_subsets", "fp_subsets", "fn_subsets")]
        if self.is_ddp:
            gathered = [None] * dist.get_world_size()
            dist.all_gather_object(gathered, counts)
            counts = [np.sum([g[i] for g in gathered], 0) for i in range(3)]
        tp, fp, fn = counts
        with np.errstate(invalid="ignore", divide="ignore"):
            dice = 2 * tp / (2 * tp + fp + fn)  # (S, C)
        with warnings.catch_warnings():
            # a subset that no validation sample of this epoch has (incomplete cases) has no Dice: NaN
            warnings.simplefilter("ignore", RuntimeWarning)
            per_subset = np.nanmean(dice, axis=1)
            mean_subsets = float(np.nanmean(per_subset))
        logger = self.logger.local_logger
        previous = logger.get_value("ema_subset_dice", step=None)
        ema = 0.9 * previous[-1] + 0.1 * mean_subsets if previous else mean_subsets
        logger.log("mean_subset_dice", mean_subsets, self.current_epoch)
        logger.log("ema_subset_dice", ema, self.current_epoch)
        self.print_to_log_file(
            f"Pseudo dice, mean over {len(self._subsets)} modality subsets: {mean_subsets:.4f}; "
            + ", ".join(
                f"{subset_name(s, self._modality_names)} {d:.3f}"
                for s, d in zip(self._subsets, per_subset, strict=True)
            )
        )

    def on_epoch_end(self) -> None:
        """nnU-Net's epoch end, with `checkpoint_best` chosen by `checkpoint_selection`."""
        self.logger.log("epoch_end_timestamps", time(), self.current_epoch)
        get = self.logger.get_value
        self.print_to_log_file("train_loss", np.round(get("train_losses", step=-1), decimals=4))
        self.print_to_log_file("val_loss", np.round(get("val_losses", step=-1), decimals=4))
        dice = get("dice_per_class_or_region", step=-1)
        self.print_to_log_file("Pseudo dice", [np.round(i, decimals=4) for i in dice])
        seconds = get("epoch_end_timestamps", step=-1) - get("epoch_start_timestamps", step=-1)
        self.print_to_log_file(f"Epoch time: {np.round(seconds, decimals=2)} s")
        if (self.current_epoch + 1) % self.save_every == 0 and self.current_epoch != self.num_epochs - 1:
            self.save_checkpoint(join(self.output_folder, "checkpoint_latest.pth"))
        key, what = (
            ("ema_subset_dice", "mean over modality subsets")
            if self.checkpoint_selection == "subsets"
            else ("ema_fg_dice", "full set")
        )
        ema = self.logger.local_logger.get_value(key, step=-1)
        if self._best_ema is None or ema > self._best_ema:
            self._best_ema = ema
            self.print_to_log_file(f"Yayy! New best EMA pseudo Dice ({what}): {np.round(ema, decimals=4)}")
            self.save_checkpoint(join(self.output_folder, "checkpoint_best.pth"))
        if self.local_rank == 0:
            self.logger.plot_progress_png(self.output_folder)
        self.current_epoch += 1

    def perform_actual_validation(self, save_probabilities: bool = False) -> None:
        # nnU-Net's final validation builds the predictor by the name its module imported; bound
        # to our subclass for this call, each validation case is predicted with the modalities
        # of the whole case, not those of each tile
        with _predictor_class(HolderPredictor):
            super().perform_actual_validation(save_probabilities)
