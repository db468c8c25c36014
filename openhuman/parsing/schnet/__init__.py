"""SCHNet: SAM image encoder with CLIP semantics injected at every stage.

Public API (modules are imported explicitly; this package imports no torch):
- `config`: `SchnetConfig` (model / inference), `TrainConfig` (+ `DataConfig`, `AugmentConfig`).
- `model`: `build_schnet(cfg) -> SchnetModel` (eval mode), `SchnetModel.set_vocabulary(names)`.
- `checkpoint`: `save_checkpoint(path, model, cfg, ...)`, `load_schnet(path, cfg=None) -> SchnetModel`.
- `inference`: `predict_probs(model, rgb) -> float [K + 1, H, W]`.
- `train`: `train(TrainConfig) -> dict` (what `openhuman train CONFIG.yaml` runs).
- `data`: LIP / CIHP / PASCAL-Person-Part / synthetic-capture readers, flip-aware augmentation.
- `backend`: `SchnetParser` (`--backend schnet`).
"""
