"""Hypothesis strategies for hostile and broken FHIR input: JSON shaped like resources and Bundles,
with the values that broke the server before (deep nesting, lone surrogates, huge numbers, long
arrays, odd Unicode) mixed into plausible ones."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from hypothesis import strategies as st

from fhir_mappings import fhir_json

RESOURCE_TYPES = ["Patient", "Observation", "ServiceRequest", "Bundle", "Parameters", "Binary", "Nope", "", "patient"]
KEYS = [
    "resourceType", "id", "meta", "name", "family", "given", "identifier", "system", "value", "gender",
    "birthDate", "extension", "url", "valueString", "valueQuantity", "code", "coding", "status", "subject",
    "reference", "contained", "entry", "resource", "request", "method", "fullUrl", "ifNoneExist", "ifMatch",
    "text", "div", "_birthDate", "", "💥", "a" * 70,
]
HOSTILE_STRINGS = [
    "\ud800", "a\udfffb", "\x00", "\u202e", "Nuñez", "45871236", "https://x|1", "urn:uuid:not-a-uuid",
    "Patient/../../x", "Patient?identifier=", "=", "&&", "%", "\\", "x" * 5000, "2024-02-30", "T", "-",
]
HOSTILE_NUMBERS = [
    Decimal("1e999999999"), Decimal("-1e-999999999"), Decimal("1." + "0" * 500), 10**40, -(2**63), 2**31,
    Decimal("72.50"), Decimal("0"), Decimal("-0.0"), 0, 1, -1,
]

leaves = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(min_value=-(2**40), max_value=2**40),
    st.decimals(allow_nan=False, allow_infinity=False, places=None),
    st.sampled_from(HOSTILE_NUMBERS),
    st.text(max_size=20),
    st.sampled_from(HOSTILE_STRINGS),
)
json_values = st.recursive(
    leaves,
    lambda children: st.one_of(
        st.lists(children, max_size=4),
        st.dictionaries(st.one_of(st.sampled_from(KEYS), st.text(max_size=8)), children, max_size=5),
    ),
    max_leaves=25,
)


@st.composite
def resources(draw: st.DrawFn) -> dict[str, Any]:
    """A dict that looks more or less like a resource."""
    body = draw(st.dictionaries(st.sampled_from(KEYS), json_values, max_size=6))
    body["resourceType"] = draw(st.sampled_from(RESOURCE_TYPES))
    return body


REQUEST_URLS = st.one_of(
    st.sampled_from([
        "Patient", "Patient/1", "Patient/1/_history/1", "Patient/1/_history/¹",
        "Patient/1/_history/99999999999999999999",
        "Patient?identifier=https://x|1", "Patient?=", "Observation?subject.organization.partof.partof.name=x",
        "Patient/_search", "metadata", "", "/", "Patient/$nutrition-status", "urn:uuid:x", "Nope/1",
    ]),
    st.text(max_size=30),
)


@st.composite
def bundles(draw: st.DrawFn) -> dict[str, Any]:
    entries = []
    for _ in range(draw(st.integers(min_value=0, max_value=5))):
        entry: dict[str, Any] = {}
        if draw(st.booleans()):
            entry["fullUrl"] = draw(st.one_of(st.uuids().map(lambda u: f"urn:uuid:{u}"), st.text(max_size=20)))
        if draw(st.booleans()):
            entry["resource"] = draw(resources())
        request: dict[str, Any] = {
            "method": draw(st.sampled_from(["GET", "POST", "PUT", "PATCH", "DELETE", "HEAD", "get", "", "TRACE"])),
            "url": draw(REQUEST_URLS),
        }
        for field in ("ifNoneExist", "ifMatch", "ifNoneMatch", "ifModifiedSince"):
            if draw(st.integers(0, 4)) == 0:
                request[field] = draw(st.one_of(st.sampled_from(HOSTILE_STRINGS), st.text(max_size=15)))
        entry["request"] = draw(st.one_of(st.just(request), json_values))
        entries.append(entry)
    bundle: dict[str, Any] = {
        "resourceType": draw(st.sampled_from(["Bundle", "Bundle", "Bundle", "Patient"])),
        "type": draw(st.sampled_from(["transaction", "batch", "collection", "searchset", "", "nope"])),
        "entry": entries,
    }
    return bundle


def encode(value: Any) -> bytes:
    """JSON bytes, lone surrogates and all (orjson refuses them; json.dumps escapes them)."""
    try:
        return fhir_json.dumps(value)
    except TypeError:
        import json

        return json.dumps(value, default=str).encode()


# Whole bodies: well-formed JSON of hostile shapes, or bytes that are almost JSON.
bodies = st.one_of(
    resources().map(encode),
    bundles().map(encode),
    st.binary(max_size=200),
    st.integers(min_value=1, max_value=3000).map(
        lambda n: b'{"resourceType":"Patient","a":' + b"[" * n + b"]" * n + b"}"
    ),
    st.sampled_from([b'{"a":1e999999999}', b'{"a":"\\ud800"}', b"[" * 100_000, b'{"a":' + b"9" * 5000 + b"}"]),
)
