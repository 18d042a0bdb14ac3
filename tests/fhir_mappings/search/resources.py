"""Realistic resources of Puente's programme (CHW visits in La Esperanza, Trujillo) for extraction tests."""

from __future__ import annotations

BASE = "https://puente.example.org/fhir"

PATIENT = """{
  "resourceType": "Patient", "id": "p1",
  "meta": {"versionId": "3", "lastUpdated": "2024-03-01T10:15:00.123Z", "source": "urn:puente:chw-app",
           "profile": ["https://puente.example.org/fhir/StructureDefinition/puente-child|1.0"],
           "tag": [{"system": "https://puente.example.org/tags", "code": "sector-7"}],
           "security": [{"system": "http://terminology.hl7.org/CodeSystem/v3-Confidentiality", "code": "R"}]},
  "identifier": [
    {"system": "https://puente.example.org/id/dni", "value": "71234567",
     "type": {"coding": [{"system": "http://terminology.hl7.org/CodeSystem/v2-0203", "code": "NI"},
                         {"system": "https://puente.example.org/id-type", "code": "DNI"}],
              "text": "Documento Nacional de Identidad"}},
    {"system": "https://puente.example.org/id/chw-app", "value": "a-19"},
    {"system": "https://puente.example.org/id/chw-app", "value": "a-19"}
  ],
  "active": true,
  "name": [{"use": "official", "family": "Nuñez Quispe", "given": ["María", "José"],
            "text": "María José Nuñez Quispe"}],
  "telecom": [{"system": "phone", "value": "+51 944 123 456", "use": "mobile"},
              {"system": "email", "value": "Maria@Example.pe"}],
  "gender": "female",
  "birthDate": "2022-05-17",
  "_birthDate": {"extension": [{"url": "http://hl7.org/fhir/StructureDefinition/patient-birthTime",
                                "valueDateTime": "2022-05-17T08:30:00-05:00"}]},
  "deceasedBoolean": false,
  "address": [{"line": ["Mz. B Lt. 12", "AA.HH. Santa Rosa"], "city": "La Esperanza", "district": "La Esperanza",
               "state": "La Libertad", "country": "PE"}],
  "generalPractitioner": [{"reference": "https://puente.example.org/fhir/Practitioner/chw-7"}],
  "managingOrganization": {"reference": "Organization/ipress-1234"},
  "link": [{"other": {"reference": "Patient/p0"}, "type": "seealso"}]
}"""

HEMOGLOBIN = """{
  "resourceType": "Observation", "id": "hb1", "status": "final",
  "category": [{"coding": [{"system": "http://terminology.hl7.org/CodeSystem/observation-category",
                            "code": "laboratory"}]}],
  "code": {"coding": [{"system": "http://loinc.org", "code": "30352-9",
                       "display": "Hemoglobin [Mass/volume] in Capillary blood"}], "text": "Hemoglobina"},
  "subject": {"reference": "Patient/p1"},
  "encounter": {"reference": "Encounter/e1"},
  "effectiveDateTime": "2024-03-01T09:40:00-05:00",
  "performer": [{"reference": "Practitioner/chw-7"}],
  "valueQuantity": {"value": 10.50, "unit": "g/dL", "system": "http://unitsofmeasure.org", "code": "g/dL"},
  "device": {"reference": "Device/hemocue-3"}
}"""

BLOOD_PRESSURE = """{
  "resourceType": "Observation", "id": "bp1", "status": "final",
  "code": {"coding": [{"system": "http://loinc.org", "code": "85354-9"}]},
  "subject": {"reference": "Patient/m1"},
  "effectivePeriod": {"start": "2024-03-02T10:00:00-05:00", "end": "2024-03-02T10:05:00-05:00"},
  "component": [
    {"code": {"coding": [{"system": "http://loinc.org", "code": "8480-6"}]},
     "valueQuantity": {"value": 118, "unit": "mmHg", "system": "http://unitsofmeasure.org", "code": "mm[Hg]"}},
    {"code": {"coding": [{"system": "http://loinc.org", "code": "8462-4"}]},
     "valueQuantity": {"value": 76, "unit": "mmHg", "system": "http://unitsofmeasure.org", "code": "mm[Hg]"}}
  ]
}"""

PREGNANCY_STATUS = """{
  "resourceType": "Observation", "id": "preg1", "status": "final",
  "code": {"coding": [{"system": "http://loinc.org", "code": "82810-3"}]},
  "subject": {"reference": "Patient/m1"},
  "effectiveTiming": {"event": ["2024-03-02", "2024-04-02"]},
  "valueCodeableConcept": {"coding": [{"system": "http://loinc.org", "code": "LA15173-0", "display": "Pregnant"}]}
}"""

REFERRAL = """{
  "resourceType": "ServiceRequest", "id": "sr1", "status": "active", "intent": "order",
  "identifier": [{"system": "https://puente.example.org/id/referral", "value": "R-2024-0042"}],
  "code": {"coding": [{"system": "http://snomed.info/sct", "code": "3457005", "display": "Patient referral"}]},
  "subject": {"reference": "Patient/p1"},
  "authoredOn": "2024-03-01T10:00:00-05:00",
  "occurrencePeriod": {"start": "2024-03-04"},
  "requester": {"reference": "Practitioner/chw-7"},
  "performer": [{"reference": "https://puente.example.org/fhir/Organization/ipress-1234"},
                {"reference": "https://other.example.org/fhir/Organization/99"}],
  "reasonReference": [{"reference": "Observation/hb1"}],
  "basedOn": [{"reference": "urn:uuid:4f1c0a4e-6a6b-4b1f-9d1e-0a0b0c0d0e0f"}],
  "insurance": [{"identifier": {"system": "https://puente.example.org/id/sis", "value": "SIS-77"}, "type": "Coverage"}]
}"""

TASK = """{
  "resourceType": "Task", "id": "t1", "status": "requested", "intent": "order",
  "businessStatus": {"text": "Paciente llegó"},
  "focus": {"reference": "ServiceRequest/sr1/_history/2"},
  "for": {"reference": "Patient/p1"},
  "owner": {"identifier": {"system": "https://puente.example.org/id/ipress", "value": "1234"}, "type": "Organization"},
  "authoredOn": "2024-03-01"
}"""

MEDICATION_REQUEST = """{
  "resourceType": "MedicationRequest", "id": "mr1", "status": "active", "intent": "order",
  "contained": [{"resourceType": "Medication", "id": "med1",
                 "code": {"coding": [{"system": "http://www.whocc.no/atc", "code": "B03AA07"}]}}],
  "medicationReference": {"reference": "#med1"},
  "subject": {"reference": "Patient/p1"},
  "authoredOn": "2024-03-01",
  "dosageInstruction": [{"timing": {"event": ["2024-03-01T08:00:00-05:00"],
                                    "repeat": {"frequency": 1, "period": 1, "periodUnit": "d"}}}]
}"""

CARE_PLAN = """{
  "resourceType": "CarePlan", "id": "cp1", "status": "active", "intent": "plan",
  "subject": {"reference": "Patient/p1"},
  "activity": [
    {"detail": {"status": "scheduled", "scheduledTiming": {
        "event": ["2024-02-15"],
        "repeat": {"boundsPeriod": {"start": "2024-03-01", "end": "2024-05-31"}, "frequency": 1, "period": 1,
                   "periodUnit": "mo"}}}},
    {"detail": {"status": "scheduled", "scheduledString": "cada mes"}}
  ]
}"""

CONDITION = """{
  "resourceType": "Condition", "id": "c1",
  "clinicalStatus": {"coding": [{"system": "http://terminology.hl7.org/CodeSystem/condition-clinical",
                                 "code": "active"}]},
  "code": {"coding": [{"system": "http://snomed.info/sct", "code": "271737000", "display": "Anemia"}]},
  "subject": {"reference": "Patient/p1"},
  "onsetAge": {"value": 22, "unit": "months", "system": "http://unitsofmeasure.org", "code": "mo"},
  "abatementRange": {"low": {"value": 2, "system": "http://unitsofmeasure.org", "code": "a"}},
  "recordedDate": "2024-03-01"
}"""

RISK = """{
  "resourceType": "RiskAssessment", "id": "r1", "status": "final", "subject": {"reference": "Patient/p1"},
  "prediction": [{"probabilityDecimal": 0.25}, {"probabilityRange": {"low": {"value": 0.1}, "high": {"value": 0.3}}},
                 {"probabilityDecimal": 0.25}]
}"""

INVOICE = """{
  "resourceType": "Invoice", "id": "i1", "status": "issued",
  "totalGross": {"value": 45.50, "currency": "PEN"},
  "totalNet": {"value": 40, "currency": "PEN"}
}"""

QUESTIONNAIRE_RESPONSE = """{
  "resourceType": "QuestionnaireResponse", "id": "qr1", "status": "completed",
  "questionnaire": "https://puente.example.org/fhir/Questionnaire/visit|2.1",
  "subject": {"reference": "Patient/p1"}, "authored": "2024-03-01T10:00:00Z"
}"""

DOCUMENT = """{
  "resourceType": "Bundle", "id": "b1", "type": "document", "timestamp": "2024-03-01T10:00:00Z",
  "identifier": {"system": "urn:ietf:rfc:3986", "value": "urn:uuid:0c3151bd-1cbf-4d64-b04d-cd9187a4c6e0"},
  "entry": [{"fullUrl": "urn:uuid:1", "resource": {"resourceType": "Composition", "id": "comp1", "status": "final"}},
            {"fullUrl": "urn:uuid:2", "resource": {"resourceType": "Patient", "id": "p1"}}]
}"""

ALL = [
    PATIENT,
    HEMOGLOBIN,
    BLOOD_PRESSURE,
    PREGNANCY_STATUS,
    REFERRAL,
    TASK,
    MEDICATION_REQUEST,
    CARE_PLAN,
    CONDITION,
    RISK,
    INVOICE,
    QUESTIONNAIRE_RESPONSE,
    DOCUMENT,
]
