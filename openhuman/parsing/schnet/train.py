"""SCHNet training: AdamW + warm-up/poly LR, boundary-weighted cross-entropy, periodic validation
mIoU, resumable atomic checkpoints (`out_dir/last.pt`, `out_dir/best.pt`).

On CUDA it uses mixed precision (float16 autocast + GradScaler) and a multi-worker DataLoader;
on CPU it runs in the main process with `cfg.threads` torch threads, in float32 or, with
`cpu_bf16` on a CPU that has it, bfloat16 autocast.
"""

from __future__ import annotations

import logging
import math
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import cv2
import numpy as np
import torch
import torch.nn.functional as F

from openhuman.config import save_config
from openhuman.errors import CheckpointError, InputError
from openhuman.metrics import IGNORE, confusion_matrix, iou_per_class, mean_iou
from openhuman.parsing.backbones import compute_autocast, torch_device
from openhuman.parsing.schnet.checkpoint import load_weights, read_checkpoint, save_checkpoint
from openhuman.parsing.schnet.config import TrainConfig
from openhuman.parsing.schnet.data import ParsingDataset, open_pairs
from openhuman.parsing.schnet.inference import predict_probs
from openhuman.parsing.schnet.model import SchnetModel, build_schnet

log = logging.getLogger(__name__)


def boundary_weights(labels: torch.Tensor, radius: int, weight: float) -> torch.Tensor:
    """labels int64 [B, H, W] -> float [B, H, W]: 1 + weight within `radius` px of a label edge."""
    lab = labels.float()
    edge = torch.zeros_like(lab, dtype=torch.bool)
    dy = lab[:, 1:, :] != lab[:, :-1, :]
    dx = lab[:, :, 1:] != lab[:, :, :-1]
    edge[:, 1:, :] |= dy
    edge[:, :-1, :] |= dy
    edge[:, :, 1:] |= dx
    edge[:, :, :-1] |= dx
    if radius > 0:
        band = F.max_pool2d(edge.float()[:, None], 2 * radius + 1, stride=1, padding=radius)[:, 0] > 0
    else:
        band = edge
    return 1.0 + weight * band.float()


def parsing_loss(logits: torch.Tensor, labels: torch.Tensor, boundary_weight: float, radius: int) -> torch.Tensor:
    """Cross-entropy over [B, K+1, H, W] logits vs int64 [B, H, W] labels (IGNORE skipped), boundary-weighted."""
    ce = F.cross_entropy(logits.float(), labels, ignore_index=IGNORE, reduction="none")
    valid = (labels != IGNORE).float()
    w = boundary_weights(labels, radius, boundary_weight) * valid if boundary_weight > 0 else valid
    return (ce * w).sum() / w.sum().clamp(min=1.0)


def facing_targets(
    labels: torch.Tensor, class_side: torch.Tensor, min_pixels: int = 16, min_shift: float = 0.02
) -> torch.Tensor:
    """float [B]: 1 where the person faces the camera (their left parts' mean x lies right of
    their right parts'), 0 where they face away, NaN where it cannot be told: fewer than
    `min_pixels` of either side, or the two means closer than `min_shift` of the width (profile).

    labels int64 [B, H, W]; class_side [K]: +1 left classes, -1 right classes, 0 others.
    Assumes one person per image (or person-centred crop)."""
    lut = torch.zeros(256, device=labels.device)
    lut[1 : 1 + len(class_side)] = class_side.to(lut.device)
    side = lut[labels.clamp(0, 255)]
    xs = torch.arange(labels.shape[-1], device=labels.device, dtype=torch.float32)
    left, right = (side > 0).float(), (side < 0).float()
    n_left, n_right = left.sum((1, 2)), right.sum((1, 2))
    x_left = (left * xs).sum((1, 2)) / n_left.clamp(min=1)
    x_right = (right * xs).sum((1, 2)) / n_right.clamp(min=1)
    known = (
        (n_left >= min_pixels) & (n_right >= min_pixels) & ((x_left - x_right).abs() >= min_shift * labels.shape[-1])
    )
    return torch.where(known, (x_left > x_right).float(), torch.full_like(x_left, float("nan")))


def facing_loss(facing: torch.Tensor, labels: torch.Tensor, class_side: torch.Tensor) -> torch.Tensor:
    """Binary cross-entropy of the facing logits [B] over the images where the facing is known (0 if none)."""
    target = facing_targets(labels, class_side)
    known = ~torch.isnan(target)
    if not known.any():
        return facing.new_zeros(())
    return F.binary_cross_entropy_with_logits(facing[known].float(), target[known])


def poly_lr_factor(step: int, total: int, warmup: int, power: float) -> float:
    """LR multiplier: linear warm-up over `warmup` steps, then (1 - step/total) ** power."""
    if warmup > 0 and step < warmup:
        return (step + 1) / warmup
    return max(0.0, 1.0 - step / max(1, total)) ** power


def make_optimizer(model: SchnetModel, cfg: TrainConfig) -> torch.optim.AdamW:
    """AdamW with groups: added modules at lr, backbones (if trainable) at lr * backbone_lr_scale;
    no weight decay on 0/1-D tensors (norms, biases, tokens' scales)."""
    groups: dict[tuple[bool, bool], list[torch.nn.Parameter]] = {}
    for name, p in model.named_parameters():
        if not p.requires_grad:
            continue
        is_backbone = name.startswith(("sam.", "clip."))
        groups.setdefault((is_backbone, p.ndim >= 2), []).append(p)
    params = [
        {
            "params": ps,
            "lr": cfg.lr * (cfg.backbone_lr_scale if bb else 1.0),
            "weight_decay": cfg.weight_decay if decay else 0.0,
        }
        for (bb, decay), ps in sorted(groups.items())
    ]
    for g in params:
        g["initial_lr"] = g["lr"]
    return torch.optim.AdamW(params, betas=(0.9, 0.999), fused=True)


def _batches(loader: torch.utils.data.DataLoader) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
    while True:
        yield from loader


@torch.no_grad()
def evaluate(
    model: SchnetModel, dataset: ParsingDataset, device: torch.device, max_images: int | None = None
) -> dict[str, Any]:
    """mIoU (background excluded, openhuman.metrics) over up to `max_images` evenly spaced items,
    each parsed as inference does (`predict_probs`, person crop included) at its own resolution."""
    n = len(dataset)
    idx = np.unique(np.linspace(0, n - 1, min(n, max_images or n)).round().astype(int))
    k = len(model.vocabulary) + 1
    conf = np.zeros((k, k), dtype=np.int64)
    was_training = model.training
    model.eval()
    for i in idx:
        rgb, labels = dataset.pairs[int(i)]
        pred = predict_probs(model, rgb, device).argmax(0).numpy()
        conf += confusion_matrix(pred, labels, k)
    model.train(was_training)
    ious = iou_per_class(conf)
    return {"miou": mean_iou(conf), "iou": [None if math.isnan(v) else float(v) for v in ious], "images": len(idx)}


def _datasets(cfg: TrainConfig) -> tuple[ParsingDataset, ParsingDataset | None]:
    d = cfg.data
    train_pairs = open_pairs(d.format, d.root, d.train_split, d.frame_stride)
    if len(train_pairs.classes) != len(cfg.model.vocabulary):
        raise InputError(
            f"model.vocabulary has {len(cfg.model.vocabulary)} names but the {d.format} data has "
            f"{len(train_pairs.classes)} classes ({', '.join(train_pairs.classes)}); list them in id order"
        )
    if d.max_samples is not None and len(train_pairs) > d.max_samples:
        keep = np.linspace(0, len(train_pairs) - 1, d.max_samples).round().astype(int)
        train_pairs.images = [train_pairs.images[i] for i in keep]  # type: ignore[assignment]
        train_pairs.labels = [train_pairs.labels[i] for i in keep]  # type: ignore[assignment]
    train_ds = ParsingDataset(
        train_pairs, cfg.model.image_size, cfg.augment, train=True, seed=cfg.seed, person_crop=cfg.model.person_crop
    )
    val_ds = None
    if d.val_split:
        val_pairs = open_pairs(d.format, d.root, d.val_split, d.frame_stride)
        val_ds = ParsingDataset(val_pairs, cfg.model.image_size, cfg.augment, train=False)
    return train_ds, val_ds


def _resume(model: SchnetModel, opt: torch.optim.Optimizer, last: Path) -> tuple[int, float]:
    key = "train.out_dir/last.pt"
    try:
        data = read_checkpoint(last, key)
        load_weights(model, data, key, str(last))
    except CheckpointError as exc:  # the fix is not another file: it is this one out of the way
        raise CheckpointError(
            f"{exc}; to start over, delete {last} (or choose another out_dir, or set resume: false)"
        ) from None
    if "optimizer" in data:
        opt.load_state_dict(data["optimizer"])
    log.info("resumed from %s at step %d", last, data["step"])
    return int(data["step"]), float(data.get("best_miou", float("nan")))


def _init_from(model: SchnetModel, path: str) -> None:
    """Fine-tuning start: `path`'s weights; parameters it lacks keep their new initialisation."""
    key = "train.init_checkpoint"
    data = read_checkpoint(path, key)
    new = tuple(n for n, p in model.named_parameters() if p.requires_grad and n not in data["weights"])
    load_weights(model, data, key, path, allow_missing=new)
    log.info("initialised from %s (step %d)%s", path, data.get("step", 0),
             f"; new parameters: {', '.join(new)}" if new else "")  # fmt: skip


def _validate_and_save(
    model: SchnetModel,
    cfg: TrainConfig,
    opt: torch.optim.Optimizer,
    val_ds: ParsingDataset | None,
    device: torch.device,
    step: int,
    best: float,
) -> float:
    """Validate (if a split is set), write last.pt and, on improvement, best.pt; returns the best mIoU."""
    out = Path(cfg.out_dir)
    miou = float("nan")
    if val_ds is not None:
        miou = evaluate(model, val_ds, device, cfg.val_max_images)["miou"]
        log.info("step %d: validation mIoU %.4f (best %.4f)", step, miou, best)
    improved = not math.isnan(miou) and (math.isnan(best) or miou > best)
    best = miou if improved else best
    save_checkpoint(out / "last.pt", model, cfg.model, step, opt, best)
    if improved or val_ds is None:
        save_checkpoint(out / "best.pt", model, cfg.model, step, None, best)
    return best


def train(cfg: TrainConfig) -> dict[str, Any]:
    """Train SCHNet as configured; returns {"step", "best_miou", "last", "best", "final_loss"}."""
    torch.manual_seed(cfg.seed)
    np.random.seed(cfg.seed)
    torch.set_num_threads(max(1, cfg.threads))
    cv2.setNumThreads(max(1, cfg.threads))
    device = torch_device(cfg.device, "device", auto=True)
    train_ds, val_ds = _datasets(cfg)
    model = build_schnet(cfg.model).to(device).train()
    opt = make_optimizer(model, cfg)
    out = Path(cfg.out_dir)
    step, best = 0, float("nan")
    if cfg.resume and (out / "last.pt").is_file():
        step, best = _resume(model, opt, out / "last.pt")
    elif cfg.init_checkpoint:
        _init_from(model, cfg.init_checkpoint)
    out.mkdir(parents=True, exist_ok=True)  # once the checkpoints loaded: a bad one leaves nothing behind
    save_config(cfg, out / "train_config.yaml")
    cuda = device.type == "cuda"
    dataset: Any = train_ds  # a map-style dataset (len + getitem), not a torch Dataset subclass
    loader: torch.utils.data.DataLoader[Any] = torch.utils.data.DataLoader(
        dataset, batch_size=cfg.batch_size, shuffle=True, drop_last=len(train_ds) >= cfg.batch_size,
        num_workers=cfg.num_workers if cuda else 0, pin_memory=cuda, persistent_workers=cuda and cfg.num_workers > 0,
    )  # fmt: skip
    scaler = torch.amp.GradScaler("cuda", enabled=cuda and cfg.amp)
    autocast = compute_autocast(device, cfg.cpu_bf16, cuda_fp16=cfg.amp)
    log.info("training SCHNet-%s on %s: %d images, %d steps, %s", cfg.model.size, device, len(train_ds), cfg.steps,
             "backbones trainable" if model.text_trainable() else "backbones frozen")  # fmt: skip
    batches, t0, start, loss_avg = _batches(loader), time.perf_counter(), step, float("nan")
    facing_avg = float("nan")
    while step < cfg.steps:
        factor = poly_lr_factor(step, cfg.steps, cfg.warmup_steps, cfg.poly_power)
        for g in opt.param_groups:
            g["lr"] = g["initial_lr"] * factor
        images, labels = next(batches)
        images, labels = images.to(device, non_blocking=True), labels.to(device, non_blocking=True)
        with autocast:
            logits, facing = model.logits_and_facing(images)
        loss = parsing_loss(logits, labels, cfg.boundary_weight, cfg.boundary_radius)
        if facing is not None and cfg.facing_weight > 0:
            f_loss = facing_loss(facing, labels, model.class_side)
            loss = loss + cfg.facing_weight * f_loss
            facing_avg = f_loss.item() if math.isnan(facing_avg) else 0.9 * facing_avg + 0.1 * f_loss.item()
        opt.zero_grad(set_to_none=True)
        scaler.scale(loss).backward()
        scaler.step(opt)
        scaler.update()
        step += 1
        loss_avg = loss.item() if math.isnan(loss_avg) else 0.9 * loss_avg + 0.1 * loss.item()
        if step % 20 == 0 or step == 1:
            facing_note = "" if math.isnan(facing_avg) else f" (facing {facing_avg:.3f})"
            log.info("step %d/%d loss %.4f%s lr %.2e (%.2f s/step)", step, cfg.steps, loss_avg, facing_note,
                     opt.param_groups[0]["lr"], (time.perf_counter() - t0) / (step - start))  # fmt: skip
        if step % cfg.val_every == 0 or step == cfg.steps:
            best = _validate_and_save(model, cfg, opt, val_ds, device, step, best)
    return {
        "step": step,
        "best_miou": best,
        "last": str(out / "last.pt"),
        "best": str(out / "best.pt"),
        "final_loss": loss_avg,
    }
