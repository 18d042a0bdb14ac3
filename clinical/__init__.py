"""Pure, versioned clinical rules for CHW programmes: no I/O beyond package data, no FHIR objects.

- classify_anaemia(...)            -> AnaemiaResult     (rule set WHO-2024)
- growth_zscores(...)              -> GrowthResult      (WHO Child Growth Standards, rule set WHO-2006)
- forecast_immunizations(...)      -> Forecast          (schedule PE-NTS-196-2022, child series)
- forecast_pregnancy_immunizations -> Forecast          (same schedule, pregnancy series)

Plain dataclasses in and out; the API layer maps them to FHIR. Code system URIs live in
clinical.codes; unit conversion (UCUM) in clinical.units.
"""

from clinical import codes
from clinical.anaemia import (
    AnaemiaClass,
    AnaemiaResult,
    AnaemiaRuleset,
    classify_anaemia,
    load_anaemia_ruleset,
    trimester_from_gestational_weeks,
)
from clinical.codes import Coding
from clinical.growth import (
    GrowthResult,
    GrowthRuleset,
    Indicator,
    IndicatorResult,
    growth_zscores,
    load_growth_ruleset,
)
from clinical.immunization import (
    AdministeredDose,
    DoseEvaluation,
    DoseStatus,
    Forecast,
    ForecastStatus,
    ForecastWarning,
    Recommendation,
    Schedule,
    Vaccine,
    forecast_immunizations,
    forecast_pregnancy_immunizations,
    gestational_age_days,
    load_schedule,
    pregnancy_start_from_edd,
)
from clinical.units import UnitError, hemoglobin_to_g_per_l, length_to_cm, weight_to_kg

__all__ = [
    "AdministeredDose",
    "AnaemiaClass",
    "AnaemiaResult",
    "AnaemiaRuleset",
    "Coding",
    "DoseEvaluation",
    "DoseStatus",
    "Forecast",
    "ForecastStatus",
    "ForecastWarning",
    "GrowthResult",
    "GrowthRuleset",
    "Indicator",
    "IndicatorResult",
    "Recommendation",
    "Schedule",
    "UnitError",
    "Vaccine",
    "classify_anaemia",
    "codes",
    "forecast_immunizations",
    "forecast_pregnancy_immunizations",
    "gestational_age_days",
    "growth_zscores",
    "hemoglobin_to_g_per_l",
    "length_to_cm",
    "load_anaemia_ruleset",
    "load_growth_ruleset",
    "load_schedule",
    "pregnancy_start_from_edd",
    "trimester_from_gestational_weeks",
    "weight_to_kg",
]
