"""Bootstrap pre-training task (a Task for maskspec.train.trainer; the model: maskspec.models.bootstrap).

* ``train_step``: the BootstrapModel loss (patch + weighted utterance loss); masks from torch's global RNG,
  which checkpoints save and restore. The step's patch and utterance losses are logged beside the loss.
* ``after_step``: the EMA teacher update after each optimiser step (its decay is logged as ``ema_decay``).
* ``train_flops``: the teacher's forward pass once per clip plus the K views (maskspec.models.flops).
* ``validate``: on fixed masks (one view per clip, the same every epoch) the patch loss against the teacher's
  current targets, next to the loss of predicting each clip's mean target (its utterance target) for every
  masked patch: ``loss_ratio`` = loss / mean_pred_loss, 1 = no better than knowing the clip's average, 0 =
  perfect; the utterance loss; the cosine similarity of prediction and target on masked patches; and
  ``teacher_ranks_differ`` (1 if the teacher's weights differ between processes: they must not). The targets
  move with the teacher, so the ratio, not the raw loss, compares epochs. ``loss`` (patch + weighted
  utterance loss) chooses best.pt.
* ``on_epoch_end``: ``exp_dir/images/epoch_XXX.png`` (and TensorBoard): for a few fixed validation clips the
  input, the masked input, the teacher's target and the student's prediction as maps over the patch grid (each
  patch's vector projected on the first principal direction of that clip's targets, the visible patches of the
  prediction map showing the target), and the per-patch cosine similarity of prediction and target.
"""
from __future__ import annotations

from typing import Optional

import torch
import torch.nn.functional as F

from maskspec.tasks.pretrain import VALID_MASK_SEED, PretrainTask
from maskspec.train import distributed as D
from maskspec.utils.plots import pyplot


class BootstrapTask(PretrainTask):
    """PretrainTask's constructor (``image_dataset``, ``num_images``) and FLOPs count (pretrain_flops_per_clip
    follows the config's objective); its own step, teacher update, validation and pictures."""

    def train_step(self, model, batch: dict):
        out = model(batch["feats"])
        return out["loss"], dict(patch_loss=float(out["patch_loss"].detach()),
                                 utterance_loss=float(out["utterance_loss"].detach()))

    def after_step(self, model, step: int) -> None:
        D.unwrap(model).update_teacher(step)

    def validate(self, model, loader) -> dict:
        core = D.unwrap(model)
        device = next(core.parameters()).device
        # per clip sums: loss, patch loss, mean-target baseline, utterance loss, cosine; then clips
        totals = torch.zeros(6, dtype=torch.float64, device=device)
        gen = torch.Generator(device="cpu")
        for i, batch in enumerate(loader):
            x = batch["feats"]
            gen.manual_seed(VALID_MASK_SEED + i)
            out = core(x, generator=gen, num_masks=1)
            baseline = core.forward_loss(out["target"], out["utterance_target"].unsqueeze(1).expand_as(out["target"]),
                                         out["mask"])
            cos = masked_cosine(out["pred"], out["target"], out["mask"])
            b = x.shape[0]
            vals = [out["loss"], out["patch_loss"], baseline, out["utterance_loss"], cos]
            totals += torch.stack([v.detach().double() * b for v in vals]
                                  + [torch.tensor(float(b), dtype=torch.float64, device=device)])
        D.all_reduce_sum(totals)
        *sums, n = totals.tolist()
        differ = teacher_ranks_differ(core)
        if n == 0:
            return {}
        loss, patch, base, utt, cos = (s / n for s in sums)
        return dict(loss=loss, patch_loss=patch, mean_pred_loss=base,
                    loss_ratio=patch / base if base > 0 else float("nan"), utterance_loss=utt, cosine=cos,
                    teacher_ranks_differ=differ)

    def on_epoch_end(self, model, epoch: int, exp_dir: str, tb_writer) -> Optional[str]:
        clips = self.image_clips(model)
        if clips is None:
            return None
        core, items, x, gen = clips
        out = core(x, generator=gen, num_masks=1)
        grid = core.encoder.grid(x.shape[1])
        cfg = core.cfg
        masked = masked_input(x, out["mask"], grid, getattr(cfg, "patch_shape", (cfg.patch_size, cfg.patch_size)))
        target_map, pred_map, cos_map = target_maps(out["target"], out["pred"], out["mask"], grid)
        fig = plot_targets(x[:, : masked.shape[1], : masked.shape[2]].float().cpu(), masked, target_map, pred_map,
                           cos_map, [it["utt"] for it in items], epoch)
        return self.save_figure(fig, exp_dir, epoch, tb_writer, "targets")



def teacher_ranks_differ(model) -> float:
    """1.0 when the EMA teacher's weights differ between processes (a float64 checksum gathered from every rank
    and compared exactly), else 0.0; collective. DDP keeps them equal: this is the check."""
    with torch.no_grad():
        total = torch.zeros(2, dtype=torch.float64)
        for p in model.teacher.parameters():
            q = p.detach().double().cpu()
            total += torch.stack([q.sum(), (q * q).sum()])
    sums = D.all_gather_object(total.tolist())
    return float(any(s != sums[0] for s in sums))


def masked_input(x: torch.Tensor, mask: torch.Tensor, grid: tuple[int, int], patch: tuple[int, int]) -> torch.Tensor:
    """[B, T', F'] float32 CPU: ``x`` cropped to whole patches of ``patch`` = (mel bins, frames), masked patches
    zeroed (mask [B, L], 1 = masked)."""
    f_p, t_p = grid
    pf, pt = patch
    keep = (1.0 - mask.float()).reshape(-1, f_p, t_p)
    keep = keep.repeat_interleave(pf, dim=1).repeat_interleave(pt, dim=2).transpose(1, 2)  # [B, T', F']
    return (x[:, : t_p * pt, : f_p * pf].float() * keep).cpu()


def masked_cosine(pred: torch.Tensor, target: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """Mean cosine similarity of pred [K*B, L, D] and target [B, L, D] over the masked patches (mask [K*B, L])."""
    cos = F.cosine_similarity(pred.float().reshape(-1, *target.shape), target.float(), dim=-1).reshape(mask.shape)
    mask = mask.float()
    return (cos * mask).sum() / mask.sum()


@torch.no_grad()
def target_maps(target: torch.Tensor, pred: torch.Tensor, mask: torch.Tensor, grid: tuple[int, int]):
    """Maps [B, F_p, T_p] (CPU, float32): target and prediction projected on the first principal direction of each
    clip's targets (prediction: masked patches predicted, visible ones = target), and the cosine similarity of
    prediction and target per patch (NaN on visible patches). One view per clip (pred [B, L, D])."""
    t, pr, m = target.float().cpu(), pred.float().cpu(), mask.float().cpu()
    b = t.shape[0]
    centred = t - t.mean(dim=1, keepdim=True)
    _, _, v = torch.linalg.svd(centred, full_matrices=False)  # v [B, D', D]: rows = principal directions
    direction = v[:, 0]  # [B, D]
    t_proj = torch.einsum("bld,bd->bl", t, direction)
    p_proj = torch.einsum("bld,bd->bl", pr, direction)
    p_proj = torch.where(m.bool(), p_proj, t_proj)
    cos = F.cosine_similarity(pr, t, dim=-1)
    cos = torch.where(m.bool(), cos, torch.full_like(cos, float("nan")))
    return (t_proj.reshape(b, *grid), p_proj.reshape(b, *grid), cos.reshape(b, *grid))


def plot_targets(x, masked, target_map, pred_map, cos_map, utts: list[str], epoch: int):
    """One column per clip; rows input, masked input, target, prediction, cosine(prediction, target)."""
    plt = pyplot()
    n = x.shape[0]
    rows = ("input", "masked input", "teacher target (PC1)", "prediction (PC1)", "cosine, masked")
    fig, axes = plt.subplots(len(rows), n, figsize=(3.2 * n, 2.0 * len(rows)), squeeze=False)
    for j in range(n):
        vmin, vmax = float(x[j].min()), float(x[j].max())
        tmin, tmax = float(target_map[j].min()), float(target_map[j].max())
        images = [(x[j].T, vmin, vmax, "magma"), (masked[j].T, vmin, vmax, "magma"),
                  (target_map[j], tmin, tmax, "viridis"), (pred_map[j], tmin, tmax, "viridis"),
                  (cos_map[j], -1.0, 1.0, "coolwarm")]
        for r, (img, lo, hi, cmap) in enumerate(images):
            ax = axes[r][j]
            ax.imshow(img.numpy(), origin="lower", aspect="auto", interpolation="nearest", vmin=lo, vmax=hi,
                      cmap=cmap)
            ax.set_xticks([])
            ax.set_yticks([])
            if j == 0:
                ax.set_ylabel(rows[r], fontsize=8)
            if r == 0:
                ax.set_title(utts[j], fontsize=8)
    fig.suptitle(f"epoch {epoch}: teacher targets and student predictions over the patch grid")
    fig.tight_layout()
    return fig
