"""Self-supervised pre-training task: masked spectrogram prediction (a Task for maskspec.train.trainer).

* ``train_step``: the MaskSpecModel loss; masks come from torch's global RNG, which checkpoints save and
  restore, so a resumed run draws the same masks.
* ``validate``: mean reconstruction loss over the validation set with masks from a fixed generator (the same
  masks every epoch, so epochs are comparable; one view per clip whatever ``num_masks``), next to the loss of
  predicting zeros for every masked patch (with norm_pix targets that is each patch's own mean; without, the
  global mean of the normalised features).
  ``loss_ratio`` = loss / mean_pred_loss: 1 means nothing learnt.
* ``on_epoch_end``: a PNG of a few fixed validation clips (input, masked input, reconstruction) in
  ``exp_dir/images/epoch_XXX.png`` and in TensorBoard.
"""
from __future__ import annotations

import os
from typing import Optional

import torch

from maskspec.models.flops import pretrain_flops_per_clip
from maskspec.utils.plots import pyplot, save_png
from maskspec.train import distributed as D

VALID_MASK_SEED = 20240425


class PretrainTask:
    """Args:
        image_dataset: dataset whose first ``num_images`` items (or fewer) are plotted every epoch.
        num_images: clips per PNG.

    The mask ratio is the model config's (``MaskSpecModel.forward``'s default).
    """

    def __init__(self, image_dataset=None, num_images: int = 4):
        self.image_dataset = image_dataset
        self.num_images = num_images

    def train_step(self, model, batch: dict):
        loss, _, _ = model(batch["feats"])
        return loss, {}

    def train_flops(self, model, batch: dict) -> float:
        """Analytic FLOPs of train_step on this batch (the config's num_masks views of each clip)."""
        x = batch["feats"]
        return x.shape[0] * pretrain_flops_per_clip(D.unwrap(model).cfg, x.shape[1])

    def validate(self, model, loader) -> dict:
        """Reconstruction loss and the mean-prediction baseline, averaged over clips of all ranks."""
        core = D.unwrap(model)
        device = next(core.parameters()).device
        # sum of loss x clips, sum of baseline x clips, clips: float64 so large validation sets add up exactly
        totals = torch.zeros(3, dtype=torch.float64, device=device)
        gen = torch.Generator(device="cpu")
        for i, batch in enumerate(loader):
            x = batch["feats"]
            gen.manual_seed(VALID_MASK_SEED + i)  # masks depend on the batch position only
            loss, pred, mask = core(x, generator=gen, num_masks=1)
            baseline = core.forward_loss(x, torch.zeros_like(pred), mask)
            b = x.shape[0]
            totals += torch.stack([loss.double() * b, baseline.double() * b,
                                   torch.tensor(float(b), dtype=torch.float64, device=device)])
        D.all_reduce_sum(totals)
        loss_sum, base_sum, n = totals.tolist()
        if n == 0:
            return {}
        loss, base = loss_sum / n, base_sum / n
        return dict(loss=loss, mean_pred_loss=base, loss_ratio=loss / base if base > 0 else float("nan"))

    def image_clips(self, model):
        """The fixed clips of the per-epoch picture: (the model without DDP, their items, their feats [N, T, F] on
        the model's device, a generator seeded as validation's masks), or None without an image dataset."""
        if self.image_dataset is None or self.num_images <= 0:
            return None
        core = D.unwrap(model)
        device = next(core.parameters()).device
        items = [self.image_dataset[i] for i in range(min(self.num_images, len(self.image_dataset)))]
        x = torch.stack([it["feats"] for it in items]).to(device)
        gen = torch.Generator(device="cpu")
        gen.manual_seed(VALID_MASK_SEED)
        return core, items, x, gen

    @staticmethod
    def save_figure(fig, exp_dir: str, epoch: int, tb_writer, tag: str) -> str:
        """images/epoch_XXX.png and TensorBoard's ``tag``; closes the figure; returns the PNG path."""
        path = os.path.join(exp_dir, "images", f"epoch_{epoch:03d}.png")
        save_png(fig, path, dpi=80, close=False)
        tb_writer.add_figure(tag, fig, epoch)
        pyplot().close(fig)
        return path

    def on_epoch_end(self, model, epoch: int, exp_dir: str, tb_writer) -> Optional[str]:
        """Plot the fixed clips; returns the PNG path (None without an image dataset)."""
        clips = self.image_clips(model)
        if clips is None:
            return None
        core, items, x, gen = clips
        _, pred, mask = core(x, generator=gen, num_masks=1)
        masked, recon = core.reconstruct(x, pred, mask)
        t = masked.shape[1]
        rows = [x[:, :t, : masked.shape[2]].float().cpu(), masked.cpu(), recon.cpu()]
        fig = plot_reconstructions(rows, [it["utt"] for it in items], epoch)
        return self.save_figure(fig, exp_dir, epoch, tb_writer, "reconstruction")



def plot_reconstructions(rows: list[torch.Tensor], utts: list[str], epoch: int):
    """A figure with one column per clip and rows input / masked input / reconstruction; each tensor [N, T, F]."""
    plt = pyplot()
    titles = ("input", "masked input", "reconstruction")
    n = rows[0].shape[0]
    fig, axes = plt.subplots(len(rows), n, figsize=(3.2 * n, 2.2 * len(rows)), squeeze=False)
    # one colour scale per clip (from the input) so the reconstruction is read against the same scale
    for j in range(n):
        vmin, vmax = float(rows[0][j].min()), float(rows[0][j].max())
        for r, (title, row) in enumerate(zip(titles, rows)):
            ax = axes[r][j]
            ax.imshow(row[j].T.numpy(), origin="lower", aspect="auto", interpolation="nearest", vmin=vmin,
                      vmax=vmax, cmap="magma")
            ax.set_xticks([])
            ax.set_yticks([])
            if j == 0:
                ax.set_ylabel(title)
            if r == 0:
                ax.set_title(utts[j], fontsize=8)
    fig.suptitle(f"epoch {epoch}")
    fig.tight_layout()
    return fig
