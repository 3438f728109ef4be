"""What ``identify()`` keeps of the traits a site passes: an allow-list, coarsened (pure).

``age`` becomes ``age_band`` (``"30-39"``), a postal code becomes ``zip3`` (its first three
digits); ``gender`` and ``occupation`` are kept scrubbed; anything else is dropped.
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping
from typing import Any

from consent_mw.capture.fields import clean_text

TRAIT_MAX = 64
_ZIP_FOLD = {cp: cp - 0xFEE0 for cp in range(0xFF10, 0xFF1A)}  # full-width digits


def age_band(value: object) -> str | None:
    """``"30-39"`` from an age; a band the site already computed is kept if well-formed."""
    if isinstance(value, bool):
        return None
    if isinstance(value, str):
        text = value.strip()
        if re.fullmatch(r"\d{1,3}", text):
            value = int(text)
        elif re.fullmatch(r"\d{1,2}0-\d{1,2}9|\d{2,3}\+", text):
            return text
        else:
            return None
    if isinstance(value, float) and math.isfinite(value):
        value = int(value)
    if not isinstance(value, int) or not 0 <= value <= 130:
        return None
    if value >= 90:
        return "90+"
    low = value // 10 * 10
    return f"{low}-{low + 9}"


def zip3(value: object) -> str | None:
    """The first 3 digits of a (Japanese) postal code: ``"〒170-0013"`` → ``"170"``."""
    if isinstance(value, int) and not isinstance(value, bool):
        value = f"{value:07d}" if value < 10_000_000 else str(value)
    if not isinstance(value, str):
        return None
    digits = "".join(ch for ch in value.translate(_ZIP_FOLD) if "0" <= ch <= "9")
    return digits[:3] if len(digits) >= 3 else None


def clean_traits(traits: Mapping[str, Any] | None) -> dict[str, str]:
    """Only allow-listed traits (``wire.TRAITS``): ``age`` → ``age_band``, ``zip`` → ``zip3``."""
    out: dict[str, str] = {}
    if not traits:
        return out
    band = age_band(traits["age_band"]) if "age_band" in traits else None
    if band is None and "age" in traits:
        band = age_band(traits["age"])
    if band:
        out["age_band"] = band
    z = zip3(traits["zip3"]) if "zip3" in traits else None
    if z is None:
        for key in ("zip", "zip_code", "postal_code"):
            if key in traits:
                z = zip3(traits[key])
                break
    if z:
        out["zip3"] = z
    for key in ("gender", "occupation"):
        value = traits.get(key)
        if isinstance(value, str):
            text = clean_text(value, TRAIT_MAX)
            if text:
                out[key] = text
    return out
