"""Shared SAM/CLIP builders: tiny random models, strict local checkpoints, errors naming the key."""

from __future__ import annotations

import re

import numpy as np
import pytest

torch = pytest.importorskip("torch")

from openhuman.errors import CheckpointError  # noqa: E402
from openhuman.parsing import backbones  # noqa: E402


@pytest.fixture(scope="module")
def tiny_sam_encoder():
    return backbones.build_sam_image_encoder("tiny")


def test_tiny_sam_encoder_is_sams_own_encoder_in_eval_mode(tiny_sam_encoder):
    from segment_anything.modeling import ImageEncoderViT

    assert isinstance(tiny_sam_encoder, ImageEncoderViT) and not tiny_sam_encoder.training
    assert len(tiny_sam_encoder.blocks) == 4 and tiny_sam_encoder.pos_embed.shape == (1, 64, 64, 64)
    with torch.inference_mode():  # patch embedding of SAM's 1024 x 1024 input: a 64 x 64 token grid
        tokens = tiny_sam_encoder.patch_embed(torch.zeros(1, 3, 1024, 1024))
    assert tokens.shape == (1, 64, 64, 64)


def test_sam_encoder_loads_official_layout_strictly(tmp_path, tiny_sam_encoder):
    # An "official" checkpoint holds the full Sam; the encoder takes the image_encoder.* part.
    full = backbones.build_sam("tiny")
    with torch.no_grad():
        full.image_encoder.patch_embed.proj.weight.fill_(0.125)
    path = tmp_path / "sam_tiny.pth"
    torch.save(full.state_dict(), path)
    enc = backbones.build_sam_image_encoder("tiny", str(path), key="parser.schnet.sam_checkpoint")
    assert torch.all(enc.patch_embed.proj.weight == 0.125)
    sam = backbones.build_sam("tiny", str(path), key="parser.clipsam.sam_checkpoint")
    assert torch.all(sam.image_encoder.patch_embed.proj.weight == 0.125)


def test_missing_sam_checkpoint_names_key():
    with pytest.raises(CheckpointError, match=r"parser\.schnet\.sam_checkpoint: file not found.*sam_vit_b_01ec64"):
        backbones.build_sam_image_encoder("vit_b", "/nonexistent/sam.pth", key="parser.schnet.sam_checkpoint")


def test_mismatched_sam_checkpoint_names_key(tmp_path, tiny_sam_encoder):
    path = tmp_path / "enc.pt"
    torch.save(tiny_sam_encoder.state_dict(), path)
    with pytest.raises(CheckpointError, match=r"^my\.key: .*does not match"):
        backbones.build_sam_image_encoder("small", str(path), key="my.key")


class _NotWeights:
    pass


@pytest.mark.parametrize("kind", ["random bytes", "python object"])
def test_unreadable_checkpoint_is_one_line_without_torchs_advice(tmp_path, kind):
    path = tmp_path / "junk.pt"
    if kind == "random bytes":
        path.write_bytes(np.random.default_rng(0).bytes(5000))
    else:
        torch.save({"x": _NotWeights()}, path)
    with pytest.raises(CheckpointError) as err:
        backbones.load_checkpoint_file(path, "parser.schnet.checkpoint")
    msg = str(err.value)
    said = "is not a torch checkpoint" if kind == "random bytes" else "not a readable weights-only torch checkpoint"
    assert msg.startswith("parser.schnet.checkpoint: ") and said in msg
    assert "\n" not in msg and "weights_only` set to `False`" not in msg and len(msg) < 400


def test_a_folder_or_an_empty_file_as_checkpoint_says_so(tmp_path):
    """Shared by every torch backend (SCHNet, CLIP+SAM): torch's own reasons were "(101)" and the like."""
    (tmp_path / "empty.pt").write_bytes(b"")
    for path, words in ((tmp_path, "is a folder, not a file"), (tmp_path / "empty.pt", "is empty (0 bytes)")):
        with pytest.raises(CheckpointError, match=rf"^parser\.clipsam\.sam_checkpoint: .* {re.escape(words)}"):
            backbones.load_checkpoint_file(path, "parser.clipsam.sam_checkpoint")


def test_tiny_clip_text_and_image(tmp_path):
    model, _, tokenizer = backbones.build_clip("openhuman-tiny-clip")
    tokens = tokenizer(["a photo of a person's left hand.", "a photo of a person's right hand."])
    with torch.inference_mode():
        text = model.encode_text(tokens)
        image = model.encode_image(torch.zeros(2, 3, 64, 64))
    assert text.shape == (2, 64) and image.shape == (2, 64)
    assert not torch.allclose(text[0], text[1])
    path = tmp_path / "clip.pt"
    torch.save(model.state_dict(), path)
    again, _, _ = backbones.build_clip("openhuman-tiny-clip", str(path))
    with torch.inference_mode():
        assert torch.allclose(again.encode_text(tokens), text)


def test_small_clip_configs_leave_no_temporary_folder(tmp_path, monkeypatch):
    import tempfile

    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))
    monkeypatch.setattr(backbones, "_registered", False)
    backbones.build_clip("openhuman-tiny-clip")
    backbones.build_clip("openhuman-small-clip")  # registered once; both configs stay readable
    assert list(tmp_path.iterdir()) == []


def test_clip_checkpoint_errors_name_key(tmp_path):
    with pytest.raises(CheckpointError, match=r"^parser\.clipsam\.clip_checkpoint: file not found"):
        backbones.build_clip("openhuman-tiny-clip", str(tmp_path / "none.pt"), key="parser.clipsam.clip_checkpoint")
    path = tmp_path / "wrong.pt"
    torch.save({"visual.bogus": torch.zeros(3)}, path)
    with pytest.raises(CheckpointError, match=r"^parser\.clipsam\.clip_checkpoint: "):
        backbones.build_clip("openhuman-tiny-clip", str(path), key="parser.clipsam.clip_checkpoint")


def test_load_state_dict_strict_prefix(tmp_path):
    lin = torch.nn.Linear(3, 2)
    path = tmp_path / "w.pt"
    torch.save({"head.weight": torch.ones(2, 3), "head.bias": torch.zeros(2), "other.x": torch.zeros(1)}, path)
    backbones.load_state_dict_strict(lin, path, "k", prefix="head.")
    assert torch.all(lin.weight == 1)
    with pytest.raises(CheckpointError, match=r"^k: .*unexpected"):
        backbones.load_state_dict_strict(lin, path, "k")
