"""OpenAPI links: where an id in one operation's answer is the path parameter of another.

Clients read them to chain calls; schemathesis follows them in its stateful tests
(create a delivery, then get, update and cancel that delivery).
"""

from __future__ import annotations

import re
from typing import Any


def operation_ref(method: str, path: str) -> str:
    """A JSON-pointer ``operationRef`` (RFC 6901 escapes ``~`` and ``/``)."""
    return "#/paths/" + path.replace("~", "~0").replace("/", "~1") + "/" + method.lower()


def feeds(param: str, field: str, *targets: tuple[str, str],
          statuses: tuple[int, ...] = (201,)) -> dict[int | str, dict[str, Any]]:
    """``responses=`` for a route whose JSON answer holds, at top-level ``field``, the value
    of the path parameter ``param`` of each ``(method, full path)`` target; one link per
    target on each of ``statuses`` (a replayed create answers 200 with the same body)."""
    links = {
        re.sub(r"\W+", "_", f"{method}{path}").strip("_"): {
            "operationRef": operation_ref(method, path),
            "parameters": {param: f"$response.body#/{field}"},
        }
        for method, path in targets
    }
    replayed = {"description": "Replayed: the same resource",
                "content": {"application/json": {"schema": {"type": "object"}}}}
    return {s: {**({"description": "Created"} if s == 201 else replayed), "links": links}
            for s in statuses}
