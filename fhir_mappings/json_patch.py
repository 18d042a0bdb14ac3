"""JSON Patch (RFC 6902) within limits: a few operations cannot make a worker run out of memory.

`copy` duplicates a value: copying an array into itself doubles it, so 40 operations of a 100-byte
patch would ask for terabytes. The operations are applied one at a time and the values that `copy`
and `add`/`replace` bring in are counted (in JSON nodes); past the budget the patch is refused.
"""

from __future__ import annotations

from typing import Any

import jsonpatch

from fhir_mappings.outcomes import Invalid, Issue, LimitExceeded

MAX_OPERATIONS = 100  # PUENTE_MAX_PATCH_OPERATIONS (the API checks the configured value first)
MAX_ADDED_NODES = 100_000  # JSON nodes that `copy` may add over the whole patch


def check_operation_count(operations: Any, limit: int = MAX_OPERATIONS) -> None:
    if isinstance(operations, list) and len(operations) > limit:
        what = f"{len(operations)} operations; at most {limit}"
        raise LimitExceeded(
            f"The JSON Patch exceeds a limit (PUENTE_MAX_PATCH_OPERATIONS): {what}",
            issues=[Issue(f"{what} (limit PUENTE_MAX_PATCH_OPERATIONS)", "too-costly")],
        )


def apply(document: Any, operations: Any, *, max_operations: int = MAX_OPERATIONS) -> Any:
    """`document` patched in place (pass a copy to keep it); Invalid for a patch that does not apply,
    LimitExceeded past a limit."""
    if not isinstance(operations, list):
        raise Invalid("A JSON Patch document is an array of operations")
    check_operation_count(operations, max_operations)
    budget = MAX_ADDED_NODES
    result = document
    try:
        for operation in operations:
            if isinstance(operation, dict) and operation.get("op") == "copy":
                source = jsonpatch.JsonPointer(operation.get("from", "")).resolve(result)
                budget -= _nodes(source, budget + 1)
                if budget < 0:
                    what = f"`copy` operations may add at most {MAX_ADDED_NODES} JSON values"
                    raise LimitExceeded(f"The JSON Patch exceeds a limit: {what}", issues=[Issue(what, "too-costly")])
            result = jsonpatch.JsonPatch([operation]).apply(result, in_place=True)
    except (jsonpatch.JsonPatchException, jsonpatch.JsonPointerException, TypeError, KeyError, AttributeError,
            ValueError, IndexError) as exc:
        raise Invalid(f"The JSON Patch could not be applied: {exc}") from exc
    return result


def _nodes(value: Any, stop: int) -> int:
    """How many JSON nodes `value` holds, counting no further than `stop`."""
    count, stack = 0, [value]
    while stack and count < stop:
        node = stack.pop()
        count += 1
        if isinstance(node, dict):
            stack.extend(node.values())
        elif isinstance(node, list):
            stack.extend(node)
    return count
