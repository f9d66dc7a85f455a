"""The bootstrap pre-training objective (data2vec 2.0 / EAT): predict an EMA teacher's features of the masked
patches instead of their pixels, on the same encoder, masking and (transformer) decoder as ``MaskSpecModel``.

One step on a batch of clips ``x [B, T, F]``:

1. the teacher (``maskspec.models.teacher``) encodes each whole clip once; ``maskspec.models.targets`` turns
   its top blocks into a target [D] per patch and an utterance target (their mean);
2. the student encoder encodes K masked views of each clip (``num_masks``, ``mask_type``, ``mask_ratio``: the
   same masking as the paper's objective), view k of clip b in row k * B + b;
3. the decoder (the transformer decoder of ``MaskSpecModel`` with a D-wide output, or
   ``maskspec.models.cnn_decoder``) predicts every patch's target; the patch loss is the MSE over the masked
   patches (mean over channels, then over masked patches of all views);
4. the utterance loss is the MSE between the student's cls token and the utterance target, averaged over views;
   loss = patch loss + ``utterance_loss_weight`` x utterance loss.

After each optimiser step ``update_teacher(step)`` moves the teacher towards the student (the task calls it
through the trainer's ``after_step`` hook). The model file keeps the student (``student_state_dict``): a
pre-training model file of this objective is built with ``teacher=False``.
"""
from __future__ import annotations

from typing import Mapping, Optional

import torch
from torch import nn

from maskspec.models.cnn_decoder import CNNDecoder
from maskspec.models.configs import ModelConfig, check_mask_ratio
from maskspec.models.maskspec import MaskSpecModel
from maskspec.models.targets import teacher_targets
from maskspec.models.teacher import EMATeacher, ema_decay_at

TEACHER_PREFIX = "teacher."
# MaskSpecModel's transformer decoder; removed when the CNN decoder replaces it
TRANSFORMER_DECODER = ("decoder_embed", "mask_token", "decoder_pos_embed", "decoder_blocks", "decoder_norm",
                       "decoder_pred")


class BootstrapModel(MaskSpecModel):
    """Bootstrap pre-training on [B, T, F] normalised log-mel input (see the module docstring).

    Args:
        cfg: a ModelConfig with ``objective == "bootstrap"``.
        teacher: build the EMA teacher (training); False for the student alone (model files, inference).
    """

    def __init__(self, cfg: ModelConfig, teacher: bool = True):
        if cfg.objective != "bootstrap":
            raise ValueError(f"BootstrapModel needs objective 'bootstrap', got {cfg.objective!r}")
        super().__init__(cfg)
        if cfg.decoder_type == "cnn":
            for name in TRANSFORMER_DECODER:
                delattr(self, name)
            self.cnn_decoder = CNNDecoder(cfg.embed_dim, cfg.decoder_embed_dim, cfg.decoder_depth,
                                          cfg.decoder_kernel, cfg.decoder_groups, cfg.embed_dim)
        else:  # the transformer decoder predicts a target vector instead of a patch's pixels
            self.decoder_pred = nn.Linear(cfg.decoder_embed_dim, cfg.embed_dim)
            nn.init.xavier_uniform_(self.decoder_pred.weight)
            nn.init.zeros_(self.decoder_pred.bias)
        self.teacher = EMATeacher(self.encoder) if teacher else None

    @property
    def top_k(self) -> int:
        return self.cfg.target_top_k

    def forward_decoder(self, latent: torch.Tensor, ids_restore: torch.Tensor, grid: tuple[int, int]) -> torch.Tensor:
        """latent [N, 1 + L_keep, D] -> predicted targets [N, L, D] in patch order."""
        if self.cfg.decoder_type == "cnn":
            return self.cnn_decoder(latent, ids_restore, grid)
        return super().forward_decoder(latent, ids_restore, grid)

    def targets(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """(patch targets [B, L, D], utterance targets [B, D]), float32, from the teacher on the whole clips."""
        if self.teacher is None:
            raise RuntimeError("BootstrapModel built without its teacher (teacher=False) cannot compute targets")
        return teacher_targets(self.teacher.encoder, x, self.top_k)

    def forward_loss(self, target: torch.Tensor, pred: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        """Mean over the masked patches of all views of the per-patch MSE (mean over channels); target [B, L, D]
        shared by the K views of pred [K*B, L, D], mask [K*B, L] (1 = masked). float32."""
        b, n, d = target.shape
        if pred.shape[0] % b or pred.shape[1:] != target.shape[1:] or mask.shape != pred.shape[:2]:
            raise ValueError(f"forward_loss: pred {tuple(pred.shape)} / mask {tuple(mask.shape)} do not match "
                             f"targets {tuple(target.shape)}")
        views = pred.float().reshape(-1, b, n, d)
        per_patch = ((views - target) ** 2).mean(dim=-1).reshape(-1, n)
        mask = mask.float()
        return (per_patch * mask).sum() / mask.sum()

    @staticmethod
    def utterance_loss(cls: torch.Tensor, utt_target: torch.Tensor) -> torch.Tensor:
        """MSE (mean over channels and views) of cls [K*B, D] against utt_target [B, D]."""
        b, d = utt_target.shape
        return ((cls.float().reshape(-1, b, d) - utt_target) ** 2).mean()

    def forward(self, x: torch.Tensor, mask_ratio: Optional[float] = None,
                generator: Optional[torch.Generator] = None, num_masks: Optional[int] = None) -> dict:
        """x [B, T, F] -> dict(loss, patch_loss, utterance_loss (scalars), pred [K*B, L, D], mask [K*B, L],
        target [B, L, D], utterance_target [B, D]); mask_ratio and num_masks default to the config's."""
        ratio = check_mask_ratio(self.cfg.mask_ratio if mask_ratio is None else mask_ratio,
                                 "BootstrapModel: mask_ratio", pretraining=True)
        k = self.cfg.num_masks if num_masks is None else num_masks
        target, utt_target = self.targets(x)
        latent, mask, ids_restore = self.forward_encoder(x, ratio, generator, k)
        pred = self.forward_decoder(latent, ids_restore, self.encoder.grid(x.shape[1]))
        patch_loss = self.forward_loss(target, pred, mask)
        utt_loss = self.utterance_loss(latent[:, 0], utt_target)
        loss = patch_loss + self.cfg.utterance_loss_weight * utt_loss if self.cfg.utterance_loss_weight else patch_loss
        return dict(loss=loss, patch_loss=patch_loss, utterance_loss=utt_loss, pred=pred, mask=mask, target=target,
                    utterance_target=utt_target)

    def reconstruct(self, *args, **kwargs):
        raise NotImplementedError("the bootstrap objective predicts teacher features, not spectrograms")

    def ema_decay(self, step: int) -> float:
        cfg = self.cfg
        return ema_decay_at(step, cfg.ema_decay, cfg.ema_end_decay, cfg.ema_anneal_steps)

    @torch.no_grad()
    def update_teacher(self, step: int) -> float:
        """Move the teacher towards the student after optimiser step ``step`` (1-based); returns the decay."""
        if self.teacher is None:
            raise RuntimeError("BootstrapModel built without its teacher (teacher=False) has none to update")
        decay = self.ema_decay(step)
        self.teacher.update(self.encoder, decay)
        return decay

    def student_state_dict(self) -> dict:
        """The state dict without the teacher: what a model file keeps."""
        return student_weights(self.state_dict())


def student_weights(state_dict: Mapping[str, torch.Tensor]) -> dict:
    """``state_dict`` without the teacher's entries."""
    return {k: v for k, v in state_dict.items() if not k.startswith(TEACHER_PREFIX)}


def build_pretrain_model(cfg: ModelConfig, teacher: bool = True) -> nn.Module:
    """The pre-training network of ``cfg.objective``: MaskSpecModel (the paper's) or BootstrapModel."""
    if cfg.objective == "bootstrap":
        return BootstrapModel(cfg, teacher=teacher)
    return MaskSpecModel(cfg)


def uses_cls_embedding(cfg: ModelConfig) -> bool:
    """Whether a pre-trained encoder's scene embedding is its cls token: the bootstrap objective's utterance loss
    trained it (weight > 0); otherwise the cls token is untrained and patch tokens are averaged."""
    return cfg.objective == "bootstrap" and cfg.utterance_loss_weight > 0
