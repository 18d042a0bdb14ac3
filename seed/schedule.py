"""Peru's immunization schedule (NTS 196-MINSA/DGIESP-2022, domain.md section 5) as generator data.

`coverage` is the chance a child receives the dose at all, before the child's own engagement shifts
it; it falls with age as in ENDES-like programme data (later doses are missed more often). CVX codes
marked [R] in domain.md are recalled, not checked against the CVX table. Local codes and CVX codes
follow `clinical/data/immunization/PE-NTS-196-2022.json` so the forecast recognises every dose.
"""

from __future__ import annotations

from dataclasses import dataclass

SCHEDULE_NAME = "PE-NTS-196-2022"  # the name of clinical/data/immunization's rule set


@dataclass(frozen=True, slots=True)
class Dose:
    code: str
    display: str
    dose_number: int
    age_days: int
    coverage: float
    cvx: str | None
    cvx_display: str | None


def _d(code: str, display: str, n: int, age: int, cov: float, cvx: str | None = None,
       cvx_display: str | None = None) -> Dose:
    return Dose(code, display, n, age, cov, cvx, cvx_display)


CHILD_SCHEDULE: tuple[Dose, ...] = (
    _d("BCG", "BCG", 1, 0, 0.96, "19", "BCG"),
    _d("HVB", "Hepatitis B (recién nacido)", 1, 0, 0.92, "08", "Hep B, adolescent or pediatric"),
    _d("PENTA", "Pentavalente", 1, 61, 0.93, "102", "DTP-Hib-Hep B"),
    _d("IPV", "Antipolio inactivada", 1, 61, 0.92, "10", "IPV"),
    _d("ROTA", "Rotavirus", 1, 61, 0.90, "119", "rotavirus, monovalent"),
    _d("NEUMO", "Neumococo", 1, 61, 0.91, "133", "Pneumococcal conjugate PCV 13"),
    _d("PENTA", "Pentavalente", 2, 122, 0.89, "102", "DTP-Hib-Hep B"),
    _d("IPV", "Antipolio inactivada", 2, 122, 0.88, "10", "IPV"),
    _d("ROTA", "Rotavirus", 2, 122, 0.86, "119", "rotavirus, monovalent"),
    _d("NEUMO", "Neumococo", 2, 122, 0.87, "133", "Pneumococcal conjugate PCV 13"),
    _d("PENTA", "Pentavalente", 3, 183, 0.84, "102", "DTP-Hib-Hep B"),
    _d("APO", "Antipolio oral", 3, 183, 0.82, "178", "bOPV"),
    _d("INFLUENZA-PED", "Influenza pediátrica", 1, 183, 0.70, "88", "influenza, unspecified formulation"),
    _d("INFLUENZA-PED", "Influenza pediátrica", 2, 213, 0.55, "88", "influenza, unspecified formulation"),
    _d("SPR", "Sarampión, paperas, rubéola (SPR)", 1, 365, 0.85, "03", "MMR"),
    _d("VARICELA", "Varicela", 1, 365, 0.80, "21", "varicella"),
    _d("NEUMO", "Neumococo (refuerzo)", 3, 365, 0.81, "133", "Pneumococcal conjugate PCV 13"),
    _d("AMA", "Fiebre amarilla", 1, 456, 0.76, "184", "Yellow fever, unspecified formulation"),
    _d("HVA", "Hepatitis A", 1, 456, 0.74, "83", "Hep A, ped/adol, 2 dose"),
    _d("SPR", "Sarampión, paperas, rubéola (SPR)", 2, 548, 0.72, "03", "MMR"),
    _d("DPT", "DPT (1er refuerzo)", 4, 548, 0.70, "01", "DTP"),
    _d("APO", "Antipolio oral (1er refuerzo)", 4, 548, 0.69, "178", "bOPV"),
    _d("DPT", "DPT (2do refuerzo)", 5, 1461, 0.62, "01", "DTP"),
    _d("APO", "Antipolio oral (2do refuerzo)", 5, 1461, 0.61, "178", "bOPV"),
)

# Pregnant women: (dose, first gestational day it may be given, last gestational day).
DTPA_PREGNANCY = (_d("DTPA", "dTpa (gestante)", 1, 0, 0.74, "115", "Tdap"), 27 * 7, 36 * 7)
INFLUENZA_PREGNANCY = (_d("INFLUENZA-ADULTO", "Influenza adulto (gestante)", 1, 0, 0.52, "88",
                          "influenza, unspecified formulation"), 20 * 7, 38 * 7)
