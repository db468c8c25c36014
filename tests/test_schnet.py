"""SCHNet model: module shapes, frozen/trainable gradients, overfitting, checkpoints, vocabulary, backend."""

from __future__ import annotations

import dataclasses

import cv2
import numpy as np
import pytest
import torch

from openhuman.errors import CheckpointError, InputError
from openhuman.ontology import BODY14
from openhuman.parsing import backbones
from openhuman.parsing.config import ParserConfig
from openhuman.parsing.schnet.checkpoint import load_schnet, save_checkpoint
from openhuman.parsing.schnet.config import SchnetConfig
from openhuman.parsing.schnet.model import build_schnet
from openhuman.parsing.schnet.modules import FTM, FTMMLP, SRM, ParsingHead, SideHead, SimModule
from openhuman.types import Frame

TINY = SchnetConfig(size="tiny", image_size=64)


@pytest.fixture(autouse=True)
def _one_thread():
    """Tiny models run fastest on one thread (and do not spin-wait on a busy shared CPU)."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


@pytest.fixture(scope="module")
def pretrained_files(tmp_path_factory):
    """Tiny 'pretrained' SAM (official full-Sam layout) and CLIP checkpoints."""
    d = tmp_path_factory.mktemp("weights")
    torch.manual_seed(1)
    torch.save(backbones.build_sam("tiny").state_dict(), d / "sam_tiny.pth")
    clip, _, _ = backbones.build_clip("openhuman-tiny-clip")
    torch.save(clip.state_dict(), d / "clip_tiny.pt")
    return str(d / "sam_tiny.pth"), str(d / "clip_tiny.pt")


@pytest.fixture(scope="module")
def scratch_model():
    torch.manual_seed(0)
    return build_schnet(TINY)


def test_module_shapes():
    b, h, w, c, cc, k, d = 2, 4, 5, 16, 12, 3, 8
    f_sim = SimModule()(torch.randn(b, d), torch.randn(k, d), 10.0)
    assert f_sim.shape == (b, k) and torch.allclose(f_sim.sum(-1), torch.ones(b))
    srm = SRM(c, cc, d)
    out = srm(torch.randn(b, h, w, c), torch.randn(b, cc, h, w), f_sim, torch.randn(k, d))
    assert out.shape == (b, h, w, c)
    ftm = FTM(c, 4, FTMMLP(c))
    assert ftm(torch.randn(b, h, w, c)).shape == (b, h, w, c)
    head = ParsingHead(c, 4, d, width=8)
    logits = head([torch.randn(b, c, h, w) for _ in range(4)], torch.rand(b, 3, 16 * h, 16 * w), torch.randn(k, d))
    assert logits.shape == (b, k + 1, 16 * h, 16 * w)


def test_model_output_shape_any_input_size(scratch_model):
    with torch.inference_mode():
        assert scratch_model(torch.rand(2, 3, 64, 64)).shape == (2, len(BODY14), 64, 64)
        assert scratch_model(torch.rand(1, 3, 48, 80)).shape == (1, len(BODY14), 48, 80)
    assert not scratch_model.training


def test_from_scratch_trains_backbones(scratch_model):
    assert all(p.requires_grad for p in scratch_model.sam.parameters())
    assert all(p.requires_grad for p in scratch_model.clip.parameters())


def test_pretrained_backbones_are_frozen_and_modules_get_gradients(pretrained_files):
    sam, clip = pretrained_files
    model = build_schnet(dataclasses.replace(TINY, sam_checkpoint=sam, clip_checkpoint=clip)).train()
    for srm in model.srm:  # SRM's output projection starts at zero; open it so every SRM weight gets a gradient
        torch.nn.init.normal_(srm.down.weight, std=0.02)
    torch.nn.init.normal_(model.head.side.maps.weight, std=0.02)  # likewise the side maps (for the gates)
    logits = model(torch.rand(2, 3, 64, 64))
    torch.nn.functional.cross_entropy(logits, torch.randint(0, len(BODY14), (2, 64, 64))).backward()
    frozen = list(model.sam.parameters()) + list(model.clip.parameters())
    assert all(p.grad is None and not p.requires_grad for p in frozen)
    for name in ("srm.0.semantic.weight", "srm.0.down.weight", "srm.3.up.weight", "ftm.0.tokens.tokens",
                 "ftm.0.rho", "ftm.0.mlp.net.1.weight", "head.embed.weight", "head.background",
                 "head.side.maps.weight", "head.side.gate.1.weight"):  # fmt: skip
        grad = dict(model.named_parameters())[name].grad
        assert grad is not None and grad.abs().sum() > 0, name


def _toy_batch(n: int = 2, size: int = 64) -> tuple[torch.Tensor, torch.Tensor]:
    """Images with coloured rectangles and their labels (3 classes + background)."""
    g = torch.Generator().manual_seed(3)
    images = torch.rand(n, 3, size, size, generator=g) * 0.2
    labels = torch.zeros(n, size, size, dtype=torch.long)
    for i in range(n):
        for cls, (y, x) in enumerate([(8, 8), (30, 12), (12, 36)], start=1):
            y, x = y + 4 * i, x + 2 * i
            labels[i, y : y + 18, x : x + 16] = cls
            images[i, cls - 1, y : y + 18, x : x + 16] = 0.9
    return images, labels


def test_tiny_model_overfits_a_tiny_batch():
    torch.manual_seed(0)
    cfg = dataclasses.replace(TINY, image_size=48, vocabulary=["red part", "green part", "blue part"])
    model = build_schnet(cfg).train()
    opt = torch.optim.AdamW([p for p in model.parameters() if p.requires_grad], lr=3e-3)
    images, labels = _toy_batch(2, 48)
    losses = []
    for _ in range(20):
        loss = torch.nn.functional.cross_entropy(model(images), labels)
        opt.zero_grad()
        loss.backward()
        opt.step()
        losses.append(loss.item())
    assert losses[-1] < 0.5 * losses[0], losses[::4]


def _same_logits(a, b) -> None:
    x = torch.rand(1, 3, 64, 64, generator=torch.Generator().manual_seed(5))
    with torch.inference_mode():
        assert torch.equal(a(x), b(x))


def test_checkpoint_round_trip_from_scratch(tmp_path, scratch_model):
    path = tmp_path / "s.pt"
    save_checkpoint(path, scratch_model, TINY, step=7)
    _same_logits(scratch_model, load_schnet(path))


def test_checkpoint_round_trip_frozen_backbones(tmp_path, pretrained_files):
    sam, clip = pretrained_files
    cfg = dataclasses.replace(TINY, sam_checkpoint=sam, clip_checkpoint=clip)
    model = build_schnet(cfg)
    with torch.no_grad():
        model.head.background.add_(1.0)
    path = tmp_path / "f.pt"
    save_checkpoint(path, model, cfg)
    stored = torch.load(path, map_location="cpu", weights_only=True)
    assert stored["frozen"] and not any(k.startswith(("sam.", "clip.")) for k in stored["weights"])
    _same_logits(model, load_schnet(path))


def test_side_head_splits_each_part_between_its_two_sides(scratch_model):
    vocab = scratch_model.vocabulary
    left, right = vocab.index("left hand") + 1, vocab.index("right hand") + 1
    assert torch.equal(scratch_model.text_tokens[left - 1], scratch_model.text_tokens[right - 1])  # one prompt: "hand"
    x = torch.rand(1, 3, 64, 64, generator=torch.Generator().manual_seed(2))
    with torch.inference_mode():
        even = scratch_model(x).softmax(1)
        assert torch.allclose(even[:, left], even[:, right])  # the side conv starts at zero
        gate = scratch_model.head.side.gate[1]
        saved = gate.weight.clone()
        gate.weight.zero_()  # gate 0 = 1 whatever the image ...
        scratch_model.head.side.maps.bias[0] = 2.0  # ... so every pixel leans to the person's left by 2
        try:
            leaning = scratch_model(x).softmax(1)
        finally:
            scratch_model.head.side.maps.bias.zero_()
            gate.weight.copy_(saved)
    assert torch.allclose(
        leaning[:, left] / leaning[:, right], torch.full_like(leaning[:, left], np.exp(2.0)), rtol=1e-3
    )
    # the part's probability and every side-free class stay as they were
    assert torch.allclose(leaning[:, left] + leaning[:, right], even[:, left] + even[:, right], atol=1e-6)
    for name in ("head", "torso"):
        assert torch.allclose(leaning[:, vocab.index(name) + 1], even[:, vocab.index(name) + 1], atol=1e-6)


def test_side_head_gate_flips_every_pixel_with_one_image_cue():
    head = SideHead(width=3, maps=2)
    x = torch.zeros(2, 3, 5, 7)
    x[0, 0, 2, 3] = 4.0  # image 0 has the cue (channel 0 fires somewhere), image 1 not
    x[:, 1] = 1.0  # channel 1: "limb here" everywhere
    with torch.no_grad():
        s, gates = head(x)
        assert s.abs().max() == 0 and gates.shape == (2, 2)  # starts undecided
        head.maps.weight.zero_()
        head.maps.weight[1, 1] = 1.5  # map 1 = 1.5 * channel 1
        head.gate[1].weight.zero_()
        head.gate[1].weight[1, 3] = 1.0  # gate 1 reads channel 0's max (after the layer norm)
        head.gate[1].bias.zero_()
        s, gates = head(x)
    assert s.shape == (2, 1, 5, 7)
    assert s[0].min() > 0 and s[1].max() < 0  # the one cue flips the side of every pixel
    assert gates[0, 1] > 0 > gates[1, 1]


def test_checkpoints_from_before_the_side_head_load_without_it(tmp_path):
    cfg = dataclasses.replace(TINY, side_head=False)
    model = build_schnet(cfg)
    assert model.head.side is None
    path = tmp_path / "old.pt"
    save_checkpoint(path, model, cfg)
    data = torch.load(path, map_location="cpu", weights_only=True)
    del data["config"]["side_head"]  # written before the key existed
    torch.save(data, path)
    loaded = load_schnet(path)
    assert not loaded.side_head and loaded.head.side is None
    _same_logits(model, loaded)


def test_vocabulary_change_changes_output_classes(tmp_path, scratch_model):
    path = tmp_path / "v.pt"
    save_checkpoint(path, scratch_model, TINY)
    vocab = ["hat", "left hand", "shoes"]
    model = load_schnet(path, dataclasses.replace(TINY, vocabulary=vocab))
    assert model.vocabulary == vocab
    x = torch.rand(1, 3, 64, 64)
    with torch.inference_mode():
        out = model(x)
        base = scratch_model(x)
    assert out.shape[1] == len(vocab) + 1
    # background is the same channel; "left hand" is body14's channel 7 under another vocabulary
    assert torch.allclose(out[:, 2], base[:, 7], atol=1e-5)
    assert not torch.allclose(out[:, 1], base[:, 1], atol=1e-3)


def test_missing_and_mismatched_checkpoints_name_the_key(tmp_path, scratch_model):
    with pytest.raises(CheckpointError, match=r"^parser\.schnet\.checkpoint: file not found"):
        load_schnet(tmp_path / "missing.pt")
    from openhuman.parsing.schnet.backend import SchnetParser

    with pytest.raises(CheckpointError, match=r"^parser\.schnet\.checkpoint: not set"):
        SchnetParser.from_config(ParserConfig(backend="schnet"))
    path = tmp_path / "m.pt"
    save_checkpoint(path, scratch_model, TINY)
    data = torch.load(path, map_location="cpu", weights_only=True)
    data["weights"].pop("head.embed.weight")
    torch.save(data, path)
    with pytest.raises(CheckpointError, match=r"^parser\.schnet\.checkpoint: .*does not match.*head\.embed\.weight"):
        load_schnet(path)
    torch.save({"weights": {}}, path)
    with pytest.raises(CheckpointError, match=r"^parser\.schnet\.checkpoint: .*not a SCHNet checkpoint"):
        load_schnet(path)


def test_checkpoint_that_is_no_file_or_no_torch_file_says_so(tmp_path, scratch_model):
    """A folder read as 'file not found', and torch's reasons for an empty or a text file were
    '()', '(101)' or half a sentence of miniz's."""
    path = tmp_path / "m.pt"
    save_checkpoint(path, scratch_model, TINY)
    (tmp_path / "empty.pt").write_bytes(b"")
    (tmp_path / "notes.pt").write_text("hello")
    (tmp_path / "cut.pt").write_bytes(path.read_bytes()[:300])  # a zip archive cut short
    cases = [
        (tmp_path, "is a folder, not a file"),
        (tmp_path / "empty.pt", "is empty (0 bytes)"),
        (tmp_path / "notes.pt", "is not a torch checkpoint (truncated, or another kind of file)"),
        (tmp_path / "cut.pt", "is not a torch checkpoint (truncated, or another kind of file)"),
    ]
    for bad, words in cases:
        with pytest.raises(CheckpointError) as err:
            load_schnet(bad)
        msg = str(err.value)
        assert msg.startswith(f"parser.schnet.checkpoint: {bad} ") and words in msg and "\n" not in msg, msg
        assert "point it at a .pt written by `openhuman train`" in msg
    assert load_schnet(path).vocabulary == scratch_model.vocabulary


def test_frozen_checkpoint_needs_its_backbone_files(tmp_path, pretrained_files):
    import shutil

    sam, clip = pretrained_files
    sam_copy = tmp_path / "sam_copy.pth"
    shutil.copy(sam, sam_copy)
    cfg = dataclasses.replace(TINY, sam_checkpoint=str(sam_copy), clip_checkpoint=clip)
    path = tmp_path / "f.pt"
    save_checkpoint(path, build_schnet(cfg), cfg)
    sam_copy.unlink()
    with pytest.raises(CheckpointError, match=r"^parser\.schnet\.sam_checkpoint: file not found"):
        load_schnet(path)


def test_frozen_random_backbones_are_stored_whole(tmp_path):
    model = build_schnet(dataclasses.replace(TINY, freeze_backbones=True))
    assert not any(p.requires_grad for p in model.sam.parameters())
    path = tmp_path / "r.pt"
    save_checkpoint(path, model, TINY)
    _same_logits(model, load_schnet(path))


class _RedIsPerson(torch.nn.Module):
    """Stand-in model: pixels with red > 0.5 are class 1, the rest background; counts its calls."""

    def __init__(self, person_crop, flip_test=False):
        super().__init__()
        self.image_size, self.person_crop, self.flip_test, self.calls = 64, person_crop, flip_test, 0
        self.vocabulary = ["left hand", "right hand"]

    def forward(self, x):
        self.calls += 1
        red = x[:, :1]
        return torch.cat([(0.5 - red) * 20, (red - 0.5) * 20, torch.full_like(red, -30.0)], dim=1)


def test_person_crop_inference_parses_the_person_box_again():
    from openhuman.parsing.schnet.inference import predict_probs

    rgb = np.zeros((240, 320, 3), dtype=np.uint8)
    rgb[150:190, 200:206] = 255  # a thin "person": 6 px wide, under 2 px in the 64 px first pass
    truth = rgb[..., 0] > 0
    once = _RedIsPerson(None)
    coarse = predict_probs(once, rgb).argmax(0).numpy() > 0
    twice = _RedIsPerson(0.15)
    fine = predict_probs(twice, rgb).argmax(0).numpy() > 0
    assert (once.calls, twice.calls) == (1, 2)
    iou = lambda a: (a & truth).sum() / (a | truth).sum()  # noqa: E731
    assert iou(fine) > 0.85 and iou(fine) > iou(coarse) + 0.1
    nobody = _RedIsPerson(0.15)
    assert predict_probs(nobody, np.zeros((240, 320, 3), dtype=np.uint8)).argmax(0).max() == 0
    assert nobody.calls == 1


def test_flip_test_averages_the_mirrored_parse_with_left_and_right_swapped():
    from openhuman.parsing.schnet.inference import predict_probs

    rgb = np.zeros((48, 80, 3), dtype=np.uint8)
    rgb[10:30, 5:25] = 255  # off-centre, so a mirror not flipped back would miss it
    plain = predict_probs(_RedIsPerson(None), rgb)
    model = _RedIsPerson(None, flip_test=True)
    both = predict_probs(model, rgb)
    assert model.calls == 2
    assert plain[1, 15:25, 10:20].min() > 0.99  # the stand-in calls red "left hand"
    # in the mirror it is also "left hand": swapped back, it counts as "right hand" here
    assert np.allclose(both[1, 15:25, 10:20], 0.5, atol=0.01) and np.allclose(both[2, 15:25, 10:20], 0.5, atol=0.01)
    assert both[0, :, 40:].min() > 0.99


def test_person_crop_survives_the_checkpoint(tmp_path):
    cfg = dataclasses.replace(TINY, person_crop=0.2)
    path = tmp_path / "p.pt"
    save_checkpoint(path, build_schnet(cfg), cfg)
    assert load_schnet(path).person_crop == 0.2
    assert load_schnet(path, dataclasses.replace(cfg, flip_test=True)).flip_test  # an inference setting
    with pytest.raises(ValueError, match="person_crop"):
        build_schnet(dataclasses.replace(TINY, person_crop=-1.0))


def test_backend_gives_body14_parse(tmp_path, scratch_model):
    from openhuman.parsing.base import Parser

    path = tmp_path / "b.pt"
    save_checkpoint(path, scratch_model, TINY)
    cfg = ParserConfig(backend="schnet")
    cfg.schnet = dataclasses.replace(TINY, checkpoint=str(path), vocabulary=["head", "hat", "left foot"])
    parser = Parser.from_config(cfg)
    rgb = (np.random.default_rng(0).random((40, 56, 3)) * 255).astype(np.uint8)
    parse = parser(Frame("cam0", 3, 0.1, rgb))
    assert parse.labels.shape == (40, 56) and parse.labels.dtype == np.int16
    assert parse.probs is not None and parse.probs.shape == (15, 40, 56) and parse.probs.dtype == np.float16
    assert np.allclose(parse.probs.astype(np.float32).sum(0), 1.0, atol=1e-2)
    assert set(np.unique(parse.labels)) <= {0, 1, 13}
    # "hat" is outside body14: its probability is folded into background
    raw = parser.predict(rgb).numpy()
    assert np.allclose(parse.probs[0], raw[0] + raw[2], atol=1e-2)


def test_sides_from_pose_takes_each_limbs_side_from_the_nearer_pose_limb():
    from openhuman.ontology import PART_ID
    from openhuman.parsing.schnet.backend import sides_from_pose

    lt, rt, lh = PART_ID["left thigh"], PART_ID["right thigh"], PART_ID["left hand"]
    labels = np.zeros((20, 30), np.int16)
    labels[5:15, 2:8] = lt  # both thighs called left; the right one (x 20-26) partly right
    labels[5:15, 20:26] = lt
    labels[5:10, 20:26] = rt
    labels[0:3, 0:3] = lh  # a hand the pose parse does not show keeps its label
    pose = np.zeros_like(labels)
    pose[6:14, 20:25] = lt  # the pose parse: the thigh on the image's right is the left one
    pose[6:14, 3:7] = rt
    probs = np.random.default_rng(0).random((15, 20, 30)).astype(np.float16)
    out, new_probs = sides_from_pose(labels, probs, pose)
    assert (out[5:15, 2:8] == rt).all() and (out[5:15, 20:26] == lt).all()
    assert (out[0:3, 0:3] == lh).all() and (out[labels == 0] == 0).all()
    assert new_probs is not None
    flipped = (labels == lt) & (out == rt)
    assert np.array_equal(new_probs[rt][flipped], probs[lt][flipped])  # the two sides' probabilities swap
    assert np.array_equal(new_probs[lt][flipped], probs[rt][flipped])
    kept = out == labels
    assert np.array_equal(new_probs[:, kept], probs[:, kept])
    assert np.array_equal(sides_from_pose(labels, None, pose)[0], out)


def test_backend_with_pose_sides_takes_the_sides_of_a_mediapipe_parse(tmp_path, scratch_model, synth_capture):
    from openhuman.capture import Capture
    from openhuman.parsing.base import Parser
    from openhuman.parsing.schnet.backend import sides_from_pose

    path = tmp_path / "b.pt"
    save_checkpoint(path, scratch_model, TINY)
    cap = Capture.open(synth_capture)
    frames = [next(iter(cap.frames(v))) for v in cap.view_ids[:2]]
    plain = ParserConfig(backend="schnet", schnet=dataclasses.replace(TINY, checkpoint=str(path)))
    posed = ParserConfig(backend="schnet", schnet=dataclasses.replace(TINY, checkpoint=str(path), pose_sides=True))
    schnet, with_pose, mediapipe = (
        Parser.from_config(plain),
        Parser.from_config(posed),
        Parser.from_config(ParserConfig()),
    )
    for frame in frames:
        raw, got, pose = schnet(frame), with_pose(frame), mediapipe(frame)
        want, want_probs = sides_from_pose(raw.labels, raw.probs, pose.labels)
        assert np.array_equal(got.labels, want) and np.array_equal(got.probs, want_probs)
    assert sorted(with_pose._pose) == sorted(f.view_id for f in frames)  # one mediapipe parser per view
    bad = ParserConfig(backend="schnet", schnet=posed.schnet)
    bad.mediapipe.max_people = 0
    with pytest.raises(InputError, match="parser.mediapipe.max_people"):
        Parser.from_config(bad)


def test_backend_in_bfloat16_gives_float32_probabilities_close_to_float32(tmp_path, scratch_model, monkeypatch):
    from openhuman.parsing.base import Parser

    monkeypatch.setattr(backbones, "cpu_has_bf16", lambda: True)  # torch emulates it where the CPU lacks it
    path = tmp_path / "b.pt"
    save_checkpoint(path, scratch_model, TINY)
    rgb = (np.random.default_rng(0).random((40, 56, 3)) * 255).astype(np.uint8)
    probs = {}
    for bf16 in (False, True):
        cfg = ParserConfig(backend="schnet", cpu_bf16=bf16)
        cfg.schnet = dataclasses.replace(TINY, checkpoint=str(path))
        probs[bf16] = Parser.from_config(cfg).predict(rgb)
    assert probs[True].dtype == torch.float32
    diff = (probs[True] - probs[False]).abs().max().item()
    assert 0 < diff < 0.05  # bfloat16 did run (not bit-identical), and only rounding changed


def test_eval_cli_scores_a_schnet_checkpoint(tmp_path, scratch_model, synth_capture_factory):
    """`openhuman eval --config` reaches the schnet backend end to end (random tiny weights:
    the scores are meaningless, the path and the JSON are what is checked)."""
    import json

    from typer.testing import CliRunner

    from openhuman.cli import app
    from openhuman.evaluate import evaluate_capture

    capture = synth_capture_factory(clips=("walk",), views=2, frames=2, width=96, height=64)
    ckpt = tmp_path / "s.pt"
    save_checkpoint(ckpt, scratch_model, TINY)
    (tmp_path / "cfg.yaml").write_text(
        f"parser:\n  backend: schnet\n  schnet:\n    size: tiny\n    image_size: 64\n    checkpoint: {ckpt}\n"
    )
    res = CliRunner().invoke(
        app, ["eval", str(capture), "--config", str(tmp_path / "cfg.yaml"), "--out", str(tmp_path / "r.json")]
    )
    assert res.exit_code == 0, res.output
    scores = json.loads((tmp_path / "r.json").read_text())
    assert set(scores["views"]) == {"cam0", "cam1"} and "overall" in scores
    # the scores are this checkpoint's (the default mediapipe parser, were --config ignored, scores otherwise)
    cfg = ParserConfig(backend="schnet", schnet=dataclasses.replace(TINY, checkpoint=str(ckpt)))
    assert scores["overall"] == json.loads(json.dumps(evaluate_capture(capture, cfg).to_dict()["overall"]))
    assert scores["overall"] != json.loads(json.dumps(evaluate_capture(capture).to_dict()["overall"]))
    missing = CliRunner().invoke(app, ["eval", str(capture), "--backend", "schnet"])
    assert missing.exit_code == 2 and "parser.schnet.checkpoint" in missing.output
    # --checkpoint alone: the schnet backend with this checkpoint (its architecture read from it)
    res = CliRunner().invoke(app, ["eval", str(capture), "--checkpoint", str(ckpt), "--out", str(tmp_path / "c.json")])
    assert res.exit_code == 0, res.output
    assert json.loads((tmp_path / "c.json").read_text())["overall"] == scores["overall"]
    res = CliRunner().invoke(app, ["eval", str(capture), "--checkpoint", str(tmp_path / "nope.pt")])
    assert res.exit_code == 2 and "parser.schnet.checkpoint: file not found" in res.output
    res = CliRunner().invoke(app, ["eval", str(capture), "--checkpoint", str(ckpt), "--backend", "clipsam"])
    assert res.exit_code == 2 and "--checkpoint is a SCHNet checkpoint" in res.output
    frame = tmp_path / "frame.png"
    cv2.imwrite(str(frame), np.full((48, 64, 3), 90, np.uint8))
    res = CliRunner().invoke(app, ["parse", str(frame), "--checkpoint", str(ckpt), "--out", str(tmp_path / "p")])
    assert res.exit_code == 0, res.output
    assert (tmp_path / "p" / "summary.json").is_file()
