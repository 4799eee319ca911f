"""Each event's layout (its fields, their order and their JSON types), read from its pydantic
model: the one description every encoder of the write path and the projection derive from.

The row-by-row encoder (``encode``), the block encoder's SQL (``ingest.columnar``) and the facts
projection's record type (``projections.facts_table``) all follow ``fields(model)``; the tests
hold each to pydantic's own serialisation, byte for byte. Adding a field to a payload is one edit
of its model, plus its parser (``ingest.rows``) and its use.
"""

from __future__ import annotations

import types
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import date, datetime
from decimal import Decimal
from enum import Enum
from functools import cache
from typing import Any, Literal, Union, get_args, get_origin
from uuid import UUID

import orjson
from pydantic import BaseModel


class Kind(Enum):
    """A field's JSON type, as pydantic writes it."""

    TEXT = "text"          # a string (also a Literal of strings)
    DATETIME = "datetime"  # ISO 8601 with its offset (``Z`` for UTC)
    DATE = "date"          # YYYY-MM-DD
    INT = "int"
    BOOL = "bool"
    CODES = "codes"        # a list of strings
    MONEY = "money"        # a Decimal, as a string
    UUID = "uuid"          # a UUID, as a string
    OBJECT = "object"      # a nested model or a mapping


#: The PostgreSQL type of each kind (``jsonb_to_record``'s column definitions).
PG_TYPES = {Kind.TEXT: "text", Kind.DATETIME: "timestamptz", Kind.DATE: "date",
            Kind.INT: "integer", Kind.BOOL: "boolean", Kind.CODES: "text[]",
            Kind.MONEY: "numeric", Kind.UUID: "uuid", Kind.OBJECT: "jsonb"}


@dataclass(frozen=True)
class Field:
    name: str
    kind: Kind
    nullable: bool
    required: bool = True
    default: Any = None

    @property
    def quoted(self) -> bool:
        """Whether its JSON is a string around the value's text, whatever the value (a value
        that may be null is written whole by its SQL expression)."""
        return not self.nullable and self.kind in (Kind.TEXT, Kind.DATETIME, Kind.DATE,
                                                   Kind.MONEY, Kind.UUID)


def _kind(annotation: Any) -> tuple[Kind, bool]:
    args = get_args(annotation)
    if get_origin(annotation) in (Union, types.UnionType) and type(None) in args:
        (inner,) = (a for a in args if a is not type(None))
        return _kind(inner)[0], True
    if get_origin(annotation) is Literal or annotation is str:
        return Kind.TEXT, False
    if get_origin(annotation) is tuple:
        return Kind.CODES, False
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return Kind.OBJECT, False
    if get_origin(annotation) is dict or annotation is dict:
        return Kind.OBJECT, False
    kinds = {datetime: Kind.DATETIME, date: Kind.DATE, bool: Kind.BOOL, int: Kind.INT,
             Decimal: Kind.MONEY, UUID: Kind.UUID}
    for python, kind in kinds.items():  # datetime before date: a datetime is a date
        if isinstance(annotation, type) and issubclass(annotation, python):
            return kind, False
    raise TypeError(f"no JSON kind for {annotation!r}")


@cache
def fields(model: type[BaseModel], exclude: frozenset[str] = frozenset()) -> tuple[Field, ...]:
    """The model's fields in pydantic's serialisation order, with their JSON kinds."""
    return tuple(Field(name, *_kind(info.annotation), info.is_required(),
                       None if info.is_required() else info.get_default(call_default_factory=True))
                 for name, info in model.model_fields.items() if name not in exclude)


def iso(value: datetime | None) -> str | None:
    """A datetime as pydantic writes it (``Z`` for UTC)."""
    if value is None:
        return None
    text = value.isoformat()
    return text[:-6] + "Z" if text.endswith("+00:00") else text


_PLAIN: dict[Kind, Callable[[Any], Any]] = {
    Kind.DATETIME: iso, Kind.DATE: date.isoformat, Kind.MONEY: str, Kind.CODES: list,
    Kind.UUID: str,
}


def to_json(model: type[BaseModel], values: Mapping[str, Any]) -> str:
    """The JSON pydantic writes for ``model(**values)``, without building the model (the ingest
    hot path); ``values`` are typed as the model's fields are, a field with a default may be
    left out."""
    out: dict[str, Any] = {}
    for f in fields(model):
        value = values[f.name] if f.required or f.name in values else f.default
        convert = _PLAIN.get(f.kind)
        out[f.name] = value if value is None or convert is None else convert(value)
    return orjson.dumps(out).decode("utf-8")


def record_columns(model: type[BaseModel]) -> str:
    """The column definitions of ``jsonb_to_record`` for the model's JSON, in its order."""
    return ", ".join(f"{f.name} {PG_TYPES[f.kind]}" for f in fields(model))


#: The fields of an event's stored state that the stored event's own columns hold instead.
ROW_FIELDS = frozenset({"originator_id", "originator_version"})


def state_keys(event: type[BaseModel]) -> tuple[str, ...]:
    """The keys of an event's stored state (``persistence.event_state``), in order."""
    return tuple(f.name for f in fields(event, ROW_FIELDS))


def state_json(event: type[BaseModel], parts: Mapping[str, str]) -> str:
    """An event's stored state from each field's JSON text, in the model's order."""
    return "{" + ",".join(f'"{k}":{parts[k]}' for k in state_keys(event)) + "}"


def state_pieces(event: type[BaseModel], values: Mapping[str, str]) -> list[str]:
    """An event's stored state as constant JSON text and ``values``' entries, alternating and
    in order (the first and last pieces constant): ``values`` maps each field to whatever stands
    for its JSON, a SQL expression say (the block encoder's concatenation)."""
    pieces: list[str] = []
    text = "{"
    for i, key in enumerate(state_keys(event)):
        text += ("," if i else "") + f'"{key}":'
        pieces += [text, values[key]]
        text = ""
    pieces.append("}")
    return pieces
