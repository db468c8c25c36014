"""Whole-image SCHNet inference: letterbox to the model's square input, run, undo the letterbox."""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F

from openhuman.parsing.schnet.data import letterbox
from openhuman.parsing.schnet.model import SchnetModel


def predict_probs(model: SchnetModel, rgb: np.ndarray, device: str | torch.device = "cpu") -> torch.Tensor:
    """rgb uint8 [H, W, 3] -> class probabilities float32 [K + 1, H, W] on CPU (channel 0 = background).

    The image is resized so its long side is `model.image_size` and zero-padded to a square (as
    in training), the softmax is cropped to the image area and resized back to H x W.
    """
    if rgb.ndim != 3 or rgb.shape[2] != 3 or rgb.dtype != np.uint8:
        raise ValueError(f"expected an RGB uint8 image [H, W, 3], got {rgb.dtype} {rgb.shape}")
    h, w = rgb.shape[:2]
    size = model.image_size
    boxed, _, (nh, nw) = letterbox(rgb, None, size)
    x = torch.from_numpy(np.ascontiguousarray(boxed[:size, :size].transpose(2, 0, 1))).float().div_(255.0)
    use_amp = torch.device(device).type == "cuda"
    with torch.inference_mode(), torch.autocast("cuda", dtype=torch.float16, enabled=use_amp):
        logits = model(x[None].to(device)).float()
    probs = torch.softmax(logits[:, :, :nh, :nw], dim=1)
    probs = F.interpolate(probs, size=(h, w), mode="bilinear", align_corners=False)[0]
    return probs.cpu()
