"""Pure FHIR search: the parameter registry, index extraction and the query parser."""
