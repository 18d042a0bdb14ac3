"""FHIR's logical id (R4 datatypes.html#id): up to 64 letters, digits, '-' and '.'. The one definition
that validation, reference parsing, the OpenAPI document and the CLI all use."""

from __future__ import annotations

import re

ID_CHARACTERS = r"[A-Za-z0-9\-.]{1,64}"
ID_PATTERN = f"^{ID_CHARACTERS}$"  # as JSON Schema and OpenAPI write it
ID = re.compile(ID_PATTERN)
RESOURCE_TYPE_CHARACTERS = r"[A-Z][A-Za-z]+"
RELATIVE_REFERENCE = re.compile(rf"^(?P<type>{RESOURCE_TYPE_CHARACTERS})/(?P<id>{ID_CHARACTERS})$")


def is_id(text: object) -> bool:
    return isinstance(text, str) and ID.match(text) is not None
