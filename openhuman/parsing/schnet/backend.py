"""`SchnetParser`: the trained SCHNet model as a `Parser` backend (`--backend schnet`).

- The checkpoint (`parser.schnet.checkpoint`, written by `openhuman train`) defines the
  architecture (size, input size); `parser.schnet.vocabulary` sets the classes at inference (text
  embeddings computed once here), and `sam_checkpoint` / `clip_checkpoint` name the backbone files
  for checkpoints trained with frozen pretrained backbones.
- Output channels: vocabulary names equal (case-insensitively) to a body14 part name go to that
  body14 id. Classes outside body14 (e.g. "hat") are folded into background (id 0) in
  `PartParse.probs/labels`; their own per-class probabilities are available from
  `SchnetParser.predict(rgb)` and their names from `.vocabulary`.
- One person per image is assumed: `person_ids` is 0 on every parsed (non-background) pixel.
"""

from __future__ import annotations

import logging

import numpy as np
import torch

from openhuman.ontology import NUM_CLASSES, PART_ID
from openhuman.parsing.backbones import compute_autocast, torch_device
from openhuman.parsing.base import Parser
from openhuman.parsing.config import ParserConfig
from openhuman.parsing.schnet.checkpoint import load_schnet
from openhuman.parsing.schnet.inference import predict_probs
from openhuman.parsing.schnet.model import SchnetModel
from openhuman.types import Frame, PartParse

log = logging.getLogger(__name__)


def body14_channel_map(vocabulary: list[str]) -> np.ndarray:
    """int64 [K + 1]: model channel (0 = background, i = vocabulary[i - 1]) -> body14 id (0 if none)."""
    ids = [0] + [PART_ID.get(" ".join(name.lower().split()), 0) for name in vocabulary]
    return np.asarray(ids, dtype=np.int64)


class SchnetParser(Parser):
    """Per-frame SCHNet parsing into body14 (see the module docstring for the class mapping)."""

    num_classes = NUM_CLASSES

    def __init__(self, model: SchnetModel, device: str = "cpu", cpu_bf16: bool = False) -> None:
        self.device = torch.device(device)
        self.cpu_bf16 = cpu_bf16
        self.model = model.to(self.device).eval()
        self.vocabulary = list(model.vocabulary)
        self.channel_map = torch.from_numpy(body14_channel_map(self.vocabulary))
        unmapped = [n for n, i in zip(self.vocabulary, self.channel_map[1:].tolist(), strict=True) if i == 0]
        if unmapped:
            log.info("SCHNet classes outside body14 (folded into background): %s", ", ".join(unmapped))

    @classmethod
    def from_config(cls, cfg: ParserConfig) -> SchnetParser:
        """Load `cfg.schnet.checkpoint` onto `cfg.device` with `cfg.schnet.vocabulary`."""
        sc = cfg.schnet
        torch_device(cfg.device, "parser.device")
        model = load_schnet(sc.checkpoint, sc, key="parser.schnet.checkpoint")
        return cls(model, cfg.device, cfg.cpu_bf16)

    def predict(self, rgb: np.ndarray) -> torch.Tensor:
        """rgb uint8 [H, W, 3] -> float32 [K + 1, H, W] probabilities over [background] + vocabulary."""
        with compute_autocast(self.device, self.cpu_bf16, key="parser.cpu_bf16"):
            return predict_probs(self.model, rgb, self.device)

    def __call__(self, frame: Frame) -> PartParse:
        probs = self.predict(frame.rgb)  # [K + 1, H, W]
        body = torch.zeros((NUM_CLASSES, *probs.shape[1:]), dtype=torch.float32)
        body.index_add_(0, self.channel_map, probs)
        scores, labels = body.max(dim=0)
        labels_np = labels.numpy().astype(np.int16)
        person = np.where(labels_np > 0, 0, -1).astype(np.int16)
        return PartParse(
            view_id=frame.view_id,
            frame_index=frame.index,
            labels=labels_np,
            scores=scores.numpy().astype(np.float32),
            person_ids=person,
            probs=body.numpy().astype(np.float16),
        )


__all__ = ["SchnetParser", "body14_channel_map"]
