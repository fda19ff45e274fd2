"""Label values with bounded cardinality, and the few pure mappings from a request's facts
to label values (route name, error class). Every series a label value opens lives until
the process ends, so values that grow with traffic (keys, teams, routes, upstream error
codes) are capped: past ``max_values`` distinct values, new ones are filed as ``other``."""

from __future__ import annotations

OTHER = "other"
NONE = "none"


class BoundedValues:
    """``value -> label``: the first ``max_values`` distinct values are themselves, later
    ones ``other``. A dict lookup per call; nothing is built for values already seen.

    >>> teams = BoundedValues(1)
    >>> teams("research"), teams("sales"), teams("research")
    ('research', 'other', 'research')
    """

    __slots__ = ("_max", "_seen")

    def __init__(self, max_values: int) -> None:
        self._max = max_values
        self._seen: dict[str | None, str] = {None: NONE, "": NONE}

    def __call__(self, value: str | None) -> str:
        label = self._seen.get(value)
        if label is not None:
            return label
        if len(self._seen) - 2 >= self._max:
            return OTHER
        assert value is not None
        self._seen[value] = value
        return value

    def values(self) -> list[str]:
        """The values admitted so far (``none`` excluded)."""
        return [v for k, v in self._seen.items() if k]


class RouteNames(BoundedValues):
    """The route part of ``Outcome.route`` (``alias:auto;cascade;x>y`` -> ``alias:auto``): the
    policy and rule path are in the ledger, not in a label."""

    __slots__ = ("_names",)

    def __init__(self, max_values: int) -> None:
        super().__init__(max_values)
        self._names: dict[str | None, str] = {}

    def __call__(self, value: str | None) -> str:
        label = self._names.get(value)
        if label is None:
            label = super().__call__(value.split(";", 1)[0] if value else None)
            if len(self._names) < 10 * self._max:  # the raw strings are bounded too
                self._names[value] = label
        return label


def upstream_error_class(status: int, code: str | None) -> str:
    """What kind of failure an upstream call was, from its status and error-tree code
    (the vocabulary of ``resilience.breaker.ErrorClass``, plus ``cancelled``)."""
    if code in ("cancelled", "client_closed") or status == 499:
        return "cancelled"
    if code == "upstream_timeout":
        return "timeout"
    if code == "upstream_connection_failed":
        return "connection"
    if code == "upstream_bad_response":
        return "bad_response"
    if code == "upstream_authentication_failed" or status in (401, 403):
        return "auth"
    if status == 429:
        return "rate_limit"
    if status >= 500:
        return "server"
    return "client"
