"""torchvision compatibility shim for the CPU torch build on these machines.

PyPI's torchvision 0.28.0 expects a C++ `torchvision::nms` operator that the CPU torch 2.13.0
wheel does not provide, so `import torchvision` raises RuntimeError. open_clip, timm,
segment_anything and transformers all import torchvision. `ensure_torchvision()` defines the
operator with a plain-torch kernel and re-imports torchvision. On a build where torchvision
imports normally it does nothing. Call it before importing any of those libraries.
"""

from __future__ import annotations

import logging
import sys
import types

log = logging.getLogger(__name__)
_LIB = None  # keeps the torch.library.Library alive once defined


def _nms_kernel(boxes, scores, iou_threshold: float):  # type: ignore[no-untyped-def]
    """Greedy non-maximum suppression; boxes float [N, 4] (x1, y1, x2, y2). Returns int64 keep ids."""
    import torch

    order = scores.argsort(descending=True)
    boxes = boxes[order]
    x1, y1, x2, y2 = boxes.unbind(1)
    areas = (x2 - x1).clamp(min=0) * (y2 - y1).clamp(min=0)
    suppressed = torch.zeros(len(order), dtype=torch.bool)
    keep = []
    for i in range(len(order)):
        if suppressed[i]:
            continue
        keep.append(i)
        w = (torch.minimum(x2[i], x2) - torch.maximum(x1[i], x1)).clamp(min=0)
        h = (torch.minimum(y2[i], y2) - torch.maximum(y1[i], y1)).clamp(min=0)
        inter = w * h
        iou = inter / (areas[i] + areas - inter).clamp(min=1e-12)
        suppressed |= iou > iou_threshold
    return order[torch.tensor(keep, dtype=torch.long)]


def ensure_torchvision() -> None:
    """Make `import torchvision` work; a no-op where it already does."""
    global _LIB
    try:
        import torchvision  # noqa: F401

        return
    except RuntimeError as exc:
        if "torchvision::nms" not in str(exc):
            raise
    import torch

    for name in [m for m in sys.modules if m == "torchvision" or m.startswith("torchvision.")]:
        del sys.modules[name]
    # torchvision._meta_registrations only adds fake (shape) kernels for its C++ operators, none of
    # which exist in this build; skip it and define the one operator the libraries call (nms).
    sys.modules["torchvision._meta_registrations"] = types.ModuleType("torchvision._meta_registrations")
    if _LIB is None:
        _LIB = torch.library.Library("torchvision", "DEF")
        _LIB.define("nms(Tensor dets, Tensor scores, float iou_threshold) -> Tensor")
        _LIB.impl("nms", _nms_kernel, "CompositeExplicitAutograd")
    import torchvision  # noqa: F401,F811
    import torchvision.extension

    # The C++ extension did not load, so torchvision's ops refuse to run; nms now exists.
    torchvision.extension._has_ops = lambda: True  # type: ignore[attr-defined]
    log.debug("torchvision imported with the plain-torch nms shim")
