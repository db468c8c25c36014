"""One person id across views and over time (`lifting.people`), used by the `Lifter`."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest

from lifting import Lifter, LiftingConfig
from lifting.keypoints import LR_LANDMARK_SWAP
from lifting.people import CrossViewPeople
from lifting.scene import SPHERES, sphere_scene
from openhuman.errors import InputError
from openhuman.ontology import LEFT_IDS, RIGHT_IDS

TWO = ((0.0, -0.55, 0.0), (0.2, 0.6, 0.0))
"""Two sphere people side by side."""


@pytest.fixture(scope="module")
def two():
    return sphere_scene(width=320, height=240, people=TWO)


def _renumber(parse, ids):
    """The parse with person k called ids[k] (its keypoints moved to those rows)."""
    pid = np.asarray(parse.person_ids)
    lut = np.r_[-1, ids].astype(np.int16)
    kps = np.zeros((max(ids) + 1, 33, 3), np.float32)
    kps[list(ids)] = parse.keypoints
    return dataclasses.replace(parse, person_ids=lut[pid + 1], keypoints=kps)


def _true_person(scene, xyz):
    """0/1: which sphere person each point lies on (the nearer sphere centre)."""
    centres = np.concatenate([SPHERES[:, :3] + np.r_[o] for o in TWO])
    d = np.linalg.norm(xyz[:, None, :] - centres[None], axis=-1) - np.tile(SPHERES[:, 3], 2)
    return np.argmin(d, 1) // len(SPHERES)


def test_two_people_numbered_differently_per_view_get_one_id_each_everywhere(two):
    numbering = [(0, 1), (1, 0), (7, 3), (2, 5)]  # each view's own person ids for people 0 and 1
    parses = [_renumber(p, ids) for p, ids in zip(two.parses, numbering, strict=True)]
    lifter = Lifter(two.cameras, LiftingConfig(source="depth"))
    cloud = lifter.lift(0, 0.0, two.frames, parses, two.depths)
    truth = _true_person(two, cloud.xyz)
    shared = [int(np.bincount(cloud.track_ids[truth == k]).argmax()) for k in (0, 1)]
    assert sorted(shared) == [0, 1]
    for k in (0, 1):  # every point of a person carries that person's id
        assert np.mean(cloud.track_ids[truth == k] == shared[k]) > 0.99
    for p, view in zip(lifter.shared_ids(parses), two.parses, strict=True):
        for k in (0, 1):
            on_k = np.asarray(view.person_ids) == k
            assert np.all(np.asarray(p.person_ids)[on_k] == shared[k])
            assert np.array_equal(p.keypoints[shared[k]], view.keypoints[k])  # keypoints follow their person
        assert np.all(np.asarray(p.person_ids)[np.asarray(view.person_ids) < 0] == -1)
    # with the views' own ids (the old way) the cloud mixes the two people
    old = Lifter(two.cameras, LiftingConfig(source="depth", person_match_px=0)).lift(
        0, 0.0, two.frames, parses, two.depths
    )
    assert (
        min(np.mean(old.track_ids[truth == k] == np.bincount(old.track_ids[truth == k]).argmax()) for k in (0, 1)) < 0.9
    )


def test_ids_stay_when_a_view_renumbers_its_people_and_new_people_get_new_ids(two):
    people = CrossViewPeople(two.cameras)
    parses = {p.view_id: p for p in two.parses}
    assert all(m == {0: 0, 1: 1} for m in people.assign(parses).values())
    parses["cam2"] = _renumber(parses["cam2"], (4, 9))  # cam2's tracker lost both and found them again
    again = people.assign(parses)
    assert again["cam2"] == {4: 0, 9: 1} and again["cam0"] == {0: 0, 1: 1}
    # every view's tracker renumbers person 1 at once: nothing ties them to id 1, so a new id
    parses = {p.view_id: _renumber(p, (0, 6)) for p in two.parses}
    assert all(m == {0: 0, 6: 2} for m in people.assign(parses).values())
    # so does a person nobody saw before
    three = sphere_scene(width=320, height=240, people=(*TWO, (-0.9, 0.0, 0.0)))
    parses = {p.view_id: _renumber(p, (0, 6, 8)) for p in three.parses}
    assert all(m == {0: 0, 6: 2, 8: 3} for m in people.assign(parses).values())


def test_two_people_on_one_epipolar_plane_are_told_apart_by_the_other_views():
    from lifting.scene import ring_cameras

    cams = ring_cameras(4, 320, 240)
    baseline = (cams["cam3"].center - cams["cam0"].center)[:2]
    # person 1 stands 0.9 m from person 0 along cam0-cam3's baseline: in that camera pair (and in
    # cam1-cam2) each person's landmarks fit both people's epipolar lines
    scene = sphere_scene(
        width=320, height=240, people=((0.0, 0.0, 0.0), (*(0.9 * baseline / np.linalg.norm(baseline)), 0.0))
    )
    right = 0
    for seed in range(20):  # landmarks with 1.5 px noise: the closest pair is often a wrong one
        rng = np.random.default_rng(seed)
        parses = {}
        for p in scene.parses:
            kps = p.keypoints.copy()
            kps[..., :2] += rng.normal(0, 1.5, kps[..., :2].shape)
            parses[p.view_id] = dataclasses.replace(p, keypoints=kps)
        right += all(m == {0: 0, 1: 1} for m in CrossViewPeople(scene.cameras).assign(parses).values())
    # joining the closest pairs first (without asking the other views) got 9 of these 20 right
    assert right == 20


def test_landmarks_gone_wrong_in_some_views_do_not_split_a_person():
    one = sphere_scene(width=320, height=240)
    parses = {p.view_id: p for p in one.parses}
    bad = dict(parses)
    for vid in ("cam0", "cam2"):  # two views' landmarks 40 px off (upside down in a cartwheel, say)
        kps = parses[vid].keypoints.copy()
        kps[..., 1] += 40
        bad[vid] = dataclasses.replace(parses[vid], keypoints=kps)
    assert len(set(CrossViewPeople(one.cameras).assign(bad)[v][0] for v in bad)) == 2  # alone: two people
    people = CrossViewPeople(one.cameras)
    people.assign(parses)
    assert all(m == {0: 0} for m in people.assign(bad).values())  # one person a frame ago: still one


def test_without_keypoints_the_views_own_numbering_is_kept(two):
    parses = {p.view_id: dataclasses.replace(p, keypoints=None) for p in two.parses}
    parses["cam1"] = dataclasses.replace(_renumber(two.parses[1], (3, 1)), keypoints=None)
    out = CrossViewPeople(two.cameras).assign(parses)
    assert out["cam0"] == {0: 0, 1: 1} and out["cam1"] == {1: 1, 3: 2}


def test_a_mirrored_person_is_corrected_in_views_that_number_them_otherwise(two):
    def mirror(parse, person):
        on = np.asarray(parse.person_ids) == person
        swap = np.arange(15)
        swap[list(LEFT_IDS)], swap[list(RIGHT_IDS)] = RIGHT_IDS, LEFT_IDS
        labels = np.where(on, swap[parse.labels], parse.labels).astype(np.int16)
        probs = np.where(on[None], parse.probs[swap], parse.probs)
        kps = parse.keypoints.copy()
        kps[person] = kps[person][LR_LANDMARK_SWAP]
        return dataclasses.replace(parse, labels=labels, probs=probs, keypoints=kps)

    numbering = [(0, 1), (1, 0), (1, 0), (0, 1)]
    parses = [_renumber(p, ids) for p, ids in zip(two.parses, numbering, strict=True)]
    parses[1], parses[2] = mirror(parses[1], 1), mirror(parses[2], 1)  # person 0, whom views 1 and 2 call 1

    def on_their_left(cfg):
        cloud = Lifter(two.cameras, cfg).lift(0, 0.0, two.frames, parses, two.depths)
        truth = _true_person(two, cloud.xyz)
        left = np.isin(cloud.labels, LEFT_IDS) & (truth == 0)
        return np.mean(cloud.xyz[left, 1] > TWO[0][1])  # the people face +x: their left is +y

    assert on_their_left(LiftingConfig(source="depth")) > 0.99
    # checked with the views' own numbering, person 0's skeleton mixes both people: nothing is fixed
    assert on_their_left(LiftingConfig(source="depth", person_match_px=0)) < 0.8


def test_person_match_px_is_checked():
    with pytest.raises(InputError, match="lifting.person_match_px"):
        LiftingConfig(person_match_px=-1).check()
