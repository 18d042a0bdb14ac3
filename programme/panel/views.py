"""The dashboard's pages: each reads through the caller's repository and returns Spanish HTML."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

from clinical import codes
from clinical.growth_tables import SEX_CODES
from fhir_mappings import fhir_json
from fhir_mappings.outcomes import NotFound
from programme import measures, scope
from programme.panel.charts import growth_chart, hemoglobin_chart
from programme.panel.layout import e, href, page
from programme.period import Period
from programme.records import PatientRecord, Resource, effective_day, has_coding, load_records, reference_id
from programme.worklist import REASONS, anaemia_class, hemoglobins, worklist
from storage.repository import FhirRepository
from storage.versions import fhir_instant

SEVERITY = {"none": "sin anemia", "mild": "leve", "moderate": "moderada", "severe": "severa"}
PANEL_MEASURES = (
    "puente-screening-coverage",
    "puente-anaemia-prevalence",
    "puente-stunting-prevalence",
    "puente-wasting-prevalence",
    "puente-underweight-prevalence",
    "puente-referral-completion",
)


def _name(patient: Resource) -> str:
    for name in patient.get("name") or ():
        if isinstance(name, dict):
            text = name.get("text") or " ".join([*(name.get("given") or ()), name.get("family") or ""]).strip()
            if text:
                return str(text)
    return str(patient.get("id"))


def _age(patient: Resource, on: dt.date) -> str:
    born = PatientRecord(patient).birth_date()
    if born is None:
        return ""
    days = (on - born).days
    if days < 61:
        return f"{days} días"
    if days < 731:
        return f"{days * 12 // 365} meses"
    return f"{days // 365} años"


async def _label(repository: FhirRepository, subject: scope.Subject) -> str:
    found = (await repository.read_many(subject.resource_type, [subject.id])).get(subject.id)
    if found is None or found.deleted or not found.content:
        raise NotFound(f"{subject.reference} is not known")
    resource = fhir_json.loads_stored(found.content)
    return str(resource.get("name") or subject.reference)


async def home(repository: FhirRepository, month: str) -> str:
    """The sectors and care teams the supervisor can choose, for this month."""
    sectors = await repository.search_matches("Location", [("partof:missing", "false")])
    teams = await repository.search_matches("CareTeam", [("status", "active")])
    rows = []
    for kind, found in (("Location", sectors), ("CareTeam", teams)):
        versions = await repository.read_many(kind, [rid for _, rid in found])
        for rid in sorted(versions):
            content = versions[rid].content
            resource = fhir_json.loads_stored(content) if content else {}
            ref = f"{kind}/{rid}"
            key = "location" if kind == "Location" else "careteam"
            rows.append(
                f"<tr><td>{e(resource.get('name') or ref)}</td>"
                f'<td><a href="{href("/panel/lista", **{key: ref, "mes": month})}">Lista de trabajo</a></td>'
                f'<td><a href="{href("/panel/indicadores", **{key: ref, "mes": month})}">Indicadores</a></td></tr>'
            )
    form = (
        f'<form method="get" action="/panel/"><label>Mes <input name="mes" value="{e(month)}" '
        'pattern="[0-9]{4}-[0-9]{2}" size="7"></label><button>Ver</button></form>'
    )
    table = (
        "<table><tr><th>Sector o equipo</th><th></th><th></th></tr>" + "".join(rows) + "</table>"
        if rows
        else "<p>No hay sectores ni equipos que usted pueda ver.</p>"
    )
    return page("Panel de supervisión", form + table)


async def worklist_page(repository: FhirRepository, subject: scope.Subject, period: Period, month: str) -> str:
    label = await _label(repository, subject)
    records = await load_records(repository, await scope.patients_in_scope(repository, subject))
    entries = worklist(records, period)
    rows = []
    for entry in entries:
        reasons = "".join(
            f'<div class="r">{e(REASONS[r.code][0])}: {e(r.detail)}'
            + (
                f' · <a href="{href("/panel/referencia/" + r.focus.split("/", 1)[1])}">ver</a>'
                if r.focus and r.focus.startswith("ServiceRequest/")
                else ""
            )
            + "</div>"
            for r in entry.reasons
        )
        rows.append(
            f'<tr><td><a href="{href("/panel/nino/" + entry.patient_id)}">{e(_name(entry.patient))}</a>'
            f'<div class="muted">{e(_age(entry.patient, period.last_day))}</div></td><td>{reasons}</td></tr>'
        )
    body = (
        f"<p>{e(label)} · {e(month)} · {len(entries)} personas</p>"
        "<table><tr><th>Persona</th><th>Motivo</th></tr>" + "".join(rows) + "</table>"
    )
    return page("Lista de trabajo", body)


def _percent(score: object) -> str:
    if not isinstance(score, dict) or "value" not in score:
        return "-"
    if score.get("unit") == "d":
        return f"{score['value']:g} días"
    return f"{float(score['value']) * 100:.1f} %"


async def indicators_page(repository: FhirRepository, subject: scope.Subject, period: Period, month: str) -> str:
    label = await _label(repository, subject)
    records = await load_records(repository, await scope.patients_in_scope(repository, subject))
    sections = []
    for measure_id in PANEL_MEASURES:
        definition = measures.MEASURES[measure_id]
        report = measures.evaluate(definition, records, period, subject.reference, subject_list=False, generated="")
        rows = []
        for group, spec in zip(report["group"], definition.groups, strict=True):
            pops = {p["code"]["coding"][0]["code"]: p["count"] for p in group["population"]}
            rows.append(
                f"<tr><td>{e(spec.title)}</td><td class=n>{pops['numerator']}</td>"
                f"<td class=n>{pops['denominator']}</td><td class=n>{_percent(group.get('measureScore'))}</td></tr>"
            )
        sections.append(
            f"<h2>{e(definition.title)}</h2><table><tr><th>Indicador</th><th>Casos</th>"
            "<th>Población</th><th>Valor</th></tr>" + "".join(rows) + "</table>"
        )
    return page("Indicadores", f"<p>{e(label)} · {e(month)}</p>" + "".join(sections))


def _state(task: Resource | None, request: Resource) -> str:
    if task is None:
        return str(request.get("status"))
    return TASK_STATES.get(str(task.get("status")), str(task.get("status")))


def _values(record: PatientRecord, loinc: tuple[str, ...]) -> list[tuple[dt.date, float]]:
    out = []
    for o in record.observations:
        value = (o.get("valueQuantity") or {}).get("value")
        day = effective_day(o)
        if day and isinstance(value, int | float | Decimal) and has_coding(o.get("code"), codes.LOINC, loinc):
            out.append((day, float(value)))
    return sorted(out)


async def child_page(repository: FhirRepository, patient_id: str) -> str:
    patients = await repository.read_many("Patient", [patient_id])
    version = patients.get(patient_id)
    if version is None or version.deleted or not version.content:
        raise NotFound(f"Patient/{patient_id} is not known")
    record = next(iter(await load_records(repository, [fhir_json.loads_stored(version.content)])))
    born, sex = record.birth_date(), SEX_CODES.get(str(record.patient.get("gender")))
    today = dt.datetime.now(dt.UTC).date()
    parts = [f"<p>{e(_name(record.patient))} · {e(_age(record.patient, today))}</p>"]
    if born is not None and sex is not None:
        lengths = [((d - born).days, v) for d, v in _values(record, (codes.LOINC_BODY_LENGTH, codes.LOINC_BODY_HEIGHT))]
        weights = [((d - born).days, v) for d, v in _values(record, (codes.LOINC_BODY_WEIGHT,))]
        parts.append("<h2>Talla para la edad (OMS)</h2>" + growth_chart("lhfa", sex, "cm", lengths, "Talla"))
        parts.append("<h2>Peso para la edad (OMS)</h2>" + growth_chart("wfa", sex, "kg", weights, "Peso"))
    hbs = hemoglobins(record, today)
    if hbs:
        points = [
            (d, float(o["valueQuantity"]["value"]))
            for d, o in hbs
            if isinstance((o.get("valueQuantity") or {}).get("value"), int | float | Decimal)
        ]
        rows = "".join(
            f"<tr><td>{d}</td><td class=n>{e((o.get('valueQuantity') or {}).get('value'))}</td>"
            f"<td>{e(SEVERITY.get(anaemia_class(o) or '', '-'))}</td></tr>"
            for d, o in hbs
        )
        # WHO 2024 cut-off at sea level, as a guide line: 10.5 g/dL under two years, 11.0 from two to five
        young = born is not None and (hbs[-1][0] - born).days < 730
        parts.append(
            "<h2>Hemoglobina</h2>"
            + hemoglobin_chart(points, 10.5 if young else 11.0)
            + "<table><tr><th>Fecha</th><th>g/dL</th><th>Anemia</th></tr>"
            + rows
            + "</table>"
        )
    referrals = "".join(
        f'<li><a href="{href("/panel/referencia/" + str(r["id"]))}">'
        f"{e((r.get('code') or {}).get('text') or 'Referencia')}"
        f"</a> ({e(r.get('authoredOn', ''))[:10]}): {e(_state(t, r))}</li>"
        for r, t in record.referrals
    )
    if referrals:
        parts.append(f"<h2>Referencias</h2><ul>{referrals}</ul>")
    return page("Crecimiento y hemoglobina", "".join(parts))


TASK_STATES = {
    "draft": "borrador",
    "requested": "enviada",
    "received": "recibida",
    "accepted": "aceptada",
    "rejected": "rechazada",
    "ready": "lista",
    "cancelled": "cancelada",
    "in-progress": "en atención",
    "on-hold": "en espera",
    "failed": "no acudió",
    "completed": "completada",
    "entered-in-error": "error",
}


async def referral_page(repository: FhirRepository, request_id: str) -> str:
    found = (await repository.read_many("ServiceRequest", [request_id])).get(request_id)
    if found is None or found.deleted or not found.content:
        raise NotFound(f"ServiceRequest/{request_id} is not known")
    request = fhir_json.loads_stored(found.content)
    tasks = await repository.referring_to("Task", "focus", "ServiceRequest", [request_id])
    steps = []
    for task_version in tasks:
        history = await repository.history("Task", task_version.id, count=50, with_total=False)
        for v in reversed(history.versions):
            if not v.content:
                continue
            task = fhir_json.loads_stored(v.content)
            state = task.get("status")
            steps.append(
                f"<tr><td>{e(fhir_instant(v.last_updated)[:16])}</td><td>{e(TASK_STATES.get(state, state))}</td>"
                f"<td>{e((task.get('businessStatus') or {}).get('text') or '')}</td></tr>"
            )
    patient_id = reference_id(request.get("subject"), "Patient")
    body = (
        f"<p>{e((request.get('code') or {}).get('text') or 'Referencia')} · emitida "
        f"{e(str(request.get('authoredOn', ''))[:10])} · estado {e(request.get('status'))}</p>"
        + (f'<p><a href="{href("/panel/nino/" + patient_id)}">Ver paciente</a></p>' if patient_id else "")
        + "<h2>Avance</h2><table><tr><th>Fecha</th><th>Estado</th><th>Detalle</th></tr>"
        + ("".join(steps) or "<tr><td colspan=3>Sin tarea registrada</td></tr>")
        + "</table>"
    )
    return page("Referencia", body)
