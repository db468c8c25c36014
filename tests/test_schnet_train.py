"""SCHNet training loop: loss terms, LR schedule, end-to-end run with validation and resume."""

from __future__ import annotations

import cv2
import numpy as np
import pytest
import torch

from openhuman.errors import CheckpointError, InputError
from openhuman.ontology import taxonomy
from openhuman.parsing import backbones
from openhuman.parsing.schnet.checkpoint import load_schnet, read_checkpoint
from openhuman.parsing.schnet.config import DataConfig, SchnetConfig, TrainConfig
from openhuman.parsing.schnet.train import boundary_weights, facing_targets, parsing_loss, poly_lr_factor, train


def test_boundary_weights_mark_a_band_around_edges():
    labels = torch.zeros(1, 10, 10, dtype=torch.long)
    labels[:, :, 5:] = 3
    w = boundary_weights(labels, radius=1, weight=2.0)
    assert torch.all(w[0, :, 3:7] == 3.0)
    assert torch.all(w[0, :, :3] == 1.0) and torch.all(w[0, :, 7:] == 1.0)


def test_parsing_loss_ignores_255_and_is_zero_when_right():
    labels = torch.tensor([[[0, 1], [255, 1]]])
    logits = torch.full((1, 2, 2, 2), -20.0)
    logits[0, 0, 0, 0] = logits[0, 1, 0, 1] = logits[0, 1, 1, 1] = 20.0
    logits[0, 0, 1, 0] = 20.0  # wrong at the ignored pixel: must not count
    assert parsing_loss(logits, labels, 1.0, 1).item() < 1e-6
    labels[0, 0, 0] = 1
    assert parsing_loss(logits, labels, 1.0, 1).item() > 1.0


def test_facing_targets_read_the_facing_off_the_labels():
    from openhuman.ontology import BODY14, PART_ID
    from openhuman.parsing.schnet.data import hflip_pair, lr_swap_table, side_of

    class_side = torch.tensor([float(side_of(n)[0]) for n in BODY14[1:]])
    facing = np.zeros((40, 50), dtype=np.uint8)
    facing[10:30, 20:30] = PART_ID["torso"]
    facing[10:30, 35:40] = PART_ID["left upper arm"]  # the person's left on the image's right
    facing[10:30, 10:15] = PART_ID["right upper arm"]
    mirrored = hflip_pair(np.zeros((40, 50, 3), np.uint8), facing, lr_swap_table(BODY14[1:]))[1]
    profile = np.zeros_like(facing)  # seen from the side: the two arms one above the other
    profile[10:20, 20:30] = PART_ID["left upper arm"]
    profile[20:30, 20:31] = PART_ID["right upper arm"]  # centres 0.5 px apart
    one_side = np.where(facing == PART_ID["right upper arm"], PART_ID["torso"], facing)
    labels = torch.from_numpy(np.stack([facing, mirrored, one_side, np.full_like(facing, 255)]).astype(np.int64))
    labels[3, :, :25] = PART_ID["left upper arm"]
    labels[3, :, 25:] = PART_ID["right upper arm"]  # faces away; IGNORE pixels elsewhere are skipped
    t = facing_targets(labels, class_side)
    assert t[0] == 1 and t[3] == 0 and torch.isnan(t[2])
    assert t[1] == 1  # the mirror image still faces the camera (the flip moves and swaps the sides)
    assert torch.isnan(facing_targets(torch.from_numpy(profile[None].astype(np.int64)), class_side)[0])


def test_poly_schedule():
    assert poly_lr_factor(0, 100, 10, 0.9) == pytest.approx(0.1)
    assert poly_lr_factor(10, 100, 10, 0.9) == pytest.approx(0.9**0.9)
    assert poly_lr_factor(100, 100, 10, 0.9) == 0.0


def _fabricate_ppp(root, n: int = 3, size: int = 32) -> None:
    rng = np.random.default_rng(0)
    (root / "JPEGImages").mkdir(parents=True)
    (root / "SegmentationPart").mkdir()
    for i in range(n):
        labels = np.zeros((size, size), dtype=np.uint8)
        labels[4 + i : 14 + i, 8:20] = 1 + i % 6
        rgb = (rng.random((size, size, 3)) * 60).astype(np.uint8)
        rgb[labels > 0] = 220
        cv2.imwrite(str(root / "JPEGImages" / f"{i}.jpg"), rgb)
        cv2.imwrite(str(root / "SegmentationPart" / f"{i}.png"), labels)
    (root / "train_id.txt").write_text("0\n1\n2\n")
    (root / "val_id.txt").write_text("2\n")


def _cfg(tmp_path, steps: int) -> TrainConfig:
    return TrainConfig(
        model=SchnetConfig(size="tiny", image_size=32, vocabulary=list(taxonomy("pascal_person_part").classes[1:])),
        data=DataConfig(format="ppp", root=str(tmp_path / "ppp"), train_split="train", val_split="val"),
        out_dir=str(tmp_path / "run"), steps=steps, batch_size=2, val_every=2, warmup_steps=1, threads=1,
    )  # fmt: skip


def test_train_validates_checkpoints_and_resumes(tmp_path, caplog):
    _fabricate_ppp(tmp_path / "ppp")
    result = train(_cfg(tmp_path, steps=3))
    assert result["step"] == 3 and np.isfinite(result["final_loss"])
    last = read_checkpoint(tmp_path / "run" / "last.pt")
    assert last["step"] == 3 and "optimizer" in last and 0.0 <= last["best_miou"] <= 1.0
    assert (tmp_path / "run" / "train_config.yaml").is_file()
    model = load_schnet(tmp_path / "run" / "best.pt")
    assert model.vocabulary == list(taxonomy("pascal_person_part").classes[1:])
    caplog.set_level("INFO")
    again = train(_cfg(tmp_path, steps=4))
    assert again["step"] == 4
    assert "resumed from" in caplog.text and read_checkpoint(tmp_path / "run" / "last.pt")["step"] == 4


@pytest.mark.parametrize("has_bf16", [True, False])
def test_cpu_bf16_trains_in_bfloat16_only_where_the_cpu_has_it(tmp_path, caplog, monkeypatch, has_bf16):
    monkeypatch.setattr(backbones, "cpu_has_bf16", lambda: has_bf16)
    monkeypatch.setattr(backbones, "_WARNED", set())
    cfg = _cfg(tmp_path, steps=2)
    cfg.cpu_bf16 = True
    with backbones.compute_autocast("cpu", cfg.cpu_bf16):
        product = torch.ones(2, 2) @ torch.ones(2, 2)
    assert product.dtype == (torch.bfloat16 if has_bf16 else torch.float32)
    assert ("no native bfloat16" in caplog.text) != has_bf16
    _fabricate_ppp(tmp_path / "ppp")
    result = train(cfg)
    assert result["step"] == 2 and np.isfinite(result["final_loss"])
    weights = read_checkpoint(tmp_path / "run" / "last.pt")["weights"]
    assert all(w.dtype != torch.bfloat16 for w in weights.values())  # only the compute was bfloat16


def test_train_starts_from_init_checkpoint_and_adds_new_modules(tmp_path, caplog):
    _fabricate_ppp(tmp_path / "ppp")
    cfg = _cfg(tmp_path, steps=1)
    cfg.model.side_head = False
    train(cfg)
    before = read_checkpoint(tmp_path / "run" / "best.pt")["weights"]
    fine = _cfg(tmp_path, steps=1)
    fine.out_dir, fine.init_checkpoint, fine.lr = str(tmp_path / "fine"), str(tmp_path / "run" / "best.pt"), 0.0
    caplog.set_level("INFO")
    train(fine)
    assert "new parameters: head.side.maps.weight, head.side.maps.bias, head.side.gate" in caplog.text
    after = read_checkpoint(tmp_path / "fine" / "last.pt")
    assert after["step"] == 1 and "head.side.maps.weight" in after["weights"]
    # lr 0: every weight the init checkpoint had comes through unchanged
    assert all(torch.equal(after["weights"][k], v) for k, v in before.items())
    fine.init_checkpoint = str(tmp_path / "nothing.pt")
    fine.out_dir = str(tmp_path / "fine2")
    with pytest.raises(CheckpointError, match="train.init_checkpoint"):
        train(fine)


def test_bad_start_checkpoints_leave_no_run_folder_and_say_what_to_fix(tmp_path):
    """A bad init_checkpoint left out_dir with a train_config.yaml in it; a damaged last.pt said
    'give the file torch.save wrote', where the fix is to move that file out of the way."""
    _fabricate_ppp(tmp_path / "ppp")
    cfg = _cfg(tmp_path, steps=1)
    (tmp_path / "notes.pt").write_text("not a checkpoint")
    cfg.init_checkpoint = str(tmp_path / "notes.pt")
    with pytest.raises(CheckpointError, match="train.init_checkpoint"):
        train(cfg)
    assert not (tmp_path / "run").exists()
    cfg.init_checkpoint = None
    (tmp_path / "run").mkdir()
    (tmp_path / "run" / "last.pt").write_bytes(b"junk")
    with pytest.raises(CheckpointError, match=r"to start over, delete .*last\.pt \(or choose another out_dir"):
        train(cfg)
    assert sorted(p.name for p in (tmp_path / "run").iterdir()) == ["last.pt"]


def test_cli_train_refuses_a_bad_out_dir_or_device_before_any_work(tmp_path):
    """An out_dir that is a file (or cannot be written) and an unknown device were tracebacks (exit 1)."""
    from typer.testing import CliRunner

    from openhuman.cli import app

    (tmp_path / "afile").write_text("the user's file")
    (tmp_path / "t.yaml").write_text(f"out_dir: {tmp_path / 'afile'}\n")
    cases = [
        (
            ["train", str(tmp_path / "t.yaml")],
            "error: out_dir " + str(tmp_path / "afile") + " exists and is not a folder",
        ),
        (["train", str(tmp_path / "t.yaml"), "--out", str(tmp_path / "afile" / "x")], "is a file, not a folder"),
        (["train", str(tmp_path / "t.yaml"), "--device", "tpu"], "error: --device: unknown device 'tpu'"),
    ]
    for args, words in cases:
        res = CliRunner().invoke(app, args)
        assert res.exit_code == 2 and words in res.output and len(res.output.strip().splitlines()) == 1, res.output
    assert (tmp_path / "afile").read_text() == "the user's file"


def test_train_rejects_vocabulary_that_does_not_fit_the_data(tmp_path):
    _fabricate_ppp(tmp_path / "ppp")
    cfg = _cfg(tmp_path, steps=1)
    cfg.model.vocabulary = ["head", "torso"]
    with pytest.raises(InputError, match="model.vocabulary has 2 names"):
        train(cfg)


@pytest.mark.parametrize(
    "name", ["schnet_synth", "schnet_synth_person", "schnet_synth_side", "schnet_synth_13", "schnet_lip", "schnet_ppp"]
)
def test_shipped_train_configs_load_and_fit_their_data(name):
    from pathlib import Path

    from openhuman.config import load_config
    from openhuman.ontology import BODY14

    cfg = load_config(Path(__file__).resolve().parent.parent / "configs" / f"{name}.yaml", TrainConfig)
    classes = {
        "synth": BODY14[1:],
        "lip": taxonomy("lip").classes[1:],
        "ppp": taxonomy("pascal_person_part").classes[1:],
    }
    assert tuple(cfg.model.vocabulary) == tuple(classes[cfg.data.format])
