"""SMART Bulk Data Access v2 export (hl7.org/fhir/uv/bulkdata, "Export" and "Bulk Data Status
Request"): kick-off, status, manifest, files that need the kick-off's token, cancel, errors as
OperationOutcomes; access rules and scopes as for a search."""

from __future__ import annotations

from sqlalchemy import func, select

from api import services
from bulk.tables import export_jobs
from storage.database import create_engine
from tests.auth.support import bearer
from tests.bulk.exports import KICK_OFF, download, export, ids, kick_off, seed, wait

ADMIN = "system/*.rs"


async def test_an_integrator_exports_everything_with_a_backend_services_token(bulk_http, clients):
    token = await clients.token("system/*.cruds", admin=True)
    data = await seed(bulk_http, token)
    result = await export(bulk_http, token)
    manifest, files = result["manifest"], result["files"]
    assert manifest["requiresAccessToken"] is True
    assert manifest["request"].endswith("/fhir/$export")
    assert manifest["transactionTime"].endswith("Z") and manifest["error"] == []
    assert ids(files, "Patient") == set(data["patients"])
    assert ids(files, "Observation") == set(data["observations"])
    assert ids(files, "ServiceRequest") == set(data["referrals"].values())
    assert ids(files, "Organization") == {"clinic-a", "clinic-b"}
    assert all(item["type"] != "Encounter" for item in manifest["output"])  # no empty files


async def test_a_job_another_process_ran_is_served_here(bulk_http, clients, auth_app, app):
    """Processes serving one database share the jobs and the export directory: a kick-off answered
    by one process may be run by another's worker, and its files are still found by the first."""
    token = await clients.token("system/*.cruds", admin=True)
    data = await seed(bulk_http, token)
    here = services.of_app(auth_app).export_worker
    assert here is not None
    await here.stop()  # so that the other process's worker is the one that claims the job
    try:
        status_url = await kick_off(bulk_http, token, "/fhir/$export", _type="Patient")
        other = services.of_app(app).export_worker
        assert other is not None and other is not here
        await other.run_pending()
        manifest = (await wait(bulk_http, token, status_url)).json()
        assert ids(await download(bulk_http, token, manifest), "Patient") == set(data["patients"])
    finally:
        here.start()


async def test_files_and_status_need_the_kick_offs_client(bulk_http, clients):
    token = await clients.token(ADMIN, admin=True)
    other = await clients.token(ADMIN, admin=True)
    await bulk_http.post("/fhir/Patient", json={"resourceType": "Patient"}, headers=bearer(token))
    status_url = await kick_off(bulk_http, token, "/fhir/$export")
    manifest = (await wait(bulk_http, token, status_url)).json()
    file_url = manifest["output"][0]["url"].removeprefix("https://puente.test")
    assert (await bulk_http.get(file_url)).status_code == 401
    for url in (file_url, status_url):
        r = await bulk_http.get(url, headers=bearer(other))
        assert r.status_code == 404 and r.json()["resourceType"] == "OperationOutcome"
    elsewhere = file_url.rsplit("/", 1)[0] + "/..%2F..%2Fsigning-keys.ndjson"
    assert (await bulk_http.get(elsewhere, headers=bearer(token))).status_code == 404


async def test_type_since_type_filter_and_elements(bulk_http, clients):
    token = await clients.token("system/*.cruds", admin=True)
    data = await seed(bulk_http, token)
    hemoglobin = await export(
        bulk_http, token, _type="Observation,Patient", _typeFilter="Observation?code=http://loinc.org|718-7"
    )
    assert set(hemoglobin["files"]) == {"Observation", "Patient"}
    assert ids(hemoglobin["files"], "Observation") == set(data["observations"][:3])

    since = hemoglobin["manifest"]["transactionTime"]
    late = await bulk_http.post(
        "/fhir/Patient", json={"resourceType": "Patient", "gender": "other"}, headers=bearer(token)
    )
    changed = await export(bulk_http, token, _type="Patient", _since=since)
    assert ids(changed["files"], "Patient") == {late.json()["id"]}

    slim = await export(bulk_http, token, _type="Observation", _elements="Observation.status")
    for resource in slim["files"]["Observation"]:
        assert "valueQuantity" not in resource and resource["status"] == "final"
        assert "subject" not in resource


async def test_a_clinic_exports_only_what_it_may_read(bulk_http, clients):
    admin = await clients.token("system/*.cruds", admin=True)
    data = await seed(bulk_http, admin)
    clinic = await clients.token(
        "system/ServiceRequest.rs system/Patient.rs system/Observation.rs", organization="Organization/clinic-a"
    )
    files = (await export(bulk_http, clinic))["files"]
    assert set(files) <= {"ServiceRequest", "Patient", "Observation"}
    assert ids(files, "ServiceRequest") == {data["referrals"]["clinic-a"]}
    assert ids(files, "Patient") == {data["patients"][0]}
    # a type its scopes do not grant cannot be asked for
    r = await bulk_http.get("/fhir/$export", params={"_type": "Encounter"}, headers={**KICK_OFF, **bearer(clinic)})
    assert r.status_code == 403 and r.json()["resourceType"] == "OperationOutcome"


async def test_patient_and_group_exports_follow_the_patient_compartment(bulk_http, clients):
    token = await clients.token("system/*.cruds", admin=True)
    data = await seed(bulk_http, token)
    everyone = (await export(bulk_http, token, "/fhir/Patient/$export"))["files"]
    assert "Organization" not in everyone  # not patient data
    assert ids(everyone, "Observation") == set(data["observations"])

    group = (await export(bulk_http, token, f"/fhir/Group/{data['group']}/$export"))["files"]
    members = set(data["patients"][1:])
    assert ids(group, "Patient") == members
    assert {o["subject"]["reference"].split("/")[1] for o in group["Observation"]} == members
    assert ids(group, "ServiceRequest") == {data["referrals"]["clinic-b"]}

    r = await bulk_http.get("/fhir/Group/no-such-group/$export", headers={**KICK_OFF, **bearer(token)})
    assert r.status_code == 404 and r.json()["resourceType"] == "OperationOutcome"
    clinic = await clients.token("system/Group.rs system/Patient.rs", organization="Organization/clinic-a")
    r = await bulk_http.get(f"/fhir/Group/{data['group']}/$export", headers={**KICK_OFF, **bearer(clinic)})
    assert r.status_code == 404  # a Group it cannot read does not exist for it


async def test_cancel_and_then_the_job_is_gone(bulk_http, clients):
    token = await clients.token(ADMIN, admin=True)
    await bulk_http.post("/fhir/Patient", json={"resourceType": "Patient"}, headers=bearer(token))
    status_url = await kick_off(bulk_http, token, "/fhir/$export")
    r = await bulk_http.delete(status_url, headers=bearer(token))
    assert r.status_code == 202
    assert (await bulk_http.get(status_url, headers=bearer(token))).status_code == 404
    assert (await bulk_http.delete(status_url, headers=bearer(token))).status_code == 404


async def test_bad_kick_offs_are_4xx_operation_outcomes(bulk_http, clients):
    token = await clients.token(ADMIN, admin=True)
    cases = [
        ({"Accept": "application/fhir+json"}, {}, 400),  # no Prefer: respond-async
        (KICK_OFF, {"_outputFormat": "text/csv"}, 400),
        (KICK_OFF, {"_type": "Banana"}, 400),
        (KICK_OFF, {"_since": "yesterday"}, 400),
        (KICK_OFF, {"_typeFilter": "Observation"}, 400),
        (KICK_OFF, {"_typeFilter": "Observation?nonsense=1"}, 400),
        (KICK_OFF, {"_typeFilter": "Observation?_count=1"}, 400),
        (KICK_OFF, {"_type": "Patient", "_typeFilter": "Observation?code=1"}, 400),
        (KICK_OFF, {"includeAssociatedData": "LatestProvenanceResources"}, 400),
        ({**KICK_OFF, "Accept": "application/fhir+xml"}, {}, 406),
    ]
    for headers, params, status in cases:
        r = await bulk_http.get("/fhir/$export", params=params, headers={**headers, **bearer(token)})
        assert r.status_code == status, (params, r.text)
        assert r.json()["resourceType"] == "OperationOutcome"
    r = await bulk_http.get(
        "/fhir/Patient/$export", params={"_type": "Organization"}, headers={**KICK_OFF, **bearer(token)}
    )
    assert r.status_code == 400
    assert (await bulk_http.get("/fhir/$export-status/nope", headers=bearer(token))).status_code == 404
    assert (await bulk_http.get("/fhir/$export", headers=KICK_OFF)).status_code == 401


async def test_the_capability_statement_names_the_operations(bulk_http):
    rest = (await bulk_http.get("/fhir/metadata")).json()["rest"][0]
    assert {"name": "export", "definition": "http://hl7.org/fhir/uv/bulkdata/OperationDefinition/export"} in rest[
        "operation"
    ]
    by_type = {r["type"]: {o["name"]: o["definition"] for o in r.get("operation", [])} for r in rest["resource"]}
    assert by_type["Patient"]["export"].endswith("/patient-export")
    assert by_type["Patient"]["everything"] == "http://hl7.org/fhir/OperationDefinition/Patient-everything"
    assert by_type["Group"]["export"].endswith("/group-export")


async def test_a_head_on_a_kick_off_starts_nothing(bulk_http, clients, database_url):
    """HEAD is safe (RFC 9110); answering it as the GET it mirrors would start an export."""
    token = await clients.token(ADMIN, admin=True)
    for url in ("/fhir/$export", "/fhir/Patient/$export"):
        r = await bulk_http.head(url, headers={**KICK_OFF, **bearer(token)})
        assert r.status_code == 405 and "GET" in r.headers["allow"]
        assert "content-location" not in r.headers
    engine = create_engine(database_url)
    try:
        async with engine.connect() as connection:
            assert (await connection.execute(select(func.count()).select_from(export_jobs))).scalar_one() == 0
    finally:
        await engine.dispose()
    r = await bulk_http.get("/fhir/$export", headers={**KICK_OFF, **bearer(token)})
    assert r.status_code == 202  # the GET still starts one
