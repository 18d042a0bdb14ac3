"""One household: a mother, her children under five, and everything the CHW recorded about them.

A household is built from its own `random.Random`, seeded from the run seed and the household's
index, so household *n* is the same whatever the cohort size, and generation is streamable.
Resources come out in dependency order: every reference points to a resource emitted earlier in
the household or to the shared programme resources.
"""

from __future__ import annotations

import random
from dataclasses import dataclass, field
from functools import cache
from typing import Any

from clinical.codes import RESIDENCE_LOCATION_EXTENSION
from seed import codes, growth, names, places, referrals
from seed.codes import Measure
from seed.ids import PEOPLE_PER_HOUSEHOLD, IdFactory, iso_date, iso_datetime, new_meta, ref
from seed.programme import Chw, Programme, human_name
from seed.schedule import CHILD_SCHEDULE, DTPA_PREGNANCY, INFLUENZA_PREGNANCY, SCHEDULE_NAME, Dose

Resource = dict[str, Any]

UNDER_FIVE_DAYS = 1826
HB_FROM_DAYS = 183  # haemoglobin screening from 6 months
IRON_PREVENTION_FROM_DAYS = 120  # preventive iron drops from 4 months

# Mean haemoglobin (g/dL) by age band, tuned so ~40 % of children 6-35 months fall below the WHO 2024
# cut-offs (ENDES: 38.8-43.7 %); child effect and round noise together give an SD of about 1.05.
_HB_MEAN = ((365, 10.55), (730, 10.65), (1095, 11.25), (UNDER_FIVE_DAYS, 11.7))


@dataclass(frozen=True, slots=True)
class Round:
    start: int  # ordinal day the campaign starts
    days: int  # campaign length


@dataclass(slots=True)
class RunState:
    """What the generator shares across households (immutable apart from the referral counter)."""

    ids: IdFactory
    programme: Programme
    as_of: int
    rounds: tuple[Round, ...]
    window_start: int
    referral_serial: int = 0
    stats: dict[str, int] = field(default_factory=dict)


def _quantity(value: float, unit: str) -> dict[str, Any]:
    return {"value": value, "unit": unit, "system": codes.UCUM, "code": unit}


def _hb_cutoff(age_days: int) -> float:
    return 10.5 if age_days < 730 else 11.0


_REPORT_ORIGIN = codes.concept(codes.IMMUNIZATION_ORIGIN, "record", "Written Record")


@cache
def _dose_parts(dose: Dose) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    # Built once per dose and shared by every Immunization of it (see the generator's docstring).
    vaccine = codes.concept(codes.PE_VACCINE_SYSTEM, dose.code, dose.display)
    if dose.cvx:
        vaccine["coding"].append({"system": codes.CVX, "code": dose.cvx})
    vaccine["text"] = dose.display
    return vaccine, [{"series": SCHEDULE_NAME, "doseNumberPositiveInt": dose.dose_number}]


@cache
def _measure_parts(measure: Measure) -> tuple[list[dict[str, Any]], dict[str, Any]]:
    category = [codes.concept(codes.OBSERVATION_CATEGORY, measure.category, codes.CATEGORY_DISPLAY[measure.category])]
    return category, codes.concept(codes.LOINC, measure.loinc, measure.display, measure.text)


class HouseholdBuilder:
    def __init__(self, state: RunState, index: int, children: int) -> None:
        self.s = state
        self.index = index
        self.rng = random.Random(state.ids.seed * 1_000_003 + index)
        self.want_children = children
        self.out: list[Resource] = []
        self.n = 0
        self.chw: Chw = self.rng.choice(state.programme.chws)
        self.chw_ref = ref("Practitioner", self.chw.practitioner_id)
        self.migrant = self.rng.random() < 0.08
        self.address: dict[str, Any] = {
            "use": "home", "type": "physical",
            "line": [f"Mz. {chr(65 + self.rng.randrange(20))} Lt. {self.rng.randrange(1, 40)}",
                     self.chw.community.name],
            "city": places.CITY, "district": places.PROVINCE, "state": places.REGION,
            "country": places.COUNTRY,
        }

    # ---- small builders -------------------------------------------------------------------------

    def _id(self, resource_type: str) -> str:
        self.n += 1
        return self.s.ids(f"{resource_type}/h{self.index}/{self.n}")

    def _emit(self, resource: Resource) -> Resource:
        self.out.append(resource)
        return resource

    def _minute(self) -> int:
        return self.rng.randrange(8 * 60, 17 * 60)  # CHWs visit in working hours

    def _encounter(self, subject: str, day: int, visit: tuple[str, str], status: str = "finished",
                   reason: str | None = None) -> str:
        eid = self._id("Encounter")
        start = self._minute()
        enc: Resource = {
            "resourceType": "Encounter", "id": eid, "meta": new_meta(), "status": status,
            "class": {"system": codes.ACT_CODE, "code": "HH", "display": "home health"},
            "type": [codes.concept(codes.VISIT_TYPE_SYSTEM, *visit)],
            "subject": ref("Patient", subject),
            "participant": [{
                "type": [codes.concept(codes.PARTICIPATION_TYPE, "PPRF", "primary performer")],
                "individual": self.chw_ref,
            }],
            "period": {"start": iso_datetime(day, start)},
            "location": [{"location": ref("Location", self.chw.community_location_id)}],
            "serviceProvider": ref("Organization", self.s.programme.organization_id),
        }
        if status == "finished":
            enc["period"]["end"] = iso_datetime(day, start + self.rng.randrange(15, 50))
        if reason:
            enc["reasonReference"] = [ref("Condition", reason)]
        return self._emit(enc)["id"]

    def _observation(self, subject: str, measure: Measure, value: float, when: str,
                     encounter: str | None, device: bool = False) -> str:
        category, code = _measure_parts(measure)
        obs: Resource = {
            "resourceType": "Observation", "id": self._id("Observation"), "meta": new_meta(),
            "status": "final",
            "category": category,
            "code": code,
            "subject": ref("Patient", subject),
            "effectiveDateTime": when,
            "performer": [self.chw_ref],
            "valueQuantity": _quantity(value, measure.unit),
        }
        if encounter:
            obs["encounter"] = ref("Encounter", encounter)
        if device:
            obs["method"] = {"text": "Sangre capilar, punto de atención"}
            obs["device"] = ref("Device", self.chw.device_id)
        return self._emit(obs)["id"]

    def _referral(self, subject: str, day: int, reason_obs: str, why: str, urgent: bool,
                  to_hospital: bool = False) -> None:
        s = self.s
        serial = s.referral_serial
        s.referral_serial += 1
        state = referrals.pick_state(self.rng, s.as_of - day, serial)
        s.stats[f"task:{state}"] = s.stats.get(f"task:{state}", 0) + 1
        facility = s.programme.hospital_org_id if to_hospital else self.chw.facility_org_id
        authored = iso_datetime(day, self._minute())
        sr_id = self._id("ServiceRequest")
        self._emit({
            "resourceType": "ServiceRequest", "id": sr_id, "meta": new_meta(),
            "status": referrals.SERVICE_REQUEST_STATUS[state], "intent": "order",
            "priority": "urgent" if urgent else "routine",
            "code": codes.concept(codes.SNOMED, *codes.REFERRAL_SNOMED, text=why),
            "subject": ref("Patient", subject),
            "authoredOn": authored,
            "requester": self.chw_ref,
            "performer": [ref("Organization", facility)],
            "reasonReference": [ref("Observation", reason_obs)],
        })
        last = min(s.as_of, day + self.rng.randrange(0, 30))
        task: Resource = {
            "resourceType": "Task", "id": self._id("Task"), "meta": new_meta(),
            "basedOn": [ref("ServiceRequest", sr_id)],
            "status": state, "businessStatus": {"text": referrals.BUSINESS_STATUS[state]},
            "intent": "order", "priority": "urgent" if urgent else "routine",
            "code": codes.concept(codes.TASK_CODE, "fulfill", "Fulfill the focal request"),
            "focus": ref("ServiceRequest", sr_id),
            "for": ref("Patient", subject),
            "authoredOn": authored,
            "lastModified": iso_datetime(last, self._minute()),
            "requester": self.chw_ref,
            "owner": ref("Organization", facility),
        }
        if state in ("in-progress", "completed", "failed"):
            task["executionPeriod"] = {"start": iso_datetime(last, self._minute())}
            if state != "in-progress":
                task["executionPeriod"]["end"] = task["lastModified"]
        self._emit(task)

    def _medication(self, subject: str, atc: tuple[str, str], text: str, start: int, days: int,
                    dosage: str, reason_obs: str | None = None, reason_text: str | None = None) -> None:
        as_of = self.s.as_of
        if start > as_of:
            return  # not started yet (e.g. iron from week 14 for a woman registered at week 10)
        end = start + days
        roll = self.rng.random()
        if roll < 0.08:
            status = "not-taken"
        elif roll < 0.28:
            status = "stopped"
            end = start + self.rng.randrange(7, max(8, days // 2))
        else:
            status = "active" if end > as_of else "completed"
        period: dict[str, str] = {"start": iso_date(start)}
        if status != "active":
            period["end"] = iso_date(min(end, as_of))
        ms: Resource = {
            "resourceType": "MedicationStatement", "id": self._id("MedicationStatement"),
            "meta": new_meta(), "status": status,
            "medicationCodeableConcept": codes.concept(codes.ATC, *atc, text=text),
            "subject": ref("Patient", subject),
            "effectivePeriod": period,
            "dateAsserted": iso_datetime(min(start + self.rng.randrange(0, 20), as_of), self._minute()),
            "informationSource": self.chw_ref,
            "dosage": [{"text": dosage}],
        }
        if reason_obs:
            ms["reasonReference"] = [ref("Observation", reason_obs)]
        elif reason_text:
            ms["reasonCode"] = [{"text": reason_text}]
        self._emit(ms)

    def _immunization(self, patient: str, dose: Dose, day: int, done: bool = True) -> None:
        vaccine, protocol = _dose_parts(dose)
        imm: Resource = {
            "resourceType": "Immunization", "id": self._id("Immunization"), "meta": new_meta(),
            "status": "completed" if done else "not-done",
            "vaccineCode": vaccine,
            "patient": ref("Patient", patient),
            "occurrenceDateTime": iso_date(day),
            "primarySource": False,
            "reportOrigin": _REPORT_ORIGIN,
            "location": ref("Location", self.chw.facility_location_id),
            "protocolApplied": protocol,
        }
        if done:
            imm["lotNumber"] = f"{dose.code[:3]}{self.rng.randrange(10**5):05d}"
        else:
            reason = self.rng.choice((("OSTOCK", "product out of stock"), ("PATOBJ", "patient objection"),
                                      ("MEDPREC", "medical precaution")))
            imm["statusReason"] = codes.concept(codes.ACT_REASON, *reason)
        self._emit(imm)

    # ---- people -----------------------------------------------------------------------------------

    def _patient(self, pid: str, name: dict[str, Any], female: bool, birth: int,
                 identifiers: list[dict[str, Any]], extra: dict[str, Any]) -> Resource:
        # Where the family lives: the CHW's community, a Location with its altitude, so the anaemia
        # rules adjust by it and worklists and indicators can be asked per sector (Patient?residence).
        home = {"url": RESIDENCE_LOCATION_EXTENSION,
                "valueReference": ref("Location", self.chw.community_location_id)}
        patient: Resource = {"resourceType": "Patient", "id": pid, "meta": new_meta(), "extension": [home]}
        if identifiers:
            patient["identifier"] = identifiers
        patient.update({
            "active": True, "name": [name], **extra,
            "gender": "female" if female else "male", "birthDate": iso_date(birth),
            "address": [self.address],
            "generalPractitioner": [self.chw_ref],
            "managingOrganization": ref("Organization", self.chw.facility_org_id),
        })
        return self._emit(patient)

    def build(self) -> list[Resource]:
        rng, s = self.rng, self.s
        as_of = s.as_of
        migrant = self.migrant
        surnames = names.MIGRANT_SURNAMES if migrant else names.SURNAMES
        ages = self._child_ages()
        mother_age = int(rng.gauss(27, 6.5) * 365.25)
        oldest = max(ages, default=0)
        if mother_age < oldest + 15 * 365:
            mother_age = oldest + 15 * 365 + rng.randrange(0, 10 * 365)
        mother_age = min(mother_age, 46 * 365)
        mother_given = [rng.choice(names.FEMALE)]
        mother_father, mother_mother = rng.choice(surnames), rng.choice(surnames)
        mother_name = human_name(mother_given, mother_father, mother_mother)
        base_serial = self.index * PEOPLE_PER_HOUSEHOLD
        mother_ids = self._adult_identifiers(base_serial, migrant)
        phone = [{"system": "phone", "value": f"+519{rng.randrange(10**8):08d}", "use": "mobile"}] \
            if rng.random() < 0.85 else []
        mother_id = self._id("Patient")

        # Children first: the mother's Patient links to the RelatedPersons that point at them.
        kids: list[tuple[str, int, int]] = []  # (id, sex, birth ordinal)
        for k, age in enumerate(sorted(ages, reverse=True)):
            sex = 1 if rng.random() < 0.51 else 2
            birth = as_of - age
            given = [rng.choice(names.MALE if sex == 1 else names.FEMALE)]
            if rng.random() < 0.3:
                given.append(rng.choice(names.MALE if sex == 1 else names.FEMALE))
            father = rng.choice(surnames) if rng.random() < 0.85 else mother_father
            kid_id = self._id("Patient")
            self._patient(kid_id, human_name(given, father, mother_father), sex == 2, birth,
                          self._child_identifiers(base_serial + 1 + k, age, migrant), {})
            kids.append((kid_id, sex, birth))
        related: list[str] = []
        for kid_id, _, _ in kids:
            rp_id = self._id("RelatedPerson")
            rp: Resource = {
                "resourceType": "RelatedPerson", "id": rp_id, "meta": new_meta(), "active": True,
                "patient": ref("Patient", kid_id),
                "relationship": [codes.concept(codes.ROLE_CODE, "MTH", "mother", "Madre")],
                "name": [mother_name], "gender": "female", "birthDate": iso_date(as_of - mother_age),
                "address": [self.address],
            }
            if mother_ids:
                rp["identifier"] = mother_ids
            if phone:
                rp["telecom"] = phone
            self._emit(rp)
            related.append(rp_id)
        extra: dict[str, Any] = {}
        if phone:
            extra["telecom"] = phone
        extra["communication"] = [{"language": codes.concept(codes.BCP47, "es", "Spanish"), "preferred": True}]
        if related:
            extra["link"] = [{"other": ref("RelatedPerson", r), "type": "seealso"} for r in related]
        self._patient(mother_id, mother_name, True, as_of - mother_age, mother_ids, extra)

        self._pregnancies(mother_id, [b for _, _, b in kids], not kids)
        for kid_id, sex, birth in kids:
            self._child_record(kid_id, sex, birth)
        s.stats["households"] = s.stats.get("households", 0) + 1
        s.stats["children"] = s.stats.get("children", 0) + len(kids)
        return self.out

    def _child_ages(self) -> list[int]:
        ages: list[int] = []
        rng = self.rng
        for _ in range(self.want_children):
            for _attempt in range(12):
                age = rng.randrange(UNDER_FIVE_DAYS)
                if all(abs(age - a) > 330 for a in ages):
                    break
            ages.append(age)
        return ages

    def _adult_identifiers(self, serial: int, migrant: bool) -> list[dict[str, Any]]:
        ids = self.s.ids
        if not migrant:
            return [codes.identifier("DNI", ids.dni(serial))]
        roll = self.rng.random()
        if roll < 0.40:
            return [codes.identifier("CE", ids.long_number(serial))]
        if roll < 0.75:
            return [codes.identifier("PTP", ids.long_number(serial))]
        return []  # undocumented: Puente must never require an identifier

    def _child_identifiers(self, serial: int, age: int, migrant: bool) -> list[dict[str, Any]]:
        ids, roll = self.s.ids, self.rng.random()
        if migrant and age > 730 and roll < 0.5:
            return self._adult_identifiers(serial, True)  # born abroad
        if age < 30:  # the CNV's CUI becomes the DNI number once registered at RENIEC
            if roll < 0.3:
                return [codes.identifier("DNI", ids.dni(serial))]
            if roll < 0.8:
                return [codes.identifier("CNV", ids.dni(serial))]
            return []
        return [codes.identifier("DNI", ids.dni(serial))] if roll < 0.97 else []

    # ---- pregnancies ------------------------------------------------------------------------------

    def _pregnancies(self, mother: str, births: list[int], expecting: bool) -> None:
        rng, s = self.rng, self.s
        for birth in births:
            # Deliveries inside the record window carry their pregnancy (most are registered).
            if birth >= s.window_start and rng.random() < 0.85:
                self._pregnancy(mother, birth - rng.randrange(37 * 7, 41 * 7), birth)
        youngest = max(births, default=None)
        if expecting or rng.random() < 0.18:
            gestation = rng.randrange(12 * 7, 40 * 7) if expecting else rng.randrange(6 * 7, 40 * 7)
            lmp = s.as_of - gestation
            if youngest is None or lmp > youngest + 60:
                self._pregnancy(mother, lmp, None)

    def _pregnancy(self, mother: str, lmp: int, delivered: int | None) -> None:
        rng, s = self.rng, self.s
        registered = lmp + rng.randrange(8 * 7, 20 * 7)
        end = delivered if delivered is not None else s.as_of
        if registered >= end:
            if delivered is not None or end - lmp < 9 * 7:
                return  # not registered before the birth, or too early to be known
            registered = end - rng.randrange(1, 14)
        edd = lmp + 280
        cond_id = self._id("Condition")
        cond: Resource = {
            "resourceType": "Condition", "id": cond_id, "meta": new_meta(),
            "clinicalStatus": codes.concept(codes.CONDITION_CLINICAL,
                                            "resolved" if delivered else "active",
                                            "Resolved" if delivered else "Active"),
            "verificationStatus": codes.concept(codes.CONDITION_VERIFICATION, "confirmed", "Confirmed"),
            "category": [codes.concept(codes.CONDITION_CATEGORY, "problem-list-item", "Problem List Item")],
            "code": codes.concept(codes.SNOMED, *codes.PREGNANCY_SNOMED, text="Gestante"),
            "subject": ref("Patient", mother),
            "onsetDateTime": iso_date(lmp),
            "recordedDate": iso_date(registered),
            "recorder": self.chw_ref,
        }
        if delivered:
            cond["abatementDateTime"] = iso_date(delivered)
        self._emit(cond)
        visit = ("prenatal-home-visit", "Visita domiciliaria a gestante")
        enc = self._encounter(mother, registered, visit, reason=cond_id)
        when = iso_datetime(registered, self._minute())
        self._emit({
            "resourceType": "Observation", "id": self._id("Observation"), "meta": new_meta(),
            "status": "final",
            "category": [codes.concept(codes.OBSERVATION_CATEGORY, "social-history", "Social History")],
            "code": codes.concept(codes.LOINC, *codes.PREGNANCY_STATUS),
            "subject": ref("Patient", mother), "encounter": ref("Encounter", enc),
            "effectiveDateTime": when, "performer": [self.chw_ref],
            "valueCodeableConcept": codes.concept(codes.LOINC, *codes.PREGNANT_ANSWER),
        })
        self._emit({
            "resourceType": "Observation", "id": self._id("Observation"), "meta": new_meta(),
            "status": "final", "code": codes.concept(codes.LOINC, *codes.EDD, text="Fecha probable de parto"),
            "subject": ref("Patient", mother), "encounter": ref("Encounter", enc),
            "effectiveDateTime": when, "performer": [self.chw_ref],
            "valueDateTime": iso_date(edd),
        })
        weeks = (registered - lmp) // 7
        self._observation(mother, codes.GESTATIONAL_AGE, weeks, when, enc)
        # One haemoglobin at registration; WHO 2024 cut-off is 10.5 in the second trimester, else 11.
        hb = round(min(15.5, max(6.5, rng.gauss(11.7, 1.1))), 1)
        hb_id = self._observation(mother, codes.HEMOGLOBIN, hb, when, enc, device=True)
        cutoff = 10.5 if 14 <= weeks < 28 else 11.0
        if hb < cutoff and rng.random() < 0.7:
            self._referral(mother, registered, hb_id, "Gestante con anemia: evaluación y tratamiento",
                           hb < 7.0)
        self._medication(mother, codes.FERROUS_SULFATE, "Sulfato ferroso 300 mg (60 mg Fe)",
                         max(registered, lmp + 14 * 7), max(30, edd - max(registered, lmp + 14 * 7)),
                         "1 tableta diaria desde la semana 14", reason_text="Suplementación en gestante")
        self._medication(mother, codes.FOLIC_ACID, "Ácido fólico 400 µg", registered,
                         max(30, lmp + 13 * 7 - registered), "1 tableta diaria hasta la semana 13",
                         reason_text="Suplementación en gestante")
        for dose, first, last in (DTPA_PREGNANCY, INFLUENZA_PREGNANCY):
            day = lmp + rng.randrange(first, last)
            if day < end and rng.random() < dose.coverage:
                self._immunization(mother, dose, day)
        day = registered + rng.randrange(25, 35)
        while day < end:
            if rng.random() < 0.9:  # some months the CHW finds nobody home
                self._encounter(mother, day, visit, reason=cond_id)
            day += rng.randrange(26, 36)
        if delivered is None:
            self._encounter(mother, day, visit, status="planned", reason=cond_id)

    # ---- children ---------------------------------------------------------------------------------

    def _child_record(self, kid: str, sex: int, birth: int) -> None:
        rng, s = self.rng, self.s
        as_of = s.as_of
        if birth >= s.window_start:
            visit = ("newborn-home-visit", "Visita domiciliaria al recién nacido")
            for offset in (rng.randrange(2, 4), 7, 28):
                if birth + offset <= as_of and rng.random() < 0.9:
                    self._encounter(kid, birth + offset, visit)
        self._vaccines(kid, birth)
        if as_of - birth >= IRON_PREVENTION_FROM_DAYS:
            start = birth + IRON_PREVENTION_FROM_DAYS + rng.randrange(0, 30)
            self._medication(kid, codes.FERROUS_SULFATE, "Sulfato ferroso gotas (25 mg Fe/mL)",
                             min(start, as_of), 240, "2 mg/kg/día de hierro elemental",
                             reason_text="Prevención de anemia")
        haz0 = rng.gauss(-0.75, 1.0)
        whz0 = rng.gauss(0.45, 0.85)
        hb_effect = rng.gauss(0.0, 0.6)
        for rnd in s.rounds:
            day = rnd.start + rng.randrange(rnd.days)
            age = day - birth
            if age < 0 or age >= UNDER_FIVE_DAYS or rng.random() < 0.08:
                continue
            self._screening(kid, sex, age, day, haz0 + rng.gauss(0, 0.15),
                            whz0 + rng.gauss(0, 0.4) - (rng.uniform(1.5, 3.0) if rng.random() < 0.015 else 0),
                            hb_effect)

    def _screening(self, kid: str, sex: int, age: int, day: int, haz: float, whz: float,
                   hb_effect: float) -> None:
        rng = self.rng
        s = self.s
        enc = self._encounter(kid, day, ("growth-screening", "Tamizaje de crecimiento y hemoglobina"))
        when = iso_datetime(day, self._minute())
        true_length = growth.length_cm(sex, age, haz)
        standing = age >= growth.STANDING_FROM_DAYS
        if rng.random() < 0.03:  # measured the "wrong" way; the z-score code must correct by 0.7 cm
            standing = not standing
        measured = true_length + rng.gauss(0, 0.3)
        if standing and age < growth.STANDING_FROM_DAYS:
            measured -= 0.7
        elif not standing and age >= growth.STANDING_FROM_DAYS:
            measured += 0.7
        weight = growth.weight_kg(sex, age, true_length, whz) + rng.gauss(0, 0.04)
        weight_id = self._observation(kid, codes.WEIGHT, round(weight, 2 if age < 730 else 1), when, enc)
        length_id = self._observation(kid, codes.HEIGHT_STANDING if standing else codes.LENGTH_LYING,
                                      round(measured, 1), when, enc)
        if whz < -2 and rng.random() < 0.8:
            self._referral(kid, day, weight_id, "Desnutrición aguda: evaluación", whz < -3, whz < -3)
        elif haz < -3 and rng.random() < 0.3:
            self._referral(kid, day, length_id, "Talla baja severa: evaluación", False)
        if age < HB_FROM_DAYS:
            return
        mean = next(m for limit, m in _HB_MEAN if age < limit)
        hb = round(min(16.0, max(5.0, mean + hb_effect + rng.gauss(0, 0.85))), 1)
        hb_id = self._observation(kid, codes.HEMOGLOBIN, hb, when, enc, device=True)
        if hb >= _hb_cutoff(age):
            return
        s.stats["anaemic_results"] = s.stats.get("anaemic_results", 0) + 1
        severe, moderate = hb < 7.0, hb < _hb_cutoff(age) - 1.0
        if rng.random() < (0.9 if moderate else 0.55):
            self._referral(kid, day, hb_id, "Niño con anemia: confirmación y tratamiento", severe, severe)
        if rng.random() < 0.85:
            self._medication(kid, codes.FERROUS_SULFATE, "Sulfato ferroso jarabe (15 mg Fe/5 mL)",
                             min(day + rng.randrange(1, 10), s.as_of), 180,
                             "3 mg/kg/día de hierro elemental por 6 meses", reason_obs=hb_id)

    def _vaccines(self, kid: str, birth: int) -> None:
        """A child's doses as the schedule's forecast would accept them.

        One draw per child decides which doses the family brings her to (those whose coverage is
        above it): misses cluster in the same children, as in programme data, so each dose keeps its
        scheduled coverage but most children are either up to date or behind on a few doses, not on
        one dose in every series. Each dose respects its series' minimum interval after the previous
        one (a late first dose pushes the next), so no dose is invalid and re-owed.
        """
        rng, as_of = self.rng, self.s.as_of
        attends = rng.random()
        given: dict[str, int] = {}  # series -> day of its last dose
        for dose in CHILD_SCHEDULE:
            due = birth + dose.age_days
            if due > as_of:
                break
            if attends >= dose.coverage:
                if rng.random() < 0.02:
                    self._immunization(kid, dose, due, done=False)
                continue
            series = _SERIES[dose.code]
            earliest = given[series] + _min_interval(dose) if series in given else due
            # Most doses on time; a tail comes late, often rescued by a campaign.
            delay = int(rng.expovariate(1 / 10)) if rng.random() < 0.85 else rng.randrange(30, 180)
            day = max(due, earliest) + delay
            if day <= as_of:
                self._immunization(kid, dose, day)
                given[series] = day


# The forecast's series each local vaccine code counts for (clinical/data/immunization/PE-NTS-196-2022.json).
_SERIES = {
    "BCG": "bcg", "HVB": "hepb-birth", "PENTA": "dtp", "DPT": "dtp", "IPV": "polio", "APO": "polio",
    "ROTA": "rotavirus", "NEUMO": "pneumococcal", "INFLUENZA-PED": "influenza-infant", "SPR": "mmr",
    "VARICELA": "varicella", "AMA": "yellow-fever", "HVA": "hepa",
}


def _min_interval(dose: Dose) -> int:
    """Days after the series' previous dose (the schedule: boosters 6 months, pneumococcal booster 8 weeks)."""
    if dose.dose_number >= 4:
        return 183
    if dose.code == "NEUMO" and dose.dose_number == 3:
        return 56
    return 28
