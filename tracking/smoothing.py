"""Motion-aligned temporal smoothing of per-pixel part probabilities.

The previous smoothed probabilities are warped to the current frame (by the caller's flow maps),
then averaged with the current ones: exponential (`ema`) or over a short window (`window`).
Where the flow is unreliable or the pixel now belongs to another person track, the history is
dropped and the current probabilities are taken as they are, so fast motion and occlusions do
not smear labels.
"""

from __future__ import annotations

from collections import deque
from typing import Literal

import numpy as np

from tracking.propagate import remap_xy


def one_hot(labels: np.ndarray, num_classes: int) -> np.ndarray:
    """float32 [C, h, w] one-hot encoding of int labels [h, w] (values clipped to 0..C-1)."""
    idx = np.clip(np.asarray(labels), 0, num_classes - 1)
    return (idx[None] == np.arange(num_classes)[:, None, None]).astype(np.float32)


def argmax_max(probs: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(argmax int16 [h, w], max float32 [h, w]) over the channels of float32 [C, h, w]."""
    best = np.zeros(probs.shape[1:], dtype=np.int16)
    top = probs[0].copy()
    for c in range(1, probs.shape[0]):
        better = probs[c] > top
        best[better] = c
        np.maximum(top, probs[c], out=top)
    return best, top


def _blend(a: np.ndarray, alpha: float, b: np.ndarray) -> np.ndarray:
    """alpha * a + (1 - alpha) * b for float32 [C, h, w] (cv2, much faster than numpy here)."""
    import cv2

    C, h, w = a.shape
    out = cv2.addWeighted(a.reshape(C * h, w), alpha, b.reshape(C * h, w), 1.0 - alpha, 0.0)
    return np.asarray(out, dtype=np.float32).reshape(a.shape)


class ProbSmoother:
    """Streaming smoother of float32 [C, h, w] probability windows.

    Each step covers a window of the frame (its top-left `origin` in frame pixels) - typically the
    box around the people - so the cost follows the people's size, not the frame's.
    """

    def __init__(self, mode: Literal["none", "ema", "window"] = "ema", alpha: float = 0.4, window: int = 3):
        if mode not in ("none", "ema", "window"):
            raise ValueError(f"unknown smoothing {mode!r}; choose 'none', 'ema' or 'window'")
        if not 0.0 < alpha <= 1.0:
            raise ValueError(f"ema_alpha must be in (0, 1], got {alpha}")
        if window < 2:
            raise ValueError(f"smoothing window must be >= 2 frames, got {window}")
        self.mode = mode
        self.alpha = float(alpha)
        self.window = int(window)
        self._history: deque[tuple[np.ndarray, tuple[int, int]]] = deque(maxlen=self.window - 1)
        """(probabilities [C, h, w], origin (y0, x0)); ema: the smoothed window; window mode: the
        last window - 1 raw windows, each aligned to the last step."""

    def reset(self) -> None:
        self._history.clear()

    @property
    def extent(self) -> tuple[int, int, int, int] | None:
        """(y0, y1, x0, x1) frame window of the last step (None before the first step)."""
        if not self._history:
            return None
        arr, (y0, x0) = self._history[-1]
        return (y0, y0 + arr.shape[1], x0, x0 + arr.shape[2])

    def nbytes(self) -> int:
        return sum(h.nbytes for h, _ in self._history)

    def _aligned(self, shape: tuple[int, int], origin: tuple[int, int], maps: np.ndarray | None):
        """History warped onto the current window, and bool [h, w] where it is defined."""
        import cv2

        h, w = shape
        if maps is None:
            xs = np.arange(origin[1], origin[1] + w, dtype=np.float32)
            ys = np.arange(origin[0], origin[0] + h, dtype=np.float32)
            maps = np.dstack([np.broadcast_to(xs, (h, w)), np.broadcast_to(ys[:, None], (h, w))])
        out, defined = [], np.ones((h, w), dtype=bool)
        for arr, (hy, hx) in self._history:
            m: np.ndarray = maps - np.array([hx, hy], dtype=np.float32)
            # one multi-channel remap (channels last) is ~3x faster than one remap per channel
            hwc = remap_xy(cv2.merge(list(arr)), m, fill=0.0).reshape(h, w, -1)
            out.append(np.ascontiguousarray(hwc.transpose(2, 0, 1)))
            x, y = m[..., 0], m[..., 1]
            defined &= (x >= 0) & (x <= arr.shape[2] - 1) & (y >= 0) & (y <= arr.shape[1] - 1)
        return out, defined

    def step(
        self,
        probs: np.ndarray,
        origin: tuple[int, int] = (0, 0),
        maps: np.ndarray | None = None,
        keep: np.ndarray | None = None,
        frames: int = 1,
    ) -> np.ndarray:
        """Smoothed float32 [C, h, w] for this frame's window.

        probs: float32 [C, h, w] current probabilities of the window at `origin` (y0, x0).
        maps: float32 [h, w, 2]: for each window pixel, where (x, y) it was in frame pixel
        coordinates at the last `step` (None = no motion). keep: bool [h, w] where the history
        may be used (None = everywhere it is defined). frames: frames of time since the last
        `step` (keyframe mode smooths parsed frames only); with `ema` the history keeps the weight
        (1 - alpha) ** frames, so it fades at the same rate per frame whatever the gap.
        """
        if self.mode == "none":
            return probs
        if self._history and self._history[-1][0].shape[0] != probs.shape[0]:
            self.reset()
        warped, defined = self._aligned((probs.shape[1], probs.shape[2]), origin, maps)
        keep = defined if keep is None else keep & defined
        if not warped:
            out = probs
        elif self.mode == "ema":
            out = _blend(probs, 1.0 - (1.0 - self.alpha) ** frames, warped[-1])
        else:
            out = (probs + sum(warped)) / (len(warped) + 1)
            warped.append(probs)
        drop = ~keep
        if warped and drop.any():  # `out` is a new array here: put the current values back in place
            out[:, drop] = probs[:, drop]
        self._history.clear()
        if self.mode == "ema":
            self._history.append((out.astype(np.float32, copy=False), origin))
        else:
            kept = [np.where(keep[None], w, probs) for w in warped] if warped else [probs]
            self._history.extend((w.astype(np.float32, copy=False), origin) for w in kept)
        return out.astype(np.float32, copy=False)
