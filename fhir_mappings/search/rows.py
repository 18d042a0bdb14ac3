"""Index rows: what one resource contributes to the search indexes, one class per parameter type.

Every row names the search parameter (`param`, e.g. "code", "_lastUpdated"); the storage layer adds
the resource's type and id. Strings are stored twice: normalised (case- and accent-folded, for the
default starts-with and :contains) and as written (for :exact). Numbers are `Decimal`, instants are
timezone-aware UTC `datetime`s. A point value has `low == high`; a Range or Period may be open at
either end (`None` for numbers, `DATE_MIN`/`DATE_MAX` for dates).

Rows are NamedTuples, not frozen dataclasses: a write builds ~10 per resource, and a frozen
dataclass costs ~1.3 us to build and hash in Python against ~0.3 us. Tuples of two row classes could
compare equal, but rows are only compared among one resource's rows, where each `param` has one
type and so one row class.
"""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal
from typing import NamedTuple

from fhir_mappings.search.dates import DateRange


class TokenRow(NamedTuple):
    """A Coding, CodeableConcept coding, Identifier, ContactPoint, code, boolean, id or uri.

    `system` is None when the value has no system (a plain code or boolean gets the code system of
    its required binding when there is exactly one, e.g. administrative-gender). For an Identifier
    `code` is its value and `type_system`/`type_code` its type coding (for :of-type); a ContactPoint
    gives its `system` (phone, email...) and value. `text` is the normalised display, CodeableConcept
    text or Identifier type text (for :text); a row with only `text` carries a CodeableConcept.text.
    """

    param: str
    system: str | None
    code: str | None
    text: str | None = None
    type_system: str | None = None
    type_code: str | None = None


class StringRow(NamedTuple):
    """One string part (a HumanName's family and each given name are separate rows)."""

    param: str
    value: str  # normalised: NFKD, accents dropped, casefolded
    exact: str  # as written


class DateRow(NamedTuple):
    param: str
    range: DateRange

    @property
    def low(self) -> datetime:
        return self.range.low

    @property
    def high(self) -> datetime:
        return self.range.high


class ReferenceRow(NamedTuple):
    """A Reference, canonical or uri reference.

    Local references (relative, or absolute on our base URL) fill `target_type`/`target_id`
    (and `version` for `_history` references). Anything else fills `url` (external absolute URL,
    urn:uuid:, canonical without its `|version`, which goes to `version`); `target_type` is still
    set when known (Reference.type or a recognisable `.../Type/id` tail). `identifier_*` carry
    Reference.identifier for :identifier.
    """

    param: str
    target_type: str | None
    target_id: str | None
    version: str | None = None
    url: str | None = None
    identifier_system: str | None = None
    identifier_value: str | None = None


class QuantityRow(NamedTuple):
    """A Quantity (incl. Age, Duration, Money) or a Range of quantities.

    `code` is the coded unit (Money: the currency, with system urn:iso:std:iso:4217), `unit` the
    human unit. When `system` is UCUM, `canonical_*` hold the value in the canonical unit (see ucum.py);
    otherwise they are None.
    """

    param: str
    low: Decimal | None
    high: Decimal | None
    system: str | None
    code: str | None
    unit: str | None
    canonical_code: str | None = None
    canonical_low: Decimal | None = None
    canonical_high: Decimal | None = None


class NumberRow(NamedTuple):
    param: str
    low: Decimal | None
    high: Decimal | None


class UriRow(NamedTuple):
    param: str
    value: str


class CompositeRow(NamedTuple):
    """One combination of component values taken from the same element (e.g. one Observation.component).

    `components[i]` is a row of the i-th component's type, whose `param` is that component's code.
    """

    param: str
    components: tuple[IndexValue, ...]


IndexValue = TokenRow | StringRow | DateRow | ReferenceRow | QuantityRow | NumberRow | UriRow | CompositeRow
