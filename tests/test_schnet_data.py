"""SCHNet dataset readers on fabricated LIP / CIHP / PASCAL-Person-Part layouts, and flip augmentation."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import pytest

from openhuman.errors import InputError
from openhuman.metrics import IGNORE
from openhuman.ontology import BODY14, LR_SWAP, PART_ID, taxonomy
from openhuman.parsing.schnet.config import AugmentConfig
from openhuman.parsing.schnet.data import (
    ParsingDataset,
    hflip_pair,
    lr_swap_table,
    open_pairs,
    person_box,
    random_augment,
    read_cihp,
    read_lip,
    read_ppp,
    rotate_pair,
    side_of,
)


def _write_pair(img: Path, lbl: Path, seed: int, num_classes: int, size=(24, 32)) -> np.ndarray:
    rng = np.random.default_rng(seed)
    img.parent.mkdir(parents=True, exist_ok=True)
    lbl.parent.mkdir(parents=True, exist_ok=True)
    cv2.imwrite(str(img), (rng.random((*size, 3)) * 255).astype(np.uint8))
    labels = rng.integers(0, num_classes, size, dtype=np.uint8)
    cv2.imwrite(str(lbl), labels)
    return labels


def test_lip_layout(tmp_path):
    ids = ["100_1", "200_2"]
    want = {}
    for i, name in enumerate(ids + ["300_3"]):
        want[name] = _write_pair(
            tmp_path / "TrainVal_images" / "train_images" / f"{name}.jpg",
            tmp_path / "TrainVal_parsing_annotations" / "train_segmentations" / f"{name}.png", i, 20,
        )  # fmt: skip
    (tmp_path / "train_id.txt").write_text("\n".join(ids) + "\n")
    pairs = read_lip(tmp_path, "train")
    assert len(pairs) == 2 and pairs.classes == taxonomy("lip").classes[1:]
    rgb, lab = pairs[1]
    assert rgb.shape == (24, 32, 3) and rgb.dtype == np.uint8
    assert np.array_equal(lab, want["200_2"])


def test_cihp_layout_without_list_uses_all_images(tmp_path):
    base = tmp_path / "instance-level-human-parsing" / "Validation"
    for i in range(3):
        _write_pair(base / "Images" / f"{i:07d}.jpg", base / "Category_ids" / f"{i:07d}.png", i, 20)
    pairs = read_cihp(tmp_path, "val")
    assert len(pairs) == 3 and len(pairs.classes) == 19
    assert pairs[2][1].max() < 20


def test_ppp_layout_with_list_file(tmp_path):
    for i, name in enumerate(["2008_000003", "2008_000008"]):
        _write_pair(tmp_path / "JPEGImages" / f"{name}.jpg", tmp_path / "SegmentationPart" / f"{name}.png", i, 7)
    (tmp_path / "list").mkdir()
    (tmp_path / "list" / "val_id.txt").write_text("2008_000008\n")
    pairs = open_pairs("ppp", str(tmp_path), "val")
    assert len(pairs) == 1 and pairs.classes == taxonomy("pascal_person_part").classes[1:]
    assert pairs.images[0].name == "2008_000008.jpg"


def test_missing_files_are_reported(tmp_path):
    (tmp_path / "JPEGImages").mkdir()
    (tmp_path / "SegmentationPart").mkdir()
    (tmp_path / "train_id.txt").write_text("nope\n")
    with pytest.raises(InputError, match="missing"):
        read_ppp(tmp_path, "train")
    with pytest.raises(InputError, match="expected folders"):
        read_lip(tmp_path / "elsewhere", "train")


def test_swap_table_matches_body14_lr_swap_and_lip():
    table = lr_swap_table(BODY14[1:])
    assert np.array_equal(table[:15], LR_SWAP.astype(np.uint8))
    assert table[255] == 255
    lip = lr_swap_table(taxonomy("lip").classes[1:])
    names = taxonomy("lip").classes
    assert names[lip[names.index("left arm")]] == "right arm"
    assert names[lip[names.index("right shoe")]] == "left shoe"
    assert lip[names.index("face")] == names.index("face")
    # the pairing follows `side_of`, which the side head uses too
    assert lr_swap_table(["left_hand", "right_hand", "left and right hands"])[1:4].tolist() == [2, 1, 3]


def test_side_of_takes_the_side_word_out_of_class_names():
    assert side_of("left hand") == (1, "hand")
    assert side_of("right upper arm") == (-1, "upper arm")
    assert side_of("Right-arm") == (-1, "arm")  # LIP's spelling
    assert side_of("left_shoe") == (1, "shoe")
    assert side_of("the person's left forearm") == (1, "the person's forearm")
    assert side_of("torso") == (0, "torso")
    assert side_of("upright") == (0, "upright")  # not a side word
    assert side_of("left and right hands") == (0, "left and right hands")
    assert side_of("left") == (1, "left")  # nothing left to name the part: kept whole


def test_horizontal_flip_swaps_left_and_right_labels():
    labels = np.zeros((8, 10), dtype=np.uint8)
    labels[2:6, 0:3] = PART_ID["left upper arm"]  # image left side
    labels[2:6, 8:10] = PART_ID["right foot"]
    labels[0, 5] = PART_ID["head"]
    rgb = np.zeros((8, 10, 3), dtype=np.uint8)
    rgb[2:6, 0:3] = 200
    frgb, flab = hflip_pair(rgb, labels, lr_swap_table(BODY14[1:]))
    assert np.all(flab[2:6, 7:10] == PART_ID["right upper arm"])  # mirrored position, swapped side
    assert np.all(flab[2:6, 0:2] == PART_ID["left foot"])
    assert flab[0, 4] == PART_ID["head"]
    assert np.all(frgb[2:6, 7:10] == 200)


def test_random_augment_flip_keeps_left_right_consistent():
    # A pair whose left half is "left hand" and right half "right hand": whatever the random
    # scale/crop/flip, "left hand" pixels must stay on the image side the image content says.
    rgb = np.zeros((32, 32, 3), dtype=np.uint8)
    rgb[:, :16] = 255
    labels = np.full((32, 32), PART_ID["right hand"], dtype=np.uint8)
    labels[:, :16] = PART_ID["left hand"]
    aug = AugmentConfig(scale_min=1.0, scale_max=1.0, hflip=True, color_jitter=0.0)
    swap = lr_swap_table(BODY14[1:])
    flipped = 0
    for seed in range(12):
        out_rgb, out_lab = random_augment(rgb, labels, 32, aug, swap, np.random.default_rng(seed))
        white = out_rgb[..., 0] > 127
        flipped += int(out_rgb[0, 0, 0] < 127)
        on_white = np.unique(out_lab[white])
        if out_rgb[0, 0, 0] > 127:
            assert on_white.tolist() == [PART_ID["left hand"]]
        else:
            assert on_white.tolist() == [PART_ID["right hand"]]
    assert 0 < flipped < 12


def test_rotation_turns_image_and_labels_together_and_ignores_what_comes_in():
    rgb = np.zeros((40, 40, 3), dtype=np.uint8)
    labels = np.zeros((40, 40), dtype=np.uint8)
    rgb[2:12, 15:25] = 255  # a block at the top centre
    labels[2:12, 15:25] = PART_ID["head"]
    out_rgb, out_lab = rotate_pair(rgb, labels, 90.0)  # counter-clockwise: the top goes to the left
    head = out_lab == PART_ID["head"]
    assert head.sum() == 100 and head[15:25, 2:12].all()
    assert (out_rgb[head, 0] == 255).all() and (out_rgb[~head & (out_lab == 0), 0] == 0).all()
    _, tilted = rotate_pair(rgb, labels, 30.0)
    assert tilted[0, 0] == IGNORE and tilted[20, 20] == 0  # corners from outside the crop, centre stays
    swap = lr_swap_table(BODY14[1:])
    still = AugmentConfig(scale_min=1.0, scale_max=1.0, hflip=False, color_jitter=0.0)
    turned = AugmentConfig(scale_min=1.0, scale_max=1.0, hflip=False, color_jitter=0.0, rotate_max=45.0)
    _, plain = random_augment(rgb, labels, 40, still, swap, np.random.default_rng(0))
    assert np.array_equal(plain, labels)  # rotate_max 0: no rotation
    _, rot = random_augment(rgb, labels, 40, turned, swap, np.random.default_rng(0))
    assert (rot == IGNORE).any() and (rot == PART_ID["head"]).sum() > 80 and not np.array_equal(rot, labels)


def test_person_box_is_grown_squared_and_clipped():
    mask = np.zeros((100, 200), dtype=bool)
    mask[20:60, 90:100] = True  # 40 tall, 10 wide
    assert person_box(mask, 0.0) == (20, 60, 75, 115)  # widened to a 40 x 40 square about its centre
    assert person_box(mask, 0.1) == (16, 64, 71, 119)  # 4 px (0.1 x 40) on every side, then square
    assert person_box(mask, [0.0, 0.0, 0.5, 0.0]) == (20, 60, 65, 105)  # 20 px on the left, then square
    assert person_box(mask, 1.0) == (0, 100, 35, 155)  # squared to 120 x 120, then clipped at top and bottom
    few = np.zeros((100, 200), dtype=bool)
    few[5, 5:10] = True
    assert person_box(few, 0.1) is None


def test_random_augment_person_crop_centres_the_person():
    # A 20 x 10 "person" in a 200 x 200 image; with person crops on, it fills most of the sample
    # and its labels stay on its pixels.
    rgb = np.zeros((200, 200, 3), dtype=np.uint8)
    labels = np.zeros((200, 200), dtype=np.uint8)
    rgb[150:170, 30:40] = 255
    labels[150:170, 30:40] = PART_ID["torso"]
    swap = lr_swap_table(BODY14[1:])
    aug = AugmentConfig(scale_min=1.0, scale_max=1.0, hflip=False, color_jitter=0.0, person_crop_prob=1.0)
    for seed in range(5):
        out_rgb, out_lab = random_augment(rgb, labels, 64, aug, swap, np.random.default_rng(seed), person_crop=0.15)
        person = out_lab == PART_ID["torso"]
        assert person.sum() > 0.2 * out_lab.size  # 0.5 % of the whole image, > 20 % of the crop
        assert out_rgb[person, 0].mean() > 200 and out_rgb[out_lab == 0, 0].mean() < 50  # edges are resampled
    whole = AugmentConfig(scale_min=1.0, scale_max=1.0, hflip=False, color_jitter=0.0, person_crop_prob=0.0)
    _, out_lab = random_augment(rgb, labels, 64, whole, swap, np.random.default_rng(0), person_crop=0.15)
    assert (out_lab == PART_ID["torso"]).sum() < 0.02 * out_lab.size


def test_parsing_dataset_items(tmp_path):
    for i in range(2):
        _write_pair(tmp_path / "JPEGImages" / f"{i}.jpg", tmp_path / "SegmentationPart" / f"{i}.png", i, 7, (40, 20))
    pairs = read_ppp(tmp_path, "train")
    ds = ParsingDataset(pairs, 32, AugmentConfig(), train=True)
    image, labels = ds[0]
    assert image.shape == (3, 32, 32) and image.dtype == np.float32 and image.min() >= 0 and image.max() <= 1
    assert labels.shape == (32, 32) and labels.dtype == np.int64
    assert set(np.unique(labels)) <= set(range(7)) | {255}
    val = ParsingDataset(pairs, 32, AugmentConfig(), train=False)
    _, vlab = val[1]
    assert np.all(vlab[:, 16:] == 255) and np.all(vlab[:, :16] < 7)  # letterboxed: padding ignored


def test_synth_reader_on_a_generated_capture(synth_capture):
    pairs = open_pairs("synth", str(synth_capture), "")
    from openhuman.capture import Capture

    cap = Capture.open(synth_capture)
    assert len(pairs) == len(cap.view_ids) * cap.frame_count
    assert pairs.classes == tuple(BODY14[1:])
    rgb, lab = pairs[0]
    assert rgb.shape[:2] == lab.shape and lab.dtype == np.uint8
    assert np.array_equal(lab, cap.gt_2d(cap.view_ids[0], 0))
    assert {1, 2} <= set(np.unique(lab))  # head and torso are visible
    # a folder of captures, selected by name
    with pytest.raises(InputError, match="no capture directories"):
        open_pairs("synth", str(synth_capture.parent / "nothing"), "")
    named = open_pairs("synth", str(synth_capture.parent), synth_capture.name)
    assert len(named) == len(pairs)
    with pytest.raises(InputError, match=r"no capture folder 'train' .*openhuman synth"):
        open_pairs("synth", str(synth_capture.parent), f"{synth_capture.name},train")
