"""String normalisation shared by indexing and querying, so both sides compare alike."""

from __future__ import annotations

import unicodedata


def normalise(text: str) -> str:
    """Case- and accent-insensitive form: NFKD, combining marks dropped, casefolded ("Nuñez" -> "nunez")."""
    if text.isascii():
        return text.casefold()
    decomposed = unicodedata.normalize("NFKD", text)
    return "".join(ch for ch in decomposed if not unicodedata.combining(ch)).casefold()
