"""Free-text query resolver: word-level parsing (no encoder), spelling fixes, MiniLM fallback."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from openhuman.errors import InputError
from openhuman.query import (
    QueryResolver,
    correct_spelling,
    fold,
    load_vocabulary,
    resolve,
    supported_parts,
)

ALL = set(range(1, 15))
LEFT = {3, 5, 7, 9, 11, 13}
RIGHT = {4, 6, 8, 10, 12, 14}


class NoEncoder:
    """Fails the test if the resolver reaches for the encoder."""

    def encode(self, sentences: list[str], **kwargs: Any) -> Any:
        raise AssertionError(f"word-level query needed the encoder for {sentences[:3]}")


class TrigramEncoder:
    """Deterministic stand-in encoder: hashed character trigrams, L2-normalised. Counts texts."""

    def __init__(self) -> None:
        self.encoded: list[str] = []

    def encode(self, sentences: list[str], **kwargs: Any) -> np.ndarray:
        self.encoded += sentences
        out = np.zeros((len(sentences), 256), dtype=np.float32)
        for row, text in enumerate(sentences):
            padded = f"  {text} "
            for i in range(len(padded) - 2):
                out[row, sum(map(ord, padded[i : i + 3])) % 256] += 1.0
        return out / np.linalg.norm(out, axis=1, keepdims=True)


@pytest.fixture(scope="module")
def words() -> QueryResolver:
    return QueryResolver.load(encoder=NoEncoder())


@pytest.fixture(scope="module")
def minilm() -> QueryResolver:
    """The real packaged MiniLM (loaded once for this module)."""
    return QueryResolver.load().warm_up()


WORD_LEVEL = [
    # left / right traps
    ("left hand", {7}),
    ("right hand", {8}),
    ("hands", {7, 8}),
    ("both hands", {7, 8}),
    ("hand", {7, 8}),
    ("left hands", {7}),
    ("Left-Hand", {7}),
    ("the person's right forearm", {6}),
    ("right", RIGHT),
    ("the left side of the body", LEFT),
    ("everything on the right", RIGHT),
    ("left upper arm", {3}),
    ("upper left arm", {3}),
    ("left arm's upper part", {3}),
    ("lower left leg", {11}),
    ("left lower arm", {5}),
    ("right upper leg", {10}),
    ("left upper body", {3, 5, 7}),
    # possessives and filler
    ("the person's left palm", {7}),
    ("please segment his left thumb", {7}),
    ("show me the right hand of the woman", {8}),
    ("back of the left hand", {7}),
    ("the feet of the person", {13, 14}),
    # plurals and synonyms
    ("feet", {13, 14}),
    ("toes", {13, 14}),
    ("calves", {11, 12}),
    ("upper arms", {3, 4}),
    ("forearms", {5, 6}),
    ("palm", {7, 8}),
    ("calf", {11, 12}),
    ("tummy", {2}),
    ("lower back", {2}),
    ("face", {1}),
    # groups
    ("arms", {3, 4, 5, 6, 7, 8}),
    ("right arm", {4, 6, 8}),
    ("left leg", {9, 11, 13}),
    ("limbs", ALL - {1, 2}),
    ("upper body", {1, 2, 3, 4, 5, 6, 7, 8}),
    ("lower body", {9, 10, 11, 12, 13, 14}),
    # whole person
    ("person", ALL),
    ("the whole person", ALL),
    ("everyone", ALL),
    ("body", ALL),
    ("human", ALL),
    # negation
    ("everything except the head", ALL - {1}),
    ("body without arms", {1, 2, 9, 10, 11, 12, 13, 14}),
    ("not the feet", ALL - {13, 14}),
    ("everything but the left hand", ALL - {7}),
    ("right arm except the hand", {4, 6}),
    ("legs but not the feet", {9, 10, 11, 12}),
    ("everything except the left side", ALL - LEFT),
    ("hands, not the left one", {8}),
    ("not the head and not the feet", ALL - {1, 13, 14}),
    # conjunctions
    ("left hand and right foot", {7, 14}),
    ("left and right hand", {7, 8}),
    ("hands and feet", {7, 8, 13, 14}),
    ("head, torso and arms", {1, 2, 3, 4, 5, 6, 7, 8}),
    ("left hand or right hand", {7, 8}),
    ("the left arm and leg", {3, 5, 7, 9, 11, 13}),
    ("left hand and feet", {7, 13, 14}),
    ("left hand and right", {7, 8}),
    ("left and right", LEFT | RIGHT),
    ("upper and lower arm", {3, 4, 5, 6}),
    ("upper and lower left leg", {9, 11}),
    ("from the waist up", {1, 2, 3, 4, 5, 6, 7, 8}),
    ("head to toe", ALL),
    # typos (fixed by edit distance, not the encoder)
    ("left hnad", {7}),
    ("rigth foot", {14}),
    ("lft hand", {7}),
    ("both hnads", {7, 8}),
    ("forhead", {1}),
]


@pytest.mark.parametrize(("query", "expected"), WORD_LEVEL, ids=[q for q, _ in WORD_LEVEL])
def test_word_level_queries(words: QueryResolver, query: str, expected: set[int]) -> None:
    result = words.resolve(query)
    assert set(result.part_ids) == expected
    assert result.part_ids == tuple(sorted(result.part_ids))
    assert 0 not in result.part_ids
    assert not result.approximate


CLOTHING_AND_JOINTS = [
    ("shirt", {2, 3, 4}),
    ("t-shirt", {2, 3, 4}),
    ("jacket", {2, 3, 4, 5, 6}),
    ("sleeve", {3, 4, 5, 6}),
    ("left sleeve", {3, 5}),
    ("trousers", {9, 10, 11, 12}),
    ("jeans", {9, 10, 11, 12}),
    ("shorts", {9, 10}),
    ("shoes", {13, 14}),
    ("his right shoe", {14}),
    ("gloves", {7, 8}),
    ("hat", {1}),
    ("skirt", {9, 10}),
    ("left shoulder", {3}),
    ("her right ankle", {14}),
    ("knees", {11, 12}),
    ("sholder", {3, 4}),
]


@pytest.mark.parametrize(("query", "expected"), CLOTHING_AND_JOINTS, ids=[q for q, _ in CLOTHING_AND_JOINTS])
def test_clothing_and_joints_are_approximate(words: QueryResolver, query: str, expected: set[int]) -> None:
    result = words.resolve(query)
    assert set(result.part_ids) == expected
    assert result.approximate


def test_scores_and_explanations(words: QueryResolver) -> None:
    exact = words.resolve("the person's left palm")
    assert exact.score == 1.0
    assert exact.explanation == "left hand <- 'the person's left palm' (synonym, 1.00)"
    typo = words.resolve("left hnad")
    assert typo.score == pytest.approx(0.75)
    assert "'hnad'->'hand'" in typo.explanation
    both = words.resolve("everything except the head")
    assert "minus head" in both.explanation
    assert words.resolve("shoes").explanation.endswith("approximate)")


@pytest.mark.parametrize(
    ("query", "message"),
    [
        ("", "empty query"),
        ("   \t", "empty query"),
        ("show me", "names no body part"),
        ("both", "'both' needs a part"),
        ("everything except", "not which part"),
        ("right hand except right hand", "leaves no body part"),
    ],
)
def test_word_level_errors(words: QueryResolver, query: str, message: str) -> None:
    with pytest.raises(InputError, match=re.escape(message)):
        words.resolve(query)


def test_non_text_query_is_input_error(words: QueryResolver) -> None:
    with pytest.raises(InputError, match="must be text"):
        words.resolve(None)  # type: ignore[arg-type]


ENCODER = [
    ("toenail", {13, 14}),
    ("pinkie", {7, 8}),
    ("the left pinkie", {7}),
    ("eyelids", {1}),
    ("cheekbone", {1}),
    ("ponytail", {1}),
    ("leftmost hand", {7, 8}),  # "leftmost" is image-relative, not a side word
]


@pytest.mark.parametrize(("query", "expected"), ENCODER, ids=[q for q, _ in ENCODER])
def test_encoder_resolves_unseen_synonyms(minilm: QueryResolver, query: str, expected: set[int]) -> None:
    result = minilm.resolve(query)
    assert set(result.part_ids) == expected
    assert minilm.threshold <= result.score < 1.0
    assert "encoder" in result.explanation


@pytest.mark.parametrize("query", ["car engine", "the tail", "wing", "laptop"])
def test_unmatched_query_lists_closest_parts(minilm: QueryResolver, query: str) -> None:
    with pytest.raises(InputError) as info:
        minilm.resolve(query)
    message = str(info.value)
    assert "\n" not in message
    assert re.search(r"closest: ([a-z ]+ \(0\.\d\d\), ){2}[a-z ]+ \(0\.\d\d\)", message), message


def test_similarities_rank_the_right_entry(minilm: QueryResolver) -> None:
    ranked = minilm.similarities("trousers")
    assert ranked[0][0] == "trousers"
    assert ranked[0][1] == pytest.approx(1.0, abs=1e-4)
    assert [s for _, s, _ in ranked] == sorted((s for _, s, _ in ranked), reverse=True)


def test_embedding_cache_is_reused(tmp_path: Path) -> None:
    first = TrigramEncoder()
    resolver = QueryResolver.load(encoder=first, threshold=0.3, cache_dir=tmp_path)
    assert set(resolver.resolve("palmistry").part_ids) == {7, 8}  # unknown word -> encoder ~ "palm"
    n_vocab = len(resolver.vocab.texts)
    assert len(first.encoded) == n_vocab + 1
    assert len(list(tmp_path.glob("query_vocab_*.npy"))) == 1
    second = TrigramEncoder()
    again = QueryResolver.load(encoder=second, threshold=0.3, cache_dir=tmp_path)
    assert set(again.resolve("palmistry").part_ids) == {7, 8}
    assert second.encoded == ["palmistry"]  # the vocabulary came from the cache


def test_spelling_correction_rules() -> None:
    assert correct_spelling("hnad", ["hand", "head"]) == ("hand", 0.75)
    assert correct_spelling("tail", ["nail"]) is None  # short words: no substitutions
    assert correct_spelling("light", ["right"]) is None  # first letter must agree
    assert correct_spelling("had", ["hand", "head"]) is None  # ambiguous
    assert correct_spelling("abdomin", ["abdomen", "arm"]) == ("abdomen", pytest.approx(6 / 7))


def test_fold_plurals() -> None:
    assert [fold(w) for w in ["hands", "feet", "glasses", "pelvis", "calves", "ribs"]] == [
        "hand", "foot", "glass", "pelvis", "calf", "rib",
    ]  # fmt: skip


def test_module_level_api() -> None:
    names = supported_parts()
    for name in ["head", "torso", "upper arm", "forearm", "hand", "thigh", "shin", "foot", "arm", "leg", "person"]:
        assert name in names
    assert "background" not in names
    assert resolve("left hand").part_ids == (7,)


def test_vocabulary_file_is_checked(tmp_path: Path) -> None:
    vocab = load_vocabulary()
    assert {e.name for e in vocab.entries if e.kind == "parts"} == {
        "head", "torso", "upper arm", "forearm", "hand", "thigh", "shin", "foot",
    }  # fmt: skip
    bad_part = tmp_path / "bad_part.yaml"
    bad_part.write_text("groups:\n  wing:\n    parts: [wing]\n    words: [wings]\n")
    with pytest.raises(InputError, match="unknown part 'wing'"):
        load_vocabulary(bad_part)
    twice = tmp_path / "twice.yaml"
    twice.write_text("parts:\n  head: [face]\n  torso: [faces]\n")
    with pytest.raises(InputError, match="used twice"):
        load_vocabulary(twice)
    with pytest.raises(InputError, match="not found"):
        load_vocabulary(tmp_path / "missing.yaml")


def test_import_does_not_load_torch() -> None:
    code = "import sys, openhuman.query; assert 'torch' not in sys.modules, 'torch imported'"
    subprocess.run([sys.executable, "-c", code], check=True)
