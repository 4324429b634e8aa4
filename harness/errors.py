"""Error types. A HarnessError is a user-facing problem: the CLI prints its message, never a traceback."""

from __future__ import annotations

import difflib
import unicodedata
from collections.abc import Iterable


class HarnessError(Exception):
    """A problem the user can fix (bad input, missing file, unknown name). Message is one paragraph."""


class ConfigError(HarnessError):
    """Malformed suite or task file: the message names the file and the key."""


class FieldError(ConfigError):
    """A setting out of range, raised by a config dataclass's ``__post_init__``: `owner` names what it belongs
    to when built from Python; the schema engine (harness.typed_config) reports it as ``FILE: key 'a.b' ...``."""

    def __init__(self, owner: str, field: str, message: str) -> None:
        super().__init__(f"{owner}: key '{field}' {message}")
        self.field = field
        self.message = message


class DataError(HarnessError):
    """Dataset missing, empty, or with labels outside the declared set."""


class NotApplicable(Exception):
    """This (model, protocol, task) combination cannot run; recorded with the reason, not as a failure."""


class ModelOutputError(Exception):
    """A model produced unusable output (NaN/inf features or scores)."""


class FromInteger(str):
    """A string setting the YAML file wrote as an integer (``protocols: [3]``): the schema engine
    (harness.typed_config) accepts it as the string "3", and messages about it say what was written."""

    __slots__ = ()


def quoted(name: str) -> str:
    """A name as a message shows it: "name", or an integer the file wrote as one as that integer."""
    return f"{name} (an integer)" if isinstance(name, FromInteger) else f'"{name}"'


def closest(name: str, candidates: Iterable[str]) -> str | None:
    """The candidate `name` most likely misspells: the one equal to it but for case and surrounding or repeated
    whitespace ("B " for "b"), else the closest by spelling; None when none is close."""
    cands = list(candidates)
    folded = " ".join(name.split()).casefold()
    same = [c for c in cands if " ".join(c.split()).casefold() == folded and c != name]
    if len(same) == 1:
        return same[0]
    matches = difflib.get_close_matches(name, cands, n=1, cutoff=0.5)
    return matches[0] if matches else None


def close_match(name: str, candidates: Iterable[str]) -> str:
    """' Did you mean "x"?' for the closest candidate (see `closest`), or '' when none is close."""
    candidates = list(candidates)
    same = [c for c in candidates if spelled_apart(c, name)]
    if same:  # prints exactly like the name given: say how they differ, or the suggestion reads as nonsense
        return (
            f' "{same[0]}" looks the same but is written with other Unicode code points ({code_points(same[0])}, '
            f"given: {code_points(name)}; one composed, one decomposed): use the stored spelling."
        )
    match = closest(name, candidates)
    return f' Did you mean "{match}"?' if match is not None else ""


def spelled_apart(a: str, b: str) -> bool:
    """`a` and `b` print alike but are other code points: equal after NFC (one composed, one decomposed)."""
    return a != b and unicodedata.normalize("NFC", a) == unicodedata.normalize("NFC", b)


def code_points(text: str) -> str:
    shown = " ".join(f"U+{ord(ch):04X}" for ch in text[:40])
    return shown if len(text) <= 40 else f"{shown} ..."


def unknown_name(kind: str, name: str, candidates: Iterable[str]) -> HarnessError:
    cands = sorted(candidates)
    return HarnessError(
        f"Unknown {kind} {quoted(name)}.{close_match(name, cands)} Available: {', '.join(cands) or '(none)'}."
    )
