"""Device types of KB entries and messages, for the device-type mismatch penalty.

Many wrong answers pair a question about one kind of device with an entry written for another
(a doorbell question and a camera-only entry, a recorder question and the camera-offline entry,
a camera siren and the lock alarm): the symptom words match, the device does not. Types come
from synonym concepts (device_types.txt); an entry's types are derived from its own text when
the index is built, a message's only from device words it names itself.
"""

from __future__ import annotations

import logging
from collections.abc import Collection, Iterable, Sequence
from functools import cache

from .text import data_lines, normalize, synonyms

__all__ = [
    "DEVICE_TYPES",
    "conflicts",
    "device_concepts",
    "entry_types",
    "message_types",
    "type_names",
    "unknown_concepts",
]

_log = logging.getLogger(__name__)

DEVICE_TYPES: tuple[str, ...] = (
    "camera",
    "ptz",
    "4g",
    "recorder",
    "doorbell",
    "lock",
    "app",
    "cloud",
)
_BIT = {t: 1 << i for i, t in enumerate(DEVICE_TYPES)}
_SERVICES = _BIT["app"] | _BIT["cloud"]
_DEVICES = sum(_BIT.values()) & ~_SERVICES
# A PTZ or 4G camera is a camera: "云台摄像头" questions may be answered by a camera entry and
# "摄像头" questions by a PTZ one. Only families are compared.
_FAMILY = {"ptz": "camera", "4g": "camera"}

# How much each part of an entry says about what it is about: the question most, the
# alternates together as much (each their share, so one passing mention among four phrasings
# does not type the entry), tags half, and the answer, which names many things in passing
# ("在安视云App里…", "录像机或摄像头"), a quarter.
_QUESTION_WEIGHT = 1.0
_ALTERNATES_WEIGHT = 1.0
_TAGS_WEIGHT = 0.5
_ANSWER_WEIGHT = 0.25
# A device type needs the question's worth of evidence (or most alternates plus tags/answer):
# "设备名称怎么改" with one "给摄像头改名字" among its alternates is about naming any device.
_MIN_TYPE_SCORE = 1.0


@cache
def _concept_bits() -> tuple[dict[str, int], dict[str, int]]:
    """(concepts that name a device or service, concepts that imply one) -> type bit."""
    named: dict[str, int] = {}
    implied: dict[str, int] = {}
    known = set(synonyms())
    for line in data_lines("device_types.txt"):
        parts = line.split()
        concept, kind = normalize(parts[0]), parts[1]
        if kind not in _BIT:
            raise ValueError(f"device_types.txt: unknown type {kind!r} in {line!r}")
        if concept not in known:
            # synonyms.txt is edited independently: a concept renamed there switches the
            # penalty off for that device, which is logged (and caught by the tests), not fatal.
            _log.warning("device_types.txt: %r is not a synonyms.txt concept", concept)
            continue
        feature = len(parts) > 2 and parts[2] == "feature"
        implied[concept] = implied.get(concept, 0) | _BIT[kind]
        if not feature:
            named[concept] = named.get(concept, 0) | _BIT[kind]
    return named, implied


def unknown_concepts() -> list[str]:
    """Concepts listed in device_types.txt that synonyms.txt does not define (should be none)."""
    known = set(synonyms())
    return [
        c
        for c in (normalize(line.split()[0]) for line in data_lines("device_types.txt"))
        if c not in known
    ]


@cache
def device_concepts() -> frozenset[str]:
    """Concepts that name a device (摄像头, 录像机, 门铃, 智能锁...), not services or features."""
    return frozenset(c for c, bit in _concept_bits()[0].items() if bit & _DEVICES)


def _family(mask: int) -> int:
    out = mask
    for member, head in _FAMILY.items():
        if mask & _BIT[member]:
            out = (out & ~_BIT[member]) | _BIT[head]
    return out


def message_types(concepts: Iterable[str]) -> int:
    """Device types (bit mask) a message names explicitly; services do not count."""
    named = _concept_bits()[0]
    mask = 0
    for c in concepts:
        mask |= named.get(c, 0)
    return mask & _DEVICES


def _bits(concepts: Iterable[str]) -> int:
    implied = _concept_bits()[1]
    mask = 0
    for c in concepts:
        mask |= implied.get(c, 0)
    return mask


def entry_types(
    question: Collection[str],
    alternates: Sequence[Collection[str]] = (),
    tags: Collection[str] = (),
    answer: Collection[str] = (),
) -> int:
    """Types (bit mask) a KB entry is specifically about, from the concepts of its fields.

    Returns only service bits when the entry is mainly about the App, an account or the cloud
    (such an entry is generic for every device), device bits when it is about devices, and 0
    when it names no type strongly enough (warranty, invoices, naming).
    """
    score = dict.fromkeys(DEVICE_TYPES, 0.0)
    parts: list[tuple[int, float]] = [(_bits(question), _QUESTION_WEIGHT)]
    if alternates:
        share = _ALTERNATES_WEIGHT / len(alternates)
        parts += [(_bits(a), share) for a in alternates]
    parts += [(_bits(tags), _TAGS_WEIGHT), (_bits(answer), _ANSWER_WEIGHT)]
    for mask, weight in parts:
        for t in DEVICE_TYPES:
            if mask & _BIT[t]:
                score[t] += weight
    best_device = max(score[t] for t in DEVICE_TYPES if _BIT[t] & _DEVICES)
    best_service = max(score["app"], score["cloud"])
    if best_service > 0.0 and best_service >= best_device:
        # "用App对讲听不到声音", "添加设备提示已被其他账号绑定": the device word is incidental.
        return sum(_BIT[t] for t in ("app", "cloud") if score[t] == best_service)
    return sum(_BIT[t] for t in DEVICE_TYPES if _BIT[t] & _DEVICES and score[t] >= _MIN_TYPE_SCORE)


def conflicts(message: int, entry: int) -> bool:
    """True if the message names a device and the entry is specific to a different one."""
    if not message or entry & _SERVICES or not entry & _DEVICES:
        return False
    return not (_family(message) & _family(entry))


def type_names(mask: int) -> frozenset[str]:
    """The type names in a bit mask."""
    return frozenset(t for t in DEVICE_TYPES if mask & _BIT[t])
