"""The price catalog: the shipped, dated list of models and prices, merged with user files.
Owns the catalog JSON format (strict parsing, writing back) and lookups by model id or alias.
It must not compute cost (``cost.compute_cost`` does) and never touches the network; it runs
at gateway start, so it reads JSON into plain dataclasses and nothing heavier.
"""

from __future__ import annotations

import functools
import importlib.resources
import re
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from datetime import date
from decimal import Decimal, InvalidOperation
from pathlib import Path
from typing import Any

import orjson

from thrifty.errors import ConfigError
from thrifty.pricing.price import CAPABILITIES, ModelInfo, Price

CURRENCY = "USD"
UNIT = "per_million_tokens"
_TOP_KEYS = frozenset({"as_of", "currency", "unit", "models"})
_ENTRY_KEYS = frozenset(
    {
        "provider", "model", "aliases", "input", "output", "cached_input", "cache_write",
        "context_window", "max_output", "capabilities", "source",
    }
)
_DATE = re.compile(r"^\d{4}-\d{2}-\d{2}$")
_SHIPPED = "catalog.json"


@dataclass(frozen=True, slots=True)
class CatalogEntry:
    """One model in a catalog: its price card plus the other ids that mean the same model
    (dated snapshots, ``-latest`` names). Aliases live here because ``ModelInfo`` is the
    runtime value every other module shares, and only the catalog resolves names."""

    info: ModelInfo
    aliases: tuple[str, ...] = ()


class Catalog:
    """An immutable set of models keyed by ``provider/model``. Lookups accept the vendor id or
    any alias; an exact id always wins over another entry's alias."""

    __slots__ = ("_aliases", "_by_name", "_entries", "as_of")

    def __init__(self, as_of: str, entries: Iterable[CatalogEntry] = ()) -> None:
        self.as_of = as_of
        self._entries: dict[str, ModelInfo] = {}
        self._aliases: dict[str, tuple[str, ...]] = {}
        for entry in entries:
            # a later entry for the same provider/model replaces the earlier one in place,
            # so merged catalogs keep the shipped order
            self._entries[entry.info.key] = entry.info
            self._aliases[entry.info.key] = entry.aliases
        self._by_name = self._index()

    def _index(self) -> dict[tuple[str, str], str]:
        by_name: dict[tuple[str, str], str] = {}
        for key, info in self._entries.items():
            by_name[(info.provider, info.model)] = key
        for key, info in self._entries.items():
            for alias in self._aliases[key]:
                by_name.setdefault((info.provider, alias), key)
        return by_name

    def get(self, provider: str, model: str) -> ModelInfo | None:
        """The entry whose vendor id or alias is ``model`` at ``provider``, else None."""
        key = self._by_name.get((provider, model))
        return None if key is None else self._entries[key]

    def find(self, model: str) -> list[ModelInfo]:
        """Every provider's entry for ``model`` (id or alias); exact ids first."""
        exact = [info for info in self._entries.values() if info.model == model]
        by_alias = [
            info
            for key, info in self._entries.items()
            if model in self._aliases[key] and info not in exact
        ]
        return exact + by_alias

    def aliases(self, provider: str, model: str) -> tuple[str, ...]:
        key = self._by_name.get((provider, model))
        return () if key is None else self._aliases[key]

    def models(self, provider: str | None = None) -> list[ModelInfo]:
        return [i for i in self._entries.values() if provider is None or i.provider == provider]

    def providers(self) -> list[str]:
        return sorted({info.provider for info in self._entries.values()})

    def entries(self) -> list[CatalogEntry]:
        return [CatalogEntry(info, self._aliases[key]) for key, info in self._entries.items()]

    def with_entries(self, entries: Iterable[ModelInfo]) -> Catalog:
        """A new catalog where ``entries`` replace the same provider/model (keeping its
        aliases) and are appended otherwise."""
        return Catalog(
            self.as_of,
            [*self.entries(), *(CatalogEntry(i, self._aliases.get(i.key, ())) for i in entries)],
        )

    def merged(self, other: Catalog) -> Catalog:
        """A new catalog where ``other``'s entries (with their own aliases) override ours.
        The date stays ours: it dates the shipped list the overrides are applied to."""
        return Catalog(self.as_of, [*self.entries(), *other.entries()])

    def __len__(self) -> int:
        return len(self._entries)

    def __iter__(self) -> Iterator[ModelInfo]:
        return iter(list(self._entries.values()))

    def __repr__(self) -> str:
        return f"Catalog(as_of={self.as_of!r}, models={len(self)})"


# -- parsing ---------------------------------------------------------------------------------


def _fail(origin: str, where: str, field: str, value: object, fix: str) -> ConfigError:
    shown = repr(value) if len(repr(value)) <= 80 else repr(value)[:77] + "..."
    return ConfigError(
        f"{origin}: {where}: field '{field}' = {shown} is invalid; {fix}", param=field
    )


def parse_catalog(data: object, *, origin: str) -> Catalog:
    """Validate a catalog document (already decoded from JSON) and build a Catalog. Every error
    names ``origin``, the entry, the field, the bad value and the fix."""
    if not isinstance(data, dict):
        raise _fail(origin, "top level", "(document)", type(data).__name__,
                    'the catalog must be a JSON object {"as_of", "currency", "unit", "models"}')
    unknown = sorted(set(data) - _TOP_KEYS)
    if unknown:
        raise _fail(origin, "top level", unknown[0], data[unknown[0]],
                    f"remove it; allowed keys are {sorted(_TOP_KEYS)}")
    as_of = data.get("as_of")
    if not isinstance(as_of, str) or not _DATE.match(as_of) or not _valid_date(as_of):
        raise _fail(origin, "top level", "as_of", as_of, 'write the date as "YYYY-MM-DD"')
    if data.get("currency") != CURRENCY:
        raise _fail(origin, "top level", "currency", data.get("currency"),
                    f'set it to "{CURRENCY}"')
    if data.get("unit") != UNIT:
        raise _fail(origin, "top level", "unit", data.get("unit"), f'set it to "{UNIT}"')
    models = data.get("models")
    if not isinstance(models, list):
        raise _fail(origin, "top level", "models", models, "make it a list of model entries")
    entries = [_parse_entry(raw, origin, index) for index, raw in enumerate(models)]
    _check_unique(entries, origin)
    return Catalog(as_of, entries)


def _valid_date(text: str) -> bool:
    try:
        date.fromisoformat(text)
    except ValueError:
        return False
    return True


def _parse_entry(raw: object, origin: str, index: int) -> CatalogEntry:
    where = f"models[{index}]"
    if not isinstance(raw, dict):
        raise _fail(origin, where, "(entry)", raw, "each model entry must be a JSON object")
    provider = _name(raw, "provider", origin, where)
    model = _name(raw, "model", origin, where)
    where = f"models[{index}] ({provider}/{model})"
    unknown = sorted(set(raw) - _ENTRY_KEYS)
    if unknown:
        raise _fail(origin, where, unknown[0], raw[unknown[0]],
                    f"remove it; allowed fields are {sorted(_ENTRY_KEYS)}")
    inp = _price(raw, "input", origin, where)
    price = Price(
        input=inp,
        output=_price(raw, "output", origin, where),
        cached_input=_price(raw, "cached_input", origin, where, default=inp),
        cache_write=_price(raw, "cache_write", origin, where, default=inp),
    )
    context = _positive_int(raw, "context_window", origin, where)
    max_output = _positive_int(raw, "max_output", origin, where)
    if max_output > context:
        raise _fail(origin, where, "max_output", max_output,
                    f"it cannot exceed context_window ({context}); use the vendor's output cap")
    info = ModelInfo(
        provider=provider,
        model=model,
        price=price,
        context_window=context,
        max_output=max_output,
        capabilities=_capabilities(raw, origin, where),
        source=_name(raw, "source", origin, where),
    )
    return CatalogEntry(info, _aliases(raw, model, origin, where))


def _name(raw: dict[str, Any], field: str, origin: str, where: str) -> str:
    value = raw.get(field)
    if not isinstance(value, str) or not value.strip():
        hint = "say where the prices come from (URL and date read)" if field == "source" else (
            "give a non-empty string"
        )
        raise _fail(origin, where, field, value, hint)
    return value


def _price(
    raw: dict[str, Any], field: str, origin: str, where: str, default: Decimal | None = None
) -> Decimal:
    value = raw.get(field)
    fix = f'write USD per million tokens as a non-negative decimal string, e.g. "{field}": "0.15"'
    if value is None:
        if default is None:
            raise _fail(origin, where, field, value, fix)
        return default
    # floats are refused: the point of the string form is that "0.1" stays exactly 0.1
    if isinstance(value, bool) or not isinstance(value, str | int):
        raise _fail(origin, where, field, value, fix)
    try:
        amount = Decimal(value)
    except InvalidOperation:
        raise _fail(origin, where, field, value, fix) from None
    if not amount.is_finite() or amount < 0:
        raise _fail(origin, where, field, value, fix)
    return amount


def _positive_int(raw: dict[str, Any], field: str, origin: str, where: str) -> int:
    value = raw.get(field)
    if isinstance(value, bool) or not isinstance(value, int) or value <= 0:
        raise _fail(origin, where, field, value, "give a positive whole number of tokens")
    return value


def _capabilities(raw: dict[str, Any], origin: str, where: str) -> frozenset[str]:
    value = raw.get("capabilities", [])
    fix = f"give a list drawn from {sorted(CAPABILITIES)}"
    if not isinstance(value, list) or not all(isinstance(c, str) for c in value):
        raise _fail(origin, where, "capabilities", value, fix)
    unknown = sorted(set(value) - CAPABILITIES)
    if unknown:
        raise _fail(origin, where, "capabilities", unknown[0], fix)
    return frozenset(value)


def _aliases(raw: dict[str, Any], model: str, origin: str, where: str) -> tuple[str, ...]:
    value = raw.get("aliases", [])
    if not isinstance(value, list) or not all(isinstance(a, str) and a for a in value):
        raise _fail(origin, where, "aliases", value, "give a list of other model id strings")
    if model in value or len(set(value)) != len(value):
        raise _fail(origin, where, "aliases", value,
                    "list each other id once and leave out the entry's own model id")
    return tuple(value)


def _check_unique(entries: Sequence[CatalogEntry], origin: str) -> None:
    """Within one file a name must mean one entry, or lookups would depend on file order."""
    owner: dict[tuple[str, str], str] = {}
    for index, entry in enumerate(entries):
        info = entry.info
        for name in (info.model, *entry.aliases):
            previous = owner.get((info.provider, name))
            if previous is not None:
                raise _fail(origin, f"models[{index}] ({info.key})", "model/aliases", name,
                            f"'{name}' is already used by {previous}; keep one entry per model")
            owner[(info.provider, name)] = info.key


# -- loading and writing ---------------------------------------------------------------------


@functools.cache
def shipped_catalog() -> Catalog:
    """The catalog shipped inside the package, read once per process."""
    resource = importlib.resources.files("thrifty.pricing").joinpath("data", _SHIPPED)
    origin = f"thrifty/pricing/data/{_SHIPPED}"
    return parse_catalog(orjson.loads(resource.read_bytes()), origin=origin)


def read_catalog_file(path: Path) -> Catalog:
    """One user catalog file, strictly parsed."""
    try:
        text = path.read_bytes()
    except OSError as exc:
        raise ConfigError(
            f"{path}: cannot read the price catalog ({exc.strerror or exc}); "
            "fix the path in pricing.catalogs or create the file with `thrifty prices import`",
            param="pricing.catalogs",
        ) from None
    try:
        data = orjson.loads(text)
    except orjson.JSONDecodeError as exc:
        raise ConfigError(
            f"{path}: not valid JSON at line {exc.lineno}, column {exc.colno} ({exc.msg}); "
            "fix the file or regenerate it with `thrifty prices import`",
            param="pricing.catalogs",
        ) from None
    return parse_catalog(data, origin=str(path))


def load_catalog(extra_files: Sequence[Path] = ()) -> Catalog:
    """The shipped catalog with each user file merged over it, in order (later files win)."""
    catalog = shipped_catalog()
    for path in extra_files:
        catalog = catalog.merged(read_catalog_file(Path(path)))
    return catalog


def decimal_text(amount: Decimal) -> str:
    """A plain decimal string without exponent or trailing zeros ("0.15", "10")."""
    return format(amount.normalize(), "f")


def catalog_to_json(cat: Catalog) -> dict[str, Any]:
    """The catalog in its file format, for ``--json`` output and for writing files."""
    models: list[dict[str, Any]] = []
    for entry in cat.entries():
        info = entry.info
        item: dict[str, Any] = {"provider": info.provider, "model": info.model}
        if entry.aliases:
            item["aliases"] = list(entry.aliases)
        item.update(
            input=decimal_text(info.price.input),
            output=decimal_text(info.price.output),
            cached_input=decimal_text(info.price.cached_input),
            cache_write=decimal_text(info.price.cache_write),
            context_window=info.context_window,
            max_output=info.max_output,
            capabilities=sorted(info.capabilities),
            source=info.source,
        )
        models.append(item)
    return {"as_of": cat.as_of, "currency": CURRENCY, "unit": UNIT, "models": models}
