"""Training-free CLIP+SAM backend: tiny random models, tiny images, CPU only."""

from __future__ import annotations

import copy

import numpy as np
import pytest
import torch

from openhuman.errors import CheckpointError, InputError
from openhuman.parsing.clipsam import classify, dense_clip
from openhuman.parsing.clipsam.config import ClipSamConfig
from openhuman.parsing.clipsam.pose import PoseResult
from openhuman.parsing.clipsam.prompts import build_text_bank, encode_ensemble, load_prompts
from openhuman.parsing.clipsam.proposals import build_prompts, uncovered_grid
from openhuman.parsing.config import ParserConfig
from openhuman.types import Frame

TINY = {"sam_model": "tiny", "clip_model": "tiny", "clip_short_side": 64}


def tiny_cfg(**kw: object) -> ClipSamConfig:
    return ClipSamConfig(**{**TINY, "allow_random_init": True, **kw})  # type: ignore[arg-type]


@pytest.fixture(scope="module")
def tiny_clip():
    from openhuman.parsing.clipsam.models import build_clip

    torch.manual_seed(0)
    return build_clip(tiny_cfg())


@pytest.fixture(scope="module")
def tiny_sam():
    from openhuman.parsing.clipsam.models import build_sam

    torch.manual_seed(1)
    return build_sam(tiny_cfg())


def synthetic_pose(H: int = 120, W: int = 96) -> PoseResult:
    """A standing figure facing the camera (its left on the image's right)."""
    lm = np.zeros((33, 3), np.float32)
    lm[:, 2] = 1.0
    pts = {11: (60, 30), 12: (36, 30), 13: (66, 50), 14: (30, 50), 15: (68, 68), 16: (28, 68),
           23: (56, 70), 24: (40, 70), 25: (57, 90), 26: (39, 90), 27: (57, 108), 28: (39, 108)}  # fmt: skip
    for i in range(11):
        pts[i] = (44 + (i % 5) * 2, 12 + (i // 5) * 3)
    for i in (17, 19, 21):
        pts[i] = (69, 74)
    for i in (18, 20, 22):
        pts[i] = (27, 74)
    for i in (29, 31):
        pts[i] = (58, 114)
    for i in (30, 32):
        pts[i] = (38, 114)
    for i, (x, y) in pts.items():
        lm[i, :2] = (x, y)
    prob = np.zeros((H, W), np.float32)
    prob[6:118, 24:73] = 1.0
    return PoseResult(lm, prob)


def _last_block_qkv(model, seed: int = 0):
    visual = model.visual
    torch.manual_seed(seed)
    x = visual._embeds(torch.randn(2, 3, 64, 64))
    for blk in visual.transformer.resblocks[:-1]:
        x = blk(x)
    last = visual.transformer.resblocks[-1]
    return dense_clip.split_qkv(last.attn, last.ln_1(x))


def test_recalibrated_attention_is_a_distribution_that_differs_from_clips(tiny_clip):
    with torch.inference_mode():
        q, k, v = _last_block_qkv(tiny_clip[0])
        original = dense_clip.attention_weights(q, k, v, "original")
        for mode in ("trase", "vv", "qqkk"):
            attn = dense_clip.attention_weights(q, k, v, mode, temperature=0.07)
            assert attn.shape == original.shape
            assert (attn >= 0).all()
            torch.testing.assert_close(attn.sum(-1), torch.ones(attn.shape[:-1]))
            assert (attn - original).abs().max() > 0.05, mode
        trase = dense_clip.attention_weights(q, k, v, "trase")
    assert (trase[..., 0] == 0).all()  # the class token is never attended to
    assert (trase[..., 1:] == 0).any()  # below-mean correlations are dropped
    with pytest.raises(ValueError, match="attention mode"):
        dense_clip.attention_weights(q, k, v, "bogus")  # type: ignore[arg-type]


def test_original_mode_reproduces_clips_image_embedding(tiny_clip):
    model = tiny_clip[0]
    x = torch.randn(2, 3, 64, 64)
    with torch.inference_mode():
        tokens = dense_clip.dense_tokens(model.visual, x, "original")
        torch.testing.assert_close(tokens[:, 0], model.encode_image(x), atol=1e-4, rtol=1e-4)
        trase = dense_clip.dense_tokens(model.visual, x, "trase")
    assert tokens.shape == trase.shape == (2, 17, model.visual.output_dim)
    assert not torch.allclose(tokens[:, 1:], trase[:, 1:])


def test_sliding_windows_cover_the_image_and_average_overlaps(tiny_clip):
    visual = tiny_clip[0].visual
    assert dense_clip.window_origins(96, 64, 32) == [0, 32]
    assert dense_clip.window_origins(100, 64, 48) == [0, 36]
    image = torch.randn(1, 3, 64, 96)
    with torch.inference_mode():
        feats = dense_clip.dense_features(visual, image, "trase", overlap=0.5)
        left = dense_clip.dense_tokens(visual, image[..., :64], "trase")[0, 1:].T.reshape(-1, 4, 4)
        right = dense_clip.dense_tokens(visual, image[..., 32:], "trase")[0, 1:].T.reshape(-1, 4, 4)
    assert feats.shape == (visual.output_dim, 4, 6)
    torch.testing.assert_close(feats[:, :, :2], left[:, :, :2])  # one window only
    torch.testing.assert_close(feats[:, :, 2:4], 0.5 * (left[:, :, 2:] + right[:, :, :2]))  # both windows
    torch.testing.assert_close(feats[:, :, 4:], right[:, :, 2:])
    prepared = dense_clip.prepare_image(torch.zeros(50, 200, 3, dtype=torch.uint8), visual, 64)
    assert prepared.shape[2] == 64 and prepared.shape[3] % 16 == 0 and prepared.shape[3] >= 240


def test_mask_pooling_ignores_features_outside_the_mask():
    torch.manual_seed(0)
    feats = torch.randn(8, 4, 6)  # patches of 10x10 pixels for a 40x60 mask
    masks = torch.zeros(2, 40, 60, dtype=torch.bool)
    masks[0, 0:20, 0:30] = True  # patches rows 0-1, cols 0-2
    masks[1, 21:29, 41:47] = True  # inside patch (2, 4) only
    pooled = classify.pool_masks(feats, masks)
    changed = feats.clone()
    changed[:, 2:, :] += 100.0
    changed[:, :, 3] -= 50.0
    changed[:, 0, 4:] = 7.0
    again = classify.pool_masks(changed, masks)
    torch.testing.assert_close(again[0], pooled[0])
    torch.testing.assert_close(pooled[0], feats[:, :2, :3].reshape(8, -1).mean(1))
    torch.testing.assert_close(pooled[1], feats[:, 2, 4])
    inside = feats.clone()
    inside[:, 1, 1] += 10.0
    assert not torch.allclose(classify.pool_masks(inside, masks)[0], pooled[0])


def test_prompt_ensembles_change_the_text_embedding(tiny_clip):
    model, tokenizer = tiny_clip
    prompts = load_prompts()
    assert len(prompts.parts) == 14 and len(prompts.templates) > 1 and prompts.background
    with torch.inference_mode():
        ensemble = encode_ensemble(model, tokenizer, prompts.templates, prompts.parts[4])
        single = encode_ensemble(model, tokenizer, prompts.templates[:1], prompts.parts[4][:1])
        direct = model.encode_text(tokenizer([prompts.templates[0].format(prompts.parts[4][0])]))[0]
    torch.testing.assert_close(ensemble.norm(), torch.tensor(1.0))
    torch.testing.assert_close(single, direct / direct.norm())
    assert (ensemble - single).norm() > 1e-3
    bank = build_text_bank(model, tokenizer, prompts)
    assert bank.parts.shape == (14, model.text_projection.shape[1])
    assert bank.background.shape[0] == len(prompts.background)
    torch.testing.assert_close(bank.parts[4], ensemble, atol=1e-5, rtol=1e-4)


def test_prompt_file_errors_name_the_problem(tmp_path):
    with pytest.raises(InputError, match="prompts_file"):
        load_prompts(tmp_path / "missing.yaml")
    bad = tmp_path / "bad.yaml"
    bad.write_text("templates: ['a photo of {}']\nparts: {head: [head]}\nbackground: [wall]\n")
    with pytest.raises(InputError, match="torso"):
        load_prompts(bad)


def test_landmark_prompts_follow_the_limbs():
    pose = synthetic_pose()
    prompts = {p.part_id: p for p in build_prompts(pose.landmarks, (120, 96))}
    assert sorted(prompts) == list(range(1, 15))
    fore = prompts[5]  # left forearm: left elbow (66, 50) -> left wrist (68, 68)
    pos = fore.points[fore.labels == 1]
    np.testing.assert_allclose(pos, [[66.5, 54.5], [67, 59], [67.5, 63.5]])
    neg = fore.points[fore.labels == 0]
    assert len(neg) == 2  # centres of the left upper arm and the left hand
    assert any(np.allclose(n, [63, 40]) for n in neg)
    x0, y0, x1, y1 = fore.box
    assert x0 < 66 and y0 < 50 and x1 > 68 and y1 > 68
    hidden = pose.landmarks.copy()
    hidden[15, 2] = 0.1  # left wrist not visible: no left forearm, no left hand prompt
    ids = {p.part_id for p in build_prompts(hidden, (120, 96))}
    assert 5 not in ids and 7 not in ids and 6 in ids


class _FullMaskPredictor:
    """Stands in for SamPredictor: three masks covering the whole image, the second scored best."""

    def __init__(self, hw: tuple[int, int]) -> None:
        self.hw = hw
        self.calls: list[tuple[np.ndarray, np.ndarray, np.ndarray]] = []

    def predict(self, point_coords, point_labels, box, multimask_output):
        self.calls.append((point_coords, point_labels, box))
        masks = np.zeros((3, *self.hw), bool)
        masks[1] = True
        return masks, np.array([0.2, 0.9, 0.5], np.float32), None


def test_part_proposals_are_clipped_to_the_person_mask():
    from openhuman.parsing.clipsam.proposals import prompt_proposals

    pose = synthetic_pose()
    person = pose.person_prob > 0.5
    predictor = _FullMaskPredictor((120, 96))
    props = prompt_proposals(predictor, build_prompts(pose.landmarks, (120, 96)), person)
    assert [p.part_id for p in props] == list(range(1, 15)) and len(predictor.calls) == 14
    for p in props:
        assert (p.mask == person).all() and p.score == pytest.approx(0.9)


def test_uncovered_grid_keeps_only_uncovered_points():
    uncovered = np.zeros((40, 40), bool)
    uncovered[:, :20] = True
    pts = uncovered_grid(uncovered, 4)
    assert len(pts) == 8 and (pts[:, 0] < 0.5).all()


def test_prior_combination_and_pixel_probabilities():
    clip_p = torch.softmax(torch.randn(3, 15), dim=-1)
    prior = classify.landmark_prior(np.array([5, 0, 2]), confidence=0.8)
    torch.testing.assert_close(prior.sum(1), torch.ones(3))
    assert prior[0].argmax() == 5 and torch.allclose(prior[1], torch.full((15,), 1 / 15))
    torch.testing.assert_close(classify.combine(clip_p, prior, 0.0), clip_p)
    torch.testing.assert_close(classify.combine(clip_p, prior, 1.0)[1], clip_p[1])  # uniform prior: no change
    assert (classify.combine(clip_p, prior, 10.0)[[0, 2]].argmax(1) == torch.tensor([5, 2])).all()
    bayes = clip_p[0] * prior[0]
    torch.testing.assert_close(classify.combine(clip_p, prior, 1.0)[0], bayes / bayes.sum())
    person = np.zeros((10, 12), np.float32)
    person[2:8, 2:10] = 0.9
    masks = np.zeros((1, 10, 12), bool)
    masks[0, 2:8, 2:6] = True
    mask_parts = torch.zeros(1, 14)
    mask_parts[0, 6] = 1.0  # left hand (body14 id 7)
    dense = torch.full((14, 2, 3), 1 / 14)
    probs = classify.pixel_probs(person, masks, mask_parts, np.array([0.9]), dense)
    np.testing.assert_allclose(probs.sum(0), 1.0, atol=1e-5)
    assert (probs[0][person == 0] == 1).all()
    np.testing.assert_allclose(probs[0][person > 0], 0.1, atol=1e-6)
    assert (probs.argmax(0)[masks[0]] == 7).all()
    uncovered = (person > 0) & ~masks[0]
    np.testing.assert_allclose(probs[1:, uncovered], 0.9 / 14, atol=1e-6)
    bg, parts = classify.split_background(torch.tensor([[0.5, 0.25, 0.25] + [0.0] * 12]))
    assert bg.item() == 0.5 and parts[0, :2].tolist() == [0.5, 0.5]


def test_missing_checkpoints_are_errors_naming_the_config_key(tmp_path):
    from openhuman.parsing.clipsam.backend import ClipSamParser

    cfg = ParserConfig(backend="clipsam", clipsam=ClipSamConfig(**TINY))  # type: ignore[arg-type]
    with pytest.raises(CheckpointError, match=r"parser\.clipsam\.sam_checkpoint"):
        ClipSamParser.from_config(cfg, pose_fn=lambda rgb: None)
    cfg.clipsam.sam_checkpoint = str(tmp_path / "nope.pth")
    with pytest.raises(CheckpointError, match=r"parser\.clipsam\.sam_checkpoint.*nope\.pth"):
        ClipSamParser.from_config(cfg, pose_fn=lambda rgb: None)


def test_config_values_are_validated_naming_the_key():
    tiny_cfg().validate()
    with pytest.raises(InputError, match=r"parser\.clipsam\.window_overlap"):
        tiny_cfg(window_overlap=1.0).validate()
    with pytest.raises(InputError, match=r"parser\.clipsam\.prior_weight"):
        tiny_cfg(prior_weight=-1.0).validate()


def write_checkpoints(tmp_path, tiny_sam, tiny_clip) -> tuple[str, str]:
    sam_path, clip_path = tmp_path / "sam_tiny.pth", tmp_path / "clip_tiny.pt"
    torch.save(tiny_sam.state_dict(), sam_path)
    torch.save({"state_dict": tiny_clip[0].state_dict()}, clip_path)
    return str(sam_path), str(clip_path)


def test_checkpoints_load_strictly(tmp_path, tiny_sam, tiny_clip):
    from openhuman.parsing.clipsam.models import build_clip, build_sam

    sam_path, clip_path = write_checkpoints(tmp_path, tiny_sam, tiny_clip)
    cfg = ClipSamConfig(**TINY, sam_checkpoint=sam_path, clip_checkpoint=clip_path)  # type: ignore[arg-type]
    sam = build_sam(cfg)
    clip, _ = build_clip(cfg)
    assert not sam.training and not clip.training
    torch.testing.assert_close(sam.mask_decoder.iou_token.weight, tiny_sam.mask_decoder.iou_token.weight)
    torch.testing.assert_close(clip.visual.proj, tiny_clip[0].visual.proj)
    wrong = ClipSamConfig(**{**TINY, "sam_checkpoint": clip_path})  # type: ignore[arg-type]
    with pytest.raises(CheckpointError, match=r"parser\.clipsam\.sam_checkpoint"):
        build_sam(wrong)


@pytest.mark.parametrize("cpu_bf16", [False, True])
def test_parser_end_to_end_with_a_given_pose(tiny_sam, tiny_clip, cpu_bf16, monkeypatch):
    from openhuman.parsing import backbones
    from openhuman.parsing.clipsam.backend import ClipSamParser

    monkeypatch.setattr(backbones, "cpu_has_bf16", lambda: True)  # torch emulates it where the CPU lacks it
    pose = synthetic_pose()
    cfg = tiny_cfg(auto_pred_iou_thresh=0.0, auto_stability_thresh=0.0, auto_points_per_side=4)
    clip = copy.deepcopy(tiny_clip[0])  # bfloat16 casts the image tower in place
    parser = ClipSamParser(tiny_sam, clip, tiny_clip[1], cfg, pose_fn=lambda rgb: pose, cpu_bf16=cpu_bf16)
    assert next(clip.visual.parameters()).dtype == (torch.bfloat16 if cpu_bf16 else torch.float32)
    rgb = np.random.default_rng(0).integers(0, 255, (120, 96, 3), dtype=np.uint8)
    out = parser(Frame("cam0", 3, 0.1, rgb))
    person = pose.person_prob > 0.5
    assert out.probs is not None and out.probs.shape == (15, 120, 96) and out.probs.dtype == np.float16
    np.testing.assert_allclose(out.probs.astype(np.float32).sum(0), 1.0, atol=5e-3)
    assert (out.labels[~person] == 0).all() and (out.person_ids[person] == 0).all()
    assert (out.person_ids[~person] == -1).all()
    assert out.keypoints is not None and out.keypoints.shape == (1, 33, 3)
    assert len(np.unique(out.labels[person])) > 1
    assert all(parser.stage_seconds[k] > 0 for k in ("pose", "sam", "clip"))
    parser.pose_fn = lambda rgb: None
    empty = parser(Frame("cam0", 4, 0.2, rgb))
    assert (empty.labels == 0).all() and (empty.person_ids == -1).all()


def _cli_config(tmp_path, **clipsam: object):
    import yaml

    body = {"sam_model": "tiny", "clip_model": "tiny", "clip_short_side": 64, "auto_masks": False, **clipsam}
    path = tmp_path / "clipsam.yaml"
    path.write_text(yaml.safe_dump({"parser": {"backend": "clipsam", "clipsam": body}}))
    return str(path)


def _run_cli(args: list[str]):
    from typer.testing import CliRunner

    from openhuman.cli import app

    result = CliRunner().invoke(app, args)
    text = result.output + (getattr(result, "stderr", "") or "")
    return result.exit_code, text


@pytest.fixture(scope="module")
def astronaut_png(tmp_path_factory):
    from skimage import data

    from openhuman.io import write_png_atomic

    path = tmp_path_factory.mktemp("img") / "astronaut.png"
    write_png_atomic(path, np.ascontiguousarray(data.astronaut()[::2, ::2]))
    return str(path)


def test_cli_parse_with_clipsam_and_tiny_checkpoints(tmp_path, tiny_sam, tiny_clip, astronaut_png):
    import json

    from PIL import Image

    sam_path, clip_path = write_checkpoints(tmp_path, tiny_sam, tiny_clip)
    cfg = _cli_config(tmp_path, sam_checkpoint=sam_path, clip_checkpoint=clip_path)
    out = tmp_path / "out"
    code, text = _run_cli(["parse", astronaut_png, "--backend", "clipsam", "--config", cfg, "--out", str(out)])
    assert code == 0, text
    labels = np.asarray(Image.open(out / "masks" / "000000.png"))
    assert labels.shape == (256, 256)
    assert labels.max() <= 14 and (labels > 0).mean() > 0.05  # mediapipe finds the astronaut
    assert json.loads((out / "summary.json").read_text())["frames"] == 1


def test_cli_parse_missing_checkpoint_exits_2_naming_the_key(tmp_path, astronaut_png):
    cfg = _cli_config(tmp_path, sam_checkpoint=str(tmp_path / "missing_sam.pth"))
    code, text = _run_cli(
        ["parse", astronaut_png, "--backend", "clipsam", "--config", cfg, "--out", str(tmp_path / "o")]
    )
    assert code == 2, text
    assert "parser.clipsam.sam_checkpoint" in text and "missing_sam.pth" in text


def test_cli_parse_with_an_unusable_device_exits_2_before_building_models(tmp_path, astronaut_png):
    """parser.device 'tpu' and, without a GPU, 'cuda' were tracebacks (exit 1) from torch."""
    import torch
    import yaml

    devices = ["tpu"] + ([] if torch.cuda.is_available() else ["cuda"])
    for device in devices:
        path = tmp_path / f"{device}.yaml"
        body = {"sam_model": "tiny", "clip_model": "tiny", "allow_random_init": True}
        path.write_text(yaml.safe_dump({"parser": {"backend": "clipsam", "device": device, "clipsam": body}}))
        out = tmp_path / f"o_{device}"
        code, text = _run_cli(["parse", astronaut_png, "--config", str(path), "--out", str(out)])
        lines = set(text.strip().splitlines())  # _run_cli gives the one line twice: as output and as stderr
        assert code == 2 and len(lines) == 1 and lines.pop().startswith("error: parser.device: "), text
        assert not out.exists()


def test_automatic_masks_fill_only_the_uncovered_person(tiny_sam):
    from openhuman.parsing.clipsam.proposals import auto_proposals, make_predictor

    pose = synthetic_pose()
    person = pose.person_prob > 0.5
    covered = np.zeros_like(person)
    covered[:60] = person[:60]  # part proposals covered the upper body only
    cfg = tiny_cfg(auto_pred_iou_thresh=0.0, auto_stability_thresh=0.0, auto_points_per_side=4)
    rgb = np.random.default_rng(0).integers(0, 255, (120, 96, 3), dtype=np.uint8)
    predictor = make_predictor(tiny_sam)
    encoder_calls = []
    hook = tiny_sam.image_encoder.register_forward_hook(lambda *a: encoder_calls.append(1))
    try:
        with torch.inference_mode():
            predictor.set_image(rgb)  # type: ignore[attr-defined]
            props = auto_proposals(predictor, rgb, person, covered, cfg)
    finally:
        hook.remove()
    assert len(encoder_calls) == 1  # the generator reused the image embedding
    assert props and all(p.part_id == 0 for p in props)
    for p in props:
        assert p.mask.any() and not (p.mask & ~(person & ~covered)).any()
    assert auto_proposals(predictor, rgb, person, person.copy(), cfg) == []  # nothing uncovered
