"""Pure FHIR search: the parameter registry, index extraction and the query parser.

registry()                  the R4 search parameters (committed data, loaded once)
extract_index_values(res)   index rows of one resource (rows.py)
parse_query(type, pairs)    typed query (query_ast.py), SearchError for malformed values
"""

from fhir_mappings.search.dates import DATE_MAX, DATE_MIN, DateRange, InvalidDate, parse_date_range
from fhir_mappings.search.errors import SearchError
from fhir_mappings.search.extract import extract_index_values
from fhir_mappings.search.query import QueryLimits, configure_limits, parse_query
from fhir_mappings.search.query_ast import SearchQuery
from fhir_mappings.search.registry import SearchParam, SearchRegistry, registry
from fhir_mappings.search.rows import (
    CompositeRow,
    DateRow,
    IndexValue,
    NumberRow,
    QuantityRow,
    ReferenceRow,
    StringRow,
    TokenRow,
    UriRow,
)
from fhir_mappings.search.text import normalise

__all__ = [
    "DATE_MAX",
    "DATE_MIN",
    "CompositeRow",
    "DateRange",
    "DateRow",
    "IndexValue",
    "InvalidDate",
    "NumberRow",
    "QuantityRow",
    "QueryLimits",
    "ReferenceRow",
    "SearchError",
    "SearchParam",
    "SearchQuery",
    "SearchRegistry",
    "StringRow",
    "TokenRow",
    "UriRow",
    "configure_limits",
    "extract_index_values",
    "normalise",
    "parse_date_range",
    "parse_query",
    "registry",
]
