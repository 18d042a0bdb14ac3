"""The one error the pure search layer raises for a malformed query (rendered as a 400)."""

from __future__ import annotations


class SearchError(ValueError):
    """A search value or result parameter that cannot be understood (bad date, bad prefix, ...)."""

    def __init__(self, message: str, *, param: str | None = None) -> None:
        super().__init__(f"{param}: {message}" if param else message)
        self.message = message
        self.param = param
