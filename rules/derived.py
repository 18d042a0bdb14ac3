"""The resources the rules write: z-score Observations, Flags and draft referral ServiceRequests.

Every one carries the `derived` tag (meta.tag, data-origin system) and a deterministic id, so a
re-post finds and rewrites the same resource instead of adding another, and the rules never touch
a resource they did not write.
"""

from __future__ import annotations

import datetime as dt
import hashlib

from clinical import Indicator, IndicatorResult, codes
from rules.fhir_in import Resource
from rules.growth_days import GrowthDay

DERIVED_TAG = {"system": codes.DATA_ORIGIN_SYSTEM, "code": "derived", "display": "Derived by Puente clinical rules"}
_MAX_ID = 64

INDICATOR_DISPLAY = {
    Indicator.WFA: "Weight-for-age z-score",
    Indicator.LHFA: "Length/height-for-age z-score",
    Indicator.WFLH: "Weight-for-length/height z-score",
    Indicator.BFA: "BMI-for-age z-score",
    Indicator.HCFA: "Head circumference-for-age z-score",
    Indicator.ACFA: "Arm circumference-for-age z-score",
}

# Flag kinds: (display, refer to a facility?)
FLAG_KINDS = {
    "severe-anaemia": ("Severe anaemia", True),
    "sam": ("Severe acute malnutrition", True),
    "severe-stunting": ("Severe stunting", False),
}
# What a CHW or supervisor reads (the programme works in Spanish); the English display stays on the coding.
FLAG_TEXT_ES = {
    "severe-anaemia": "Anemia severa",
    "sam": "Desnutrición aguda severa",
    "severe-stunting": "Desnutrición crónica severa (talla baja severa)",
}


def derived_id(base: str, suffix: str) -> str:
    """`{base}-{suffix}`, or a digest of `base` when that would pass FHIR's 64-character id limit."""
    candidate = f"{base}-{suffix}"
    if len(candidate) <= _MAX_ID:
        return candidate
    digest = hashlib.blake2b(base.encode(), digest_size=16).hexdigest()
    return f"{digest}-{suffix}"[:_MAX_ID]


def is_derived(resource: Resource) -> bool:
    tags = (resource.get("meta") or {}).get("tag") or ()
    return any(t.get("system") == DERIVED_TAG["system"] and t.get("code") == DERIVED_TAG["code"] for t in tags)


def same_content(a: Resource, b: Resource) -> bool:
    """Equal apart from id and the server's meta stamps (re-posting changes nothing)."""
    def strip(r: Resource) -> Resource:
        meta = {k: v for k, v in (r.get("meta") or {}).items() if k not in ("versionId", "lastUpdated")}
        return {**{k: v for k, v in r.items() if k not in ("id", "meta")}, "meta": meta}

    return strip(a) == strip(b)


def _ref(resource_type: str, resource_id: str) -> dict[str, str]:
    return {"reference": f"{resource_type}/{resource_id}"}


def zscore_observation(
    patient_id: str, day: GrowthDay, indicator: Indicator, result: IndicatorResult, ruleset: str
) -> Resource:
    sources = day.sources(indicator)
    anchor = sources[0]
    display = INDICATOR_DISPLAY[indicator]
    observation: Resource = {
        "resourceType": "Observation",
        "id": derived_id(anchor.id, indicator.value),
        "meta": {"tag": [DERIVED_TAG]},
        "status": "preliminary" if any(m.status == "preliminary" for m in sources) else "final",
        "category": [{"coding": [{"system": codes.OBSERVATION_CATEGORY, "code": "exam", "display": "Exam"}]}],
        "code": {
            "coding": [{"system": codes.GROWTH_INDICATOR_SYSTEM, "code": indicator.value, "display": display}],
            "text": f"{display} (WHO Child Growth Standards)",
        },
        "subject": _ref("Patient", patient_id),
        "effectiveDateTime": anchor.when,
        "valueQuantity": {"value": result.zscore, "unit": "z-score", "system": codes.UCUM, "code": "{z-score}"},
        "method": {
            "coding": [{"system": codes.RULESET_SYSTEM, "code": ruleset}],
            "text": f"WHO Child Growth Standards, rule set {ruleset}",
        },
        "derivedFrom": [_ref("Observation", m.id) for m in sources],
    }
    interpretations: list[Resource] = []
    if result.classification:
        classification = {"system": codes.GROWTH_CLASSIFICATION_SYSTEM, "code": result.classification}
        interpretations.append({"coding": [classification]})
    if result.implausible:
        interpretations.append({
            "coding": [{"system": codes.GROWTH_CLASSIFICATION_SYSTEM, "code": "implausible"}],
            "text": "Outside WHO's plausible range: check the measurement",
        })
    if interpretations:
        observation["interpretation"] = interpretations
    notes = []
    if day.result is not None and day.result.position_adjustment_cm and any(
            m.kind.value in ("length", "height") for m in sources):
        notes.append({"text": f"Length/height adjusted by {day.result.position_adjustment_cm} cm for the position "
                              "measured (WHO: lying under 731 days, standing from 731 days)"})
    if notes:
        observation["note"] = notes
    return observation


def flag_resource(
    flag_id: str, kind: str, patient_id: str, start: dt.date, evidence: list[str], status: str = "active"
) -> Resource:
    display = FLAG_KINDS[kind][0]
    text = FLAG_TEXT_ES[kind]
    flag: Resource = {
        "resourceType": "Flag",
        "id": flag_id,
        "meta": {"tag": [DERIVED_TAG]},
        "status": status,
        "category": [{"coding": [{"system": codes.FLAG_CATEGORY, "code": "clinical", "display": "Clinical"}]}],
        "code": {"coding": [{"system": codes.CLINICAL_FLAG_SYSTEM, "code": kind, "display": display}], "text": text},
        "subject": _ref("Patient", patient_id),
        "period": {"start": start.isoformat()},
    }
    set_flag_evidence(flag, evidence)
    return flag


def referral_draft(
    request_id: str, kind: str, patient_id: str, authored: str, evidence: list[str]
) -> Resource:
    display = FLAG_KINDS[kind][0]
    text = FLAG_TEXT_ES[kind]
    referral = {"system": codes.SNOMED, "code": codes.SNOMED_PATIENT_REFERRAL, "display": "Patient referral"}
    return {
        "resourceType": "ServiceRequest",
        "id": request_id,
        "meta": {"tag": [DERIVED_TAG]},
        "status": "draft",
        "intent": "proposal",
        "priority": "urgent",
        "code": {"coding": [referral], "text": f"Propuesta de referencia: {text.lower()}"},
        "subject": _ref("Patient", patient_id),
        "authoredOn": authored,
        "reasonCode": [{"coding": [{"system": codes.CLINICAL_FLAG_SYSTEM, "code": kind, "display": display}],
                        "text": text}],
        "reasonReference": [{"reference": e} for e in evidence],
        "note": [{"text": "Propuesta por las reglas clínicas de Puente a partir de las mediciones en "
                          "reasonReference; un(a) ACS o supervisor(a) la confirma (status active) o la anula "
                          "(revoked). / Proposed by Puente's clinical rules; a CHW or supervisor confirms or "
                          "revokes it."}],
    }


def flag_evidence(flag: Resource) -> list[str]:
    found = []
    for extension in flag.get("extension") or ():
        reference = (extension.get("valueReference") or {}).get("reference")
        if extension.get("url") == codes.FLAG_DETAIL_EXTENSION and isinstance(reference, str):
            found.append(reference)
    return found


def referral_evidence(request: Resource) -> list[str]:
    return [str(r["reference"]) for r in request.get("reasonReference") or () if isinstance(r.get("reference"), str)]


def set_flag_evidence(flag: Resource, evidence: list[str]) -> None:
    others = [e for e in flag.get("extension") or () if e.get("url") != codes.FLAG_DETAIL_EXTENSION]
    ours = [{"url": codes.FLAG_DETAIL_EXTENSION, "valueReference": {"reference": e}} for e in evidence]
    if others or ours:
        flag["extension"] = ours + others
    else:
        flag.pop("extension", None)
