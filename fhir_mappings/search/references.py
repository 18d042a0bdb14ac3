"""Reading reference strings the same way when indexing and when querying."""

from __future__ import annotations

import functools
import re
from collections.abc import Container
from dataclasses import dataclass

from fhir_mappings.ids import ID as ID
from fhir_mappings.ids import ID_CHARACTERS

_ID = ID_CHARACTERS
_RELATIVE = re.compile(rf"^(?P<type>[A-Z][A-Za-z]+)/(?P<id>{_ID})(?:/_history/(?P<version>{_ID}))?$")
_TAIL = re.compile(rf"/(?P<type>[A-Z][A-Za-z]+)/(?P<id>{_ID})(?:/_history/(?P<version>{_ID}))?$")


@dataclass(frozen=True, slots=True)
class ParsedReference:
    """A local reference (`target_type`/`target_id`), or a `url` (external, urn:, canonical).

    External URLs keep `target_type` when their tail reads `.../Type/id`, so type filters still apply.
    A canonical's `|version` goes to `version`.
    """

    target_type: str | None
    target_id: str | None
    version: str | None
    url: str | None


# A CHW's day writes the same few references (the child, the CHW, the facility) over and over.
@functools.lru_cache(maxsize=8192)
def parse_reference(
    text: str, resource_types: Container[str], base_url: str | None = None, *, canonical: bool = False
) -> ParsedReference | None:
    """Classify a reference string; None for a contained (`#id`) reference or an empty string.

    A `canonical` (a canonical/uri element) is an identity, not a location: it always stays a `url`.
    """
    text = text.strip()
    if not text or text.startswith("#"):
        return None
    if canonical:
        url, _, version = text.partition("|")
        tail = _TAIL.search(url)
        return ParsedReference(
            tail["type"] if tail and tail["type"] in resource_types else None, None, version or None, url
        )
    local = text
    if base_url:
        base = base_url.rstrip("/") + "/"
        if text.startswith(base):
            local = text[len(base) :]
    m = _RELATIVE.match(local)
    if m and m["type"] in resource_types:
        return ParsedReference(m["type"], m["id"], m["version"], None)
    url, _, version = text.partition("|")
    tail = _TAIL.search(url)
    target_type = tail["type"] if tail and tail["type"] in resource_types else None
    return ParsedReference(target_type, None, version or None, url)
