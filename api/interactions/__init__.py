"""One module per FHIR interaction; each exposes `router`."""
