"""`puente import` and `puente export`: NDJSON and Bundles through the API's write path, an error file
naming what was refused, and a round trip that keeps every resource."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

from fhir_mappings import fhir_json
from tests.bulk.cli_support import empty, patients_ndjson, puente, query, stored
from tests.fixtures.databases import fresh_database

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"


async def test_import_a_folder_of_ndjson_and_bundles_with_an_error_file(database_url, tmp_path):
    await empty(database_url)
    folder = tmp_path / "upload"
    folder.mkdir()
    ids = patients_ndjson(folder / "a-patients.ndjson", 40)
    with (folder / "b-observations.ndjson").open("w") as out:
        out.write(
            json.dumps(
                {
                    "resourceType": "Observation",
                    "status": "final",
                    "code": {"text": "Hb"},
                    "subject": {"reference": f"Patient/{ids[0]}"},
                }
            )
            + "\n"
        )
        out.write("this is not json\n")
        out.write(json.dumps({"resourceType": "Observation", "status": "banana", "code": {"text": "Hb"}}) + "\n")
        out.write(json.dumps({"resourceType": "Specimen2", "id": "x"}) + "\n")
    shutil.copy(EXAMPLES / "household-visit.json", folder / "c-visit.json")
    failing = json.loads((EXAMPLES / "household-visit.json").read_text())
    failing["entry"][0]["resource"]["gender"] = "banana"  # one bad entry: the whole transaction is refused
    (folder / "d-bad-visit.json").write_text(json.dumps(failing))
    errors = tmp_path / "errors.ndjson"
    result = puente(database_url, tmp_path, "import", str(folder), "--errors", str(errors), "--batch-size", "7")
    assert result.returncode == 1, result.stdout + result.stderr
    assert "refused 4" in result.stdout
    assert set(await stored(database_url, "Patient")) >= set(ids)
    visit = json.loads((EXAMPLES / "household-visit.json").read_text())
    visit_types = {e["resource"]["resourceType"] for e in visit["entry"]}
    for resource_type in visit_types:
        assert await stored(database_url, resource_type), resource_type
    outcomes = [fhir_json.loads(line) for line in errors.read_text().splitlines()]
    where = [o["extension"][0]["valueString"] for o in outcomes]
    assert where == [f"{folder / 'b-observations.ndjson'}:{n}" for n in (2, 3, 4)] + [
        f"{folder / 'd-bad-visit.json'}:1"
    ]
    assert all(o["resourceType"] == "OperationOutcome" and o["issue"][0]["diagnostics"] for o in outcomes)
    # the failed transaction left nothing: one household visit's worth of Patients, not two
    assert len(await stored(database_url, "Patient")) == len(ids) + sum(
        1 for e in visit["entry"] if e["resource"]["resourceType"] == "Patient"
    )

    again = puente(database_url, tmp_path, "import", str(folder), "--errors", str(tmp_path / "again.ndjson"))
    assert again.returncode == 0, again.stdout + again.stderr
    assert "already imported" in again.stdout  # the same files: nothing is stored twice
    assert set((await stored(database_url, "Patient")).values()) == {1}


async def test_export_then_import_into_an_empty_database_keeps_every_resource(database_url, backend, tmp_path):
    await empty(database_url)
    patients_ndjson(tmp_path / "patients.ndjson", 25)
    shutil.copy(EXAMPLES / "household-visit.json", tmp_path / "visit.json")
    loaded = puente(
        database_url,
        tmp_path,
        "import",
        str(tmp_path / "patients.ndjson"),
        str(tmp_path / "visit.json"),
        "--errors",
        str(tmp_path / "e.ndjson"),
    )
    assert loaded.returncode == 0, loaded.stdout + loaded.stderr
    out = tmp_path / "export"
    exported = puente(database_url, tmp_path, "export", str(out))
    assert exported.returncode == 0, exported.stdout + exported.stderr
    files = sorted(p.name for p in out.iterdir())
    assert "Patient.ndjson" in files and not (out / ".puente-export").exists()
    original = {
        row.resource_type + "/" + row.id: json.loads(row.content)
        for row in await query(
            database_url, "SELECT resource_type, id, content FROM resources WHERE deleted = :f", f=False
        )
    }

    async with fresh_database(backend, tmp_path) as other:
        copied = puente(other, tmp_path, "import", str(out), "--no-derived", "--errors", str(tmp_path / "e2.ndjson"))
        assert copied.returncode == 0, copied.stdout + copied.stderr
        rows = await query(other, "SELECT resource_type, id, content FROM resources WHERE deleted = :f", f=False)
        again = {row.resource_type + "/" + row.id: json.loads(row.content) for row in rows}
    exported_keys = {k for k in original if not k.startswith("AuditEvent/")}
    assert exported_keys <= set(again)
    for key in exported_keys:
        before, after = dict(original[key]), dict(again[key])
        before.pop("meta"), after.pop("meta")
        assert before == after, key


async def test_export_options_and_refusals(database_url, tmp_path):
    await empty(database_url)
    patients_ndjson(tmp_path / "patients.ndjson", 5)
    assert puente(database_url, tmp_path, "import", str(tmp_path / "patients.ndjson"), "--no-derived").returncode == 0
    out = tmp_path / "only-patients"
    done = puente(database_url, tmp_path, "export", str(out), "--type", "Patient", "--elements", "gender")
    assert done.returncode == 0, done.stderr
    lines = [json.loads(line) for line in (out / "Patient.ndjson").read_text().splitlines()]
    assert len(lines) == 5 and all("name" not in p for p in lines)
    bad = puente(database_url, tmp_path, "export", str(tmp_path / "x"), "--type", "Banana")
    assert bad.returncode == 1 and "Banana" in bad.stderr
    missing = puente(database_url, tmp_path, "import", str(tmp_path / "nope.ndjson"))
    assert missing.returncode == 1 and "not found" in missing.stderr
