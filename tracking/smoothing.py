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

from tracking.propagate import warp_linear


def one_hot(labels: np.ndarray, num_classes: int) -> np.ndarray:
    """float32 [H, W, C] one-hot encoding of int labels [H, W] (values clipped to 0..C-1)."""
    idx = np.clip(np.asarray(labels).astype(np.int64), 0, num_classes - 1)
    return np.eye(num_classes, dtype=np.float32)[idx]


class ProbSmoother:
    """Streaming smoother of float32 [H, W, C] probabilities (channels last, as cv2 warps them)."""

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
        self._history: deque[np.ndarray] = deque(maxlen=self.window - 1)
        """ema: [smoothed]; window: the last window - 1 raw frames, each aligned to the last step."""

    def reset(self) -> None:
        self._history.clear()

    @property
    def state(self) -> np.ndarray | None:
        """float32 [H, W, C] latest smoothed probabilities (None before the first step)."""
        return self._history[-1] if self.mode == "ema" and self._history else None

    def nbytes(self) -> int:
        return sum(h.nbytes for h in self._history)

    def step(
        self,
        probs: np.ndarray,
        maps: tuple[np.ndarray, np.ndarray] | None,
        keep: np.ndarray | None,
    ) -> np.ndarray:
        """Smoothed float32 [H, W, C] for this frame.

        probs: float32 [H, W, C] current probabilities. maps: (map_x, map_y) float32 [H, W] from the
        current frame into the frame of the last `step` (None = no motion / not aligned).
        keep: bool [H, W] where the history may be used (None = everywhere).
        """
        if self.mode == "none":
            return probs
        if self._history and self._history[-1].shape != probs.shape:
            self.reset()
        warped = [warp_linear(h, *maps) for h in self._history] if maps is not None else list(self._history)
        if not warped:
            out = probs
        elif self.mode == "ema":
            out = self.alpha * probs + (1.0 - self.alpha) * warped[-1]
        else:
            out = (probs + sum(warped)) / (len(warped) + 1)
            warped.append(probs)
        if warped and keep is not None:
            out = np.where(keep[..., None], out, probs)
            if self.mode == "window":
                warped = [np.where(keep[..., None], w, probs) for w in warped]
        if self.mode == "ema":
            self._history.clear()
            self._history.append(out.astype(np.float32, copy=False))
        else:
            self._history.clear()
            self._history.extend(w.astype(np.float32, copy=False) for w in (warped or [probs]))
        return out.astype(np.float32, copy=False)
