"""Whole-image SCHNet inference: letterbox to the model's square input, run, undo the letterbox.

With `SchnetConfig.person_crop` set (a margin fraction), inference takes two passes, the usual
person-centric scheme of human parsing: the whole image finds the people (every non-background
pixel), then their box, grown by the margin on every side, is cut out and parsed again at the
model's full input size. The second pass replaces the first inside the box, so a person who
fills half the frame's height is parsed at about 1.7 times the linear resolution of the
whole-image pass, and a smaller one at more. The union box of all people is used, so several
people far apart gain less.
"""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F

from openhuman.parsing.schnet.data import letterbox, lr_swap_table, person_box
from openhuman.parsing.schnet.model import SchnetModel


def _whole_image(model: SchnetModel, rgb: np.ndarray, device: str | torch.device) -> torch.Tensor:
    """One letterboxed pass: probabilities float32 [K + 1, H, W] on CPU at the image's size."""
    h, w = rgb.shape[:2]
    size = model.image_size
    boxed, _, (nh, nw) = letterbox(rgb, None, size)
    x = torch.from_numpy(np.ascontiguousarray(boxed[:size, :size].transpose(2, 0, 1))).float().div_(255.0)
    use_amp = torch.device(device).type == "cuda"
    with torch.inference_mode(), torch.autocast("cuda", dtype=torch.float16, enabled=use_amp):
        logits = model(x[None].to(device)).float()
    probs = torch.softmax(logits[:, :, :nh, :nw], dim=1)
    return F.interpolate(probs, size=(h, w), mode="bilinear", align_corners=False)[0].cpu()


def predict_probs(model: SchnetModel, rgb: np.ndarray, device: str | torch.device = "cpu") -> torch.Tensor:
    """rgb uint8 [H, W, 3] -> class probabilities float32 [K + 1, H, W] on CPU (channel 0 = background).

    The image is resized so its long side is `model.image_size` and zero-padded to a square (as
    in training), the softmax is cropped to the image area and resized back to H x W. Models
    trained with `person_crop` get the second, person-centred pass described in the module doc;
    with `model.flip_test` the result is averaged with the mirrored image's (left/right swapped).
    """
    if rgb.ndim != 3 or rgb.shape[2] != 3 or rgb.dtype != np.uint8:
        raise ValueError(f"expected an RGB uint8 image [H, W, 3], got {rgb.dtype} {rgb.shape}")
    probs = _parse(model, rgb, device)
    if model.flip_test:
        swap = torch.from_numpy(lr_swap_table(model.vocabulary)[: probs.shape[0]].astype(np.int64))
        mirrored = _parse(model, np.ascontiguousarray(rgb[:, ::-1]), device).flip(-1)
        probs = (probs + mirrored[swap]) / 2  # class c here is class swap[c] in the mirror
    return probs


def _parse(model: SchnetModel, rgb: np.ndarray, device: str | torch.device) -> torch.Tensor:
    probs = _whole_image(model, rgb, device)
    if model.person_crop is None:
        return probs
    box = person_box(probs.argmax(0).numpy() > 0, model.person_crop)
    if box is None:
        return probs
    y0, y1, x0, x1 = box
    probs[:, y0:y1, x0:x1] = _whole_image(model, np.ascontiguousarray(rgb[y0:y1, x0:x1]), device)
    return probs
