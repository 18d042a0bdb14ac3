"""La Esperanza (Trujillo, La Libertad, Peru): the places and facilities of the synthetic programme.

Community and facility names are those of the district; codes, coordinates and catchments are
invented for the demo (positions are within about 3 km of the district centre, altitudes 70-120 m).
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class Facility:
    key: str
    name: str
    alias: str
    renipress: str
    latitude: float
    longitude: float
    altitude: float
    first_level: bool


@dataclass(frozen=True, slots=True)
class Community:
    key: str
    name: str
    facility: str
    latitude: float
    longitude: float
    altitude: float


DISTRICT = ("La Esperanza", -8.0778, -79.0453, 92.0)
CITY, PROVINCE, REGION, COUNTRY = "La Esperanza", "Trujillo", "La Libertad", "PE"

PROGRAMME_NAME = "Programa de Agentes Comunitarios de Salud de La Esperanza"
GERESA_NAME = "Gerencia Regional de Salud La Libertad"

FACILITIES: tuple[Facility, ...] = (
    Facility("cs-la-esperanza", "C.S. La Esperanza", "Centro de Salud La Esperanza", "00010612",
             -8.0765, -79.0431, 88.0, True),
    Facility("ps-jerusalen", "P.S. Jerusalén", "Puesto de Salud Jerusalén", "00010615",
             -8.0705, -79.0512, 104.0, True),
    Facility("cs-wichanzao", "C.S. Wichanzao", "Centro de Salud Wichanzao", "00010618",
             -8.0842, -79.0498, 78.0, True),
    Facility("ps-manuel-arevalo", "P.S. Manuel Arévalo", "Puesto de Salud Manuel Arévalo", "00010621",
             -8.0659, -79.0395, 116.0, True),
    Facility("hrdt", "Hospital Regional Docente de Trujillo", "HRDT", "00010003",
             -8.1046, -79.0261, 34.0, False),
)
FIRST_LEVEL = tuple(f for f in FACILITIES if f.first_level)
HOSPITAL = next(f for f in FACILITIES if not f.first_level)

COMMUNITIES: tuple[Community, ...] = (
    Community("nuevo-jerusalen", "Nuevo Jerusalén", "ps-jerusalen", -8.0681, -79.0549, 112.0),
    Community("jerusalen", "Jerusalén", "ps-jerusalen", -8.0712, -79.0521, 106.0),
    Community("wichanzao", "Wichanzao", "cs-wichanzao", -8.0851, -79.0511, 76.0),
    Community("la-esperanza-parte-baja", "La Esperanza Parte Baja", "cs-wichanzao",
              -8.0871, -79.0462, 72.0),
    Community("manuel-arevalo-1", "Manuel Arévalo I Etapa", "ps-manuel-arevalo", -8.0648, -79.0412, 114.0),
    Community("manuel-arevalo-2", "Manuel Arévalo II Etapa", "ps-manuel-arevalo", -8.0622, -79.0387, 118.0),
    Community("manuel-arevalo-3", "Manuel Arévalo III Etapa", "ps-manuel-arevalo", -8.0597, -79.0366, 120.0),
    Community("las-palmeras", "Las Palmeras del Norte", "cs-la-esperanza", -8.0739, -79.0417, 96.0),
    Community("la-esperanza-parte-alta", "La Esperanza Parte Alta", "cs-la-esperanza",
              -8.0752, -79.0389, 101.0),
    Community("santa-veronica", "Santa Verónica", "cs-la-esperanza", -8.0793, -79.0402, 90.0),
    Community("pueblo-libre", "Pueblo Libre", "cs-la-esperanza", -8.0806, -79.0437, 86.0),
    Community("indoamerica", "Indoamérica", "cs-wichanzao", -8.0829, -79.0533, 80.0),
    Community("fraternidad", "Fraternidad", "ps-jerusalen", -8.0694, -79.0488, 99.0),
    Community("ramiro-priale", "Ramiro Prialé", "ps-manuel-arevalo", -8.0669, -79.0451, 108.0),
)

# Supervision sectors: each of the 8 supervisors oversees the CHWs of these communities.
SECTORS: tuple[tuple[str, ...], ...] = (
    ("nuevo-jerusalen",),
    ("jerusalen", "fraternidad"),
    ("wichanzao", "indoamerica"),
    ("la-esperanza-parte-baja",),
    ("manuel-arevalo-1", "manuel-arevalo-2"),
    ("manuel-arevalo-3", "ramiro-priale"),
    ("las-palmeras", "la-esperanza-parte-alta"),
    ("santa-veronica", "pueblo-libre"),
)
