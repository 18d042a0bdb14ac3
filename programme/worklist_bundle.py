"""A worklist as a FHIR searchset Bundle: one entry per patient, the reasons on the entry.

Each entry is the Patient (search.mode `match`); `entry.search.extension` carries one
`worklist-reason` extension per reason, with the reason's code (Puente's code system, English display)
and text in Spanish, the detail, and the resource it is about (a ServiceRequest, an Observation).
Pages are `_count` entries, `_offset` on from the first; the list is computed afresh on each call.
"""

from __future__ import annotations

from typing import Any
from urllib.parse import urlencode

from clinical import codes
from programme.worklist import REASONS, Entry

REASON_SYSTEM = f"{codes.PUENTE_CODE_SYSTEM_BASE}/worklist-reason"
REASON_EXTENSION = f"{codes.PUENTE_FHIR_BASE}/StructureDefinition/worklist-reason"


def reason_extension(code: str, detail: str, focus: str | None) -> dict[str, Any]:
    spanish, english = REASONS[code]
    parts: list[dict[str, Any]] = [
        {
            "url": "code",
            "valueCodeableConcept": {
                "coding": [{"system": REASON_SYSTEM, "code": code, "display": english}],
                "text": spanish,
            },
        },
        {"url": "detail", "valueString": detail},
    ]
    if focus:
        parts.append({"url": "focus", "valueReference": {"reference": focus}})
    return {"url": REASON_EXTENSION, "extension": parts}


def worklist_bundle(
    entries: list[Entry],
    *,
    base_url: str,
    self_query: list[tuple[str, str]],
    offset: int,
    count: int,
    timestamp: str,
) -> dict[str, Any]:
    page = entries[offset : offset + count]

    def link(at: int) -> str:
        query = [(k, v) for k, v in self_query if k not in ("_offset", "_count")]
        return f"{base_url}/$worklist?{urlencode([*query, ('_count', str(count)), ('_offset', str(at))])}"

    links = [{"relation": "self", "url": link(offset)}]
    if offset + count < len(entries):
        links.append({"relation": "next", "url": link(offset + count)})
    if offset > 0:
        links.append({"relation": "previous", "url": link(max(0, offset - count))})
    return {
        "resourceType": "Bundle",
        "type": "searchset",
        "meta": {"lastUpdated": timestamp},
        "total": len(entries),
        "link": links,
        "entry": [
            {
                "fullUrl": f"{base_url}/Patient/{e.patient_id}",
                "resource": e.patient,
                "search": {
                    "mode": "match",
                    "extension": [reason_extension(r.code, r.detail, r.focus) for r in e.reasons],
                },
            }
            for e in page
        ],
    }
