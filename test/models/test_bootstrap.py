"""The bootstrap objective's parts: EMA teacher, target builder, CNN decoder, the model, its FLOPs and config."""
import pytest
import torch
import torch.nn.functional as F
from torch.nn.attention import SDPBackend, sdpa_kernel
from torch.utils.flop_counter import FlopCounterMode

from maskspec.models.bootstrap import BootstrapModel, build_pretrain_model, student_weights, uses_cls_embedding
from maskspec.models.cnn_decoder import CNNDecoder
from maskspec.models.configs import model_config
from maskspec.models.encoder import MaskSpecEncoder
from maskspec.models.flops import bootstrap_flops_per_clip, pretrain_flops_per_clip
from maskspec.models.maskspec import MaskSpecModel
from maskspec.models.model_file import build_model
from maskspec.models.targets import block_outputs, layer_average_targets, teacher_targets
from maskspec.models.teacher import EMATeacher, ema_decay_at

MEL, FRAMES = 32, 64


def small(**kw):
    base = dict(patch_size=8, num_mel_bins=MEL, num_frames=FRAMES, embed_dim=32, depth=3, num_heads=2,
                decoder_embed_dim=16, decoder_depth=2, decoder_num_heads=2, decoder_groups=4, objective="bootstrap",
                mask_ratio=0.75, ema_decay=0.9, ema_end_decay=0.99, ema_anneal_steps=10)
    base.update(kw)
    return model_config("tiny", **base)


def test_ema_decay_is_annealed_linearly_then_held():
    assert ema_decay_at(0, 0.9, 0.99, 10) == pytest.approx(0.9)
    assert ema_decay_at(5, 0.9, 0.99, 10) == pytest.approx(0.945)
    assert ema_decay_at(10, 0.9, 0.99, 10) == ema_decay_at(1000, 0.9, 0.99, 10) == 0.99
    with pytest.raises(ValueError, match="anneal_steps"):
        ema_decay_at(1, 0.9, 0.99, 0)


def test_teacher_starts_equal_takes_no_gradients_stays_in_eval_and_moves_by_ema():
    torch.manual_seed(0)
    student = MaskSpecEncoder(small(drop_path=0.1))
    teacher = EMATeacher(student)
    assert all(torch.equal(a, b) for a, b in zip(teacher.encoder.parameters(), student.parameters()))
    assert not any(p.requires_grad for p in teacher.parameters())
    teacher.train()
    assert not teacher.encoder.training and not any(m.training for m in teacher.encoder.modules())
    before = {k: v.clone() for k, v in teacher.encoder.state_dict().items()}
    with torch.no_grad():
        for p in student.parameters():
            p.add_(1.0)
    teacher.update(student, 0.75)
    for name, s in student.state_dict().items():
        assert torch.allclose(teacher.encoder.state_dict()[name], 0.75 * before[name] + 0.25 * s, atol=1e-6), name
    with pytest.raises(ValueError, match="decay"):
        teacher.update(student, 1.5)


def test_block_outputs_are_the_last_k_blocks_and_targets_are_normalised():
    torch.manual_seed(0)
    enc = MaskSpecEncoder(small()).eval()
    x = torch.randn(2, FRAMES, MEL)
    outs = block_outputs(enc, x, 2)
    # the same tokens by hand: embedding, cls, blocks
    tokens = enc.embed_patches(x)
    tokens = torch.cat([enc.cls_token.expand(2, -1, -1), tokens], dim=1)
    manual = []
    for block in enc.blocks:
        tokens = block(tokens)
        manual.append(tokens)
    assert len(outs) == 2 and all(torch.allclose(a, b, atol=1e-6) for a, b in zip(outs, manual[-2:]))
    assert len(block_outputs(enc, x, 0)) == 3 and not enc.blocks[0]._forward_hooks  # hooks removed
    target = layer_average_targets(outs)
    # each layer: instance norm over the 32 patches; the average: layer norm over channels
    expected = sum(F.instance_norm(o[:, 1:].transpose(1, 2)).transpose(1, 2) for o in outs) / 2
    expected = F.layer_norm(expected, (32,))
    assert target.shape == (2, 32, 32) and torch.allclose(target, expected, atol=1e-5)
    assert torch.allclose(target.mean(-1), torch.zeros(2, 32), atol=1e-5)
    patch_t, utt_t = teacher_targets(enc, x, 2)
    assert torch.allclose(patch_t, target) and torch.allclose(utt_t, target.mean(dim=1))


def test_cnn_decoder_puts_each_token_on_its_grid_cell():
    torch.manual_seed(0)
    dec = CNNDecoder(embed_dim=8, dim=8, depth=0, kernel=3, groups=2, out_dim=8)
    with torch.no_grad():  # identity projections: the output is the scattered input
        for lin in (dec.embed, dec.pred):
            lin.weight.copy_(torch.eye(8))
            lin.bias.zero_()
    grid = (2, 3)
    ids_shuffle = torch.tensor([[4, 0, 5, 1, 2, 3]])
    ids_restore = torch.argsort(ids_shuffle, dim=1)
    visible = torch.randn(1, 3, 8)  # patches 4, 0, 5
    latent = torch.cat([torch.zeros(1, 1, 8), visible], dim=1)
    out = dec(latent, ids_restore, grid)
    assert out.shape == (1, 6, 8)
    assert torch.allclose(out[0, 4], visible[0, 0]) and torch.allclose(out[0, 0], visible[0, 1])
    assert torch.allclose(out[0, 5], visible[0, 2])
    for hidden in (1, 2, 3):
        assert torch.allclose(out[0, hidden], dec.mask_token[0, 0])
    with pytest.raises(ValueError, match="groups"):
        CNNDecoder(8, 6, 1, 3, 4, 8)


@pytest.mark.parametrize("decoder_type", ["transformer", "cnn"])
def test_bootstrap_model_loss_gradients_and_views(decoder_type):
    torch.manual_seed(0)
    cfg = small(decoder_type=decoder_type, num_masks=3, mask_type="inverse_block")
    model = BootstrapModel(cfg)
    x = torch.randn(2, FRAMES, MEL)
    out = model(x)
    assert out["pred"].shape == (6, 32, 32) and out["mask"].shape == (6, 32) and out["target"].shape == (2, 32, 32)
    assert out["loss"].item() == pytest.approx(out["patch_loss"].item() + out["utterance_loss"].item(), rel=1e-6)
    # the patch loss by hand: the 3 views share the targets of their clip
    per_patch = ((out["pred"].reshape(3, 2, 32, 32) - out["target"]) ** 2).mean(-1).reshape(6, 32)
    assert out["patch_loss"].item() == pytest.approx((per_patch * out["mask"]).sum().item() / out["mask"].sum().item(),
                                                     rel=1e-5)
    out["loss"].backward()
    assert all(p.grad is not None for p in model.parameters() if p.requires_grad)
    assert all(p.grad is None for p in model.teacher.parameters())
    names = dict(model.named_parameters())
    assert ("cnn_decoder.pred.weight" in names) == (decoder_type == "cnn")
    assert ("decoder_blocks.0.attn.qkv.weight" in names) == (decoder_type == "transformer")
    # the teacher moves towards the student after the step
    t0 = model.teacher.encoder.blocks[0].mlp.fc1.weight.clone()
    with torch.no_grad():
        for p in model.encoder.parameters():
            p.add_(0.1)
    assert model.update_teacher(5) == pytest.approx(0.945)
    assert not torch.equal(model.teacher.encoder.blocks[0].mlp.fc1.weight, t0)


def test_model_file_keeps_the_student_and_the_paper_objective_is_unchanged():
    torch.manual_seed(0)
    cfg = small(decoder_type="cnn")
    model = BootstrapModel(cfg)
    weights = student_weights(model.state_dict())
    assert weights and not any(k.startswith("teacher.") for k in weights)
    assert weights.keys() == model.student_state_dict().keys()
    student = build_model(dict(kind="pretrain", model_config=cfg.to_dict(), state_dict=weights, classes=None))
    assert isinstance(student, BootstrapModel) and student.teacher is None
    assert all(torch.equal(student.state_dict()[k], v) for k, v in weights.items())
    with pytest.raises(RuntimeError, match="teacher"):
        student(torch.randn(1, FRAMES, MEL))
    assert uses_cls_embedding(cfg) and not uses_cls_embedding(small(utterance_loss_weight=0.0))
    paper = model_config("tiny", patch_size=8, num_mel_bins=MEL, num_frames=FRAMES, depth=1)
    assert paper.objective == "maskspec" and not uses_cls_embedding(paper)
    assert type(build_pretrain_model(paper)) is MaskSpecModel


def _counted(fn) -> int:
    counter = FlopCounterMode(display=False)
    with counter, torch.no_grad(), sdpa_kernel(SDPBackend.MATH):
        fn()
    return counter.get_total_flops()


@pytest.mark.parametrize("decoder_type", ["transformer", "cnn"])
def test_flops_count_the_teacher_once_and_each_view(decoder_type):
    cfg = small(decoder_type=decoder_type, num_masks=4, mask_type="inverse_block")
    model = BootstrapModel(cfg)
    x = torch.randn(2, FRAMES, MEL)
    assert _counted(lambda: model(x)) == pytest.approx(2 * bootstrap_flops_per_clip(cfg, FRAMES, train=False),
                                                       rel=1e-9)
    teacher = _counted(lambda: model.targets(x)) / 2
    assert pretrain_flops_per_clip(cfg, FRAMES) == bootstrap_flops_per_clip(cfg, FRAMES)
    # training: the student's forward x 3, the teacher's forward once
    student_fwd = bootstrap_flops_per_clip(cfg, FRAMES, train=False) - teacher
    assert bootstrap_flops_per_clip(cfg, FRAMES) == pytest.approx(3 * student_fwd + teacher, rel=1e-9)
    # more views share one teacher pass
    one = bootstrap_flops_per_clip(cfg, FRAMES, num_masks=1)
    assert bootstrap_flops_per_clip(cfg, FRAMES, num_masks=4) < 4 * one


@pytest.mark.parametrize("bad, match", [
    (dict(objective="byol"), "objective must be one of"),
    (dict(decoder_type="cnn", objective="maskspec"), "option of objective 'bootstrap'"),
    (dict(decoder_type="cnn", decoder_groups=3), "divisible by decoder_groups"),
    (dict(decoder_kernel=4), "odd"),
    (dict(ema_decay=0.999, ema_end_decay=0.99), "ema_decay <= ema_end_decay"),
    (dict(target_top_k=4), "target_top_k"),
    (dict(utterance_loss_weight=-1.0), "utterance_loss_weight"),
    (dict(ema_anneal_steps=0), "ema_anneal_steps must be positive"),
])
def test_config_errors(bad, match):
    with pytest.raises(ValueError, match=match):
        small(**bad)
