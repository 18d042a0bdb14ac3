"""The programme's shared resources: organisations, places, devices, staff, roles and care teams.

Everything a household refers to is built here first, in dependency order, together with the small
lookup (`Programme`) the household builder needs to pick a CHW, a facility or a device.
"""

from __future__ import annotations

import random
from dataclasses import dataclass, field
from typing import Any

from seed import codes, names, places
from seed.ids import STAFF_SERIAL_BASE, IdFactory, iso_date, new_meta, ref

CHWS = 69
SUPERVISORS = 8

Resource = dict[str, Any]


@dataclass(frozen=True, slots=True)
class Chw:
    practitioner_id: str
    community: places.Community
    community_location_id: str
    facility: places.Facility
    facility_org_id: str
    facility_location_id: str
    device_id: str


@dataclass(slots=True)
class Programme:
    organization_id: str
    hospital_org_id: str
    hospital_location_id: str
    facility_org_ids: dict[str, str]
    chws: list[Chw] = field(default_factory=list)
    resources: list[Resource] = field(default_factory=list)


def _address(line: list[str] | None = None) -> dict[str, Any]:
    address: dict[str, Any] = {
        "use": "work", "city": places.CITY, "district": places.PROVINCE,
        "state": places.REGION, "country": places.COUNTRY,
    }
    if line:
        address["line"] = line
    return address


def _position(lat: float, lon: float, alt: float) -> dict[str, float]:
    return {"longitude": lon, "latitude": lat, "altitude": alt}


def _organization(oid: str, name: str, org_type: str, display: str, **extra: Any) -> Resource:
    return {
        "resourceType": "Organization", "id": oid, "meta": new_meta(), "active": True,
        "type": [codes.concept(codes.ORGANIZATION_TYPE, org_type, display)],
        "name": name, **extra,
    }


def _location(lid: str, name: str, physical: tuple[str, str], position: dict[str, float],
              **extra: Any) -> Resource:
    return {
        "resourceType": "Location", "id": lid, "meta": new_meta(), "status": "active",
        "name": name, "mode": "instance",
        "physicalType": codes.concept(codes.LOCATION_PHYSICAL_TYPE, *physical),
        "position": position, **extra,
    }


def _person_name(rng: random.Random, female: bool) -> dict[str, Any]:
    given = [rng.choice(names.FEMALE if female else names.MALE)]
    father, mother = rng.choice(names.SURNAMES), rng.choice(names.SURNAMES)
    return human_name(given, father, mother)


def human_name(given: list[str], father: str, mother: str) -> dict[str, Any]:
    # Peruvian names carry two surnames; the core extensions keep which one is which.
    family = f"{father} {mother}"
    return {
        "use": "official", "text": f"{' '.join(given)} {family}", "family": family,
        "_family": {"extension": [
            {"url": codes.FATHERS_FAMILY, "valueString": father},
            {"url": codes.MOTHERS_FAMILY, "valueString": mother},
        ]},
        "given": given,
    }


def build_programme(ids: IdFactory, rng: random.Random, as_of: int) -> Programme:
    """Build the shared resources (in `Programme.resources`, referenced before referrers)."""
    out: list[Resource] = []
    geresa_id = ids("Organization/geresa")
    out.append(_organization(geresa_id, places.GERESA_NAME, "govt", "Government",
                             address=[_address()]))
    programme_id = ids("Organization/programme")
    out.append(_organization(
        programme_id, places.PROGRAMME_NAME, "cg", "Community Group",
        alias=["ACS La Esperanza"], address=[_address()], partOf=ref("Organization", geresa_id),
    ))
    district_id = ids("Location/district")
    name, lat, lon, alt = places.DISTRICT
    out.append(_location(
        district_id, name, ("jdn", "Jurisdiction"), _position(lat, lon, alt),
        description="Distrito de La Esperanza, provincia de Trujillo",
        managingOrganization=ref("Organization", programme_id), address=_address(),
    ))

    facility_org: dict[str, str] = {}
    facility_loc: dict[str, str] = {}
    for fac in places.FACILITIES:
        org_id = ids(f"Organization/{fac.key}")
        facility_org[fac.key] = org_id
        out.append(_organization(
            org_id, fac.name, "prov", "Healthcare Provider", alias=[fac.alias],
            identifier=[{"system": codes.SID_RENIPRESS, "value": fac.renipress}],
            telecom=[{"system": "phone", "value": f"+5144{rng.randrange(200000, 299999)}", "use": "work"}],
            address=[_address()], partOf=ref("Organization", geresa_id),
        ))
        loc_id = ids(f"Location/{fac.key}")
        facility_loc[fac.key] = loc_id
        out.append(_location(
            loc_id, fac.name, ("bu", "Building"), _position(fac.latitude, fac.longitude, fac.altitude),
            managingOrganization=ref("Organization", org_id), address=_address(),
        ))

    community_loc: dict[str, str] = {}
    for com in places.COMMUNITIES:
        loc_id = ids(f"Location/{com.key}")
        community_loc[com.key] = loc_id
        out.append(_location(
            loc_id, com.name, ("area", "Area"), _position(com.latitude, com.longitude, com.altitude),
            description=f"Sector {com.name}, La Esperanza",
            partOf=ref("Location", district_id),
            managingOrganization=ref("Organization", facility_org[com.facility]),
        ))

    communities = {c.key: c for c in places.COMMUNITIES}
    facilities = {f.key: f for f in places.FACILITIES}
    started = iso_date(as_of - 3 * 365)
    staff_serial = STAFF_SERIAL_BASE
    programme = Programme(programme_id, facility_org[places.HOSPITAL.key],
                          facility_loc[places.HOSPITAL.key], facility_org)
    teams: list[tuple[str, str, list[str]]] = []  # (supervisor id, facility key, CHW ids)
    # 69 CHWs over 8 sectors: the first 5 sectors get 9 CHWs, the others 8.
    per_sector = [CHWS // SUPERVISORS + (1 if s < CHWS % SUPERVISORS else 0) for s in range(SUPERVISORS)]
    for sector, community_keys in enumerate(places.SECTORS):
        fac = facilities[communities[community_keys[0]].facility]
        device_id = ids(f"Device/hemocue-{sector}")
        out.append({
            "resourceType": "Device", "id": device_id, "meta": new_meta(), "status": "active",
            "identifier": [{"system": codes.SID_DEVICE_SERIAL, "value": f"HC301-{1040 + sector * 17:06d}"}],
            "manufacturer": "HemoCue AB",
            "deviceName": [{"name": "HemoCue Hb 301", "type": "manufacturer-name"}],
            "type": {"text": "Hemoglobinómetro portátil"},
            "owner": ref("Organization", facility_org[fac.key]),
            "location": ref("Location", facility_loc[fac.key]),
        })
        sup_id = ids(f"Practitioner/supervisor-{sector}")
        staff_serial += 1
        female = rng.random() < 0.75
        profession = rng.choice(("Licenciada en Enfermería", "Obstetra")) if female else "Licenciado en Enfermería"
        out.append(_practitioner(ids, rng, sup_id, staff_serial, female, profession))
        out.append(_role(ids(f"PractitionerRole/supervisor-{sector}"), sup_id, facility_org[fac.key],
                         "supervisor", "Supervisor(a) de ACS", started, [facility_loc[fac.key]]))
        chw_ids: list[str] = []
        for k in range(per_sector[sector]):
            com = communities[community_keys[k % len(community_keys)]]
            chw_id = ids(f"Practitioner/chw-{sector}-{k}")
            staff_serial += 1
            out.append(_practitioner(ids, rng, chw_id, staff_serial, rng.random() < 0.85,
                                     "Agente Comunitario de Salud"))
            out.append(_role(ids(f"PractitionerRole/chw-{sector}-{k}"), chw_id, programme_id, "chw",
                             "Agente Comunitario de Salud", started, [community_loc[com.key]]))
            chw_ids.append(chw_id)
            home = facilities[com.facility]
            programme.chws.append(Chw(chw_id, com, community_loc[com.key], home, facility_org[home.key],
                                      facility_loc[home.key], device_id))
        teams.append((sup_id, fac.key, chw_ids))

    for sector, (sup_id, fac_key, chw_ids) in enumerate(teams):
        label = " / ".join(communities[k].name for k in places.SECTORS[sector])
        out.append({
            "resourceType": "CareTeam", "id": ids(f"CareTeam/sector-{sector}"), "meta": new_meta(),
            "status": "active", "name": f"Equipo ACS {label}",
            "period": {"start": started},
            "participant": [
                {"role": [codes.concept(codes.PROGRAMME_ROLE_SYSTEM, "supervisor", "Supervisor")],
                 "member": ref("Practitioner", sup_id)},
                *({"role": [codes.concept(codes.PROGRAMME_ROLE_SYSTEM, "chw", "Community health worker")],
                   "member": ref("Practitioner", chw), "onBehalfOf": ref("Organization", programme_id)}
                  for chw in chw_ids),
            ],
            "managingOrganization": [ref("Organization", facility_org[fac_key])],
        })
    programme.resources = out
    return programme


def _practitioner(ids: IdFactory, rng: random.Random, pid: str, serial: int, female: bool,
                  profession: str) -> Resource:
    return {
        "resourceType": "Practitioner", "id": pid, "meta": new_meta(), "active": True,
        "identifier": [codes.identifier("DNI", ids.dni(serial))],
        "name": [_person_name(rng, female)],
        "telecom": [{"system": "phone", "value": f"+519{rng.randrange(10**8):08d}", "use": "mobile"}],
        "gender": "female" if female else "male",
        "qualification": [{"code": {"text": profession}}],
    }


def _role(rid: str, practitioner_id: str, organization_id: str, code: str, display: str, started: str,
          location_ids: list[str]) -> Resource:
    return {
        "resourceType": "PractitionerRole", "id": rid, "meta": new_meta(), "active": True,
        "period": {"start": started},
        "practitioner": ref("Practitioner", practitioner_id),
        "organization": ref("Organization", organization_id),
        "code": [codes.concept(codes.PROGRAMME_ROLE_SYSTEM, code, display)],
        "location": [ref("Location", lid) for lid in location_ids],
    }
