"""Names that look alike compare alike: userName and displayName under NFKC and case folding.

``user`` in fullwidth letters (U+FF55...), ``user`` + U+200B (a zero-width space)
and `` user `` (padded) would each be a separate account to a byte-wise
comparison, and to a person they are one name: an attacker's way to shadow an account. With an app's
``normalize_names`` (on by default), the service writes these names in their
clean form (:func:`clean_name`) and every built-in adapter compares them by
:func:`compare_key`. Pure functions: the adapters and the service call them.
"""

from __future__ import annotations

import re
import unicodedata

__all__ = ["clean_name", "compare_key"]

_SPACES = re.compile(r"\s+")


def clean_name(value: str) -> str:
    """NFKC, without invisible format characters (zero-width space, joiners, BOM, soft
    hyphen: Unicode category Cf), runs of white space made one space, trimmed."""
    text = unicodedata.normalize("NFKC", value)
    if not text.isascii():
        text = "".join(ch for ch in text if unicodedata.category(ch) != "Cf")
    return _SPACES.sub(" ", text).strip()


def compare_key(value: str) -> str:
    """What two names are compared by for uniqueness: clean, case-folded, NFKC again
    (case folding can undo NFKC, e.g. for some ligatures)."""
    return unicodedata.normalize("NFKC", clean_name(value).casefold())
