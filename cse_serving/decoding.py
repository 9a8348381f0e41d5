"""Request bodies decoded strictly, in one pass, straight into the handler's msgspec Struct.

Litestar decodes a JSON body to Python objects, then converts them to the handler's `data` type with
`strict=False`, which quietly reads the string "30000" as the number 30000.0 and "true" as true. And
msgspec's UnicodeDecodeError (invalid UTF-8 inside a string) and RecursionError (arrays nested ~1000
deep) are not the DecodeError that Litestar turns into a 400, so both left as 500s.

`StrictJsonRequest` is the app's `request_class`: its `json()` decodes the body with a strict
`msgspec.json.Decoder` for the handler's `data` Struct (Litestar's later conversion passes a Struct
through untouched), and maps every decoding failure to a JSON 4xx:

- malformed JSON, invalid UTF-8, nesting too deep → 400;
- a value of the wrong type ("abc" for a price, a list for a symbol, a missing field) → 400 with
  msgspec's message and the field's path, as Litestar words it;
- a value only a lax decoder would convert ("30000" or "NaN" for a price, "true" for a flag, 1.0
  for an integer) → 422 naming the field: the body is well-formed, but the service does not guess.

Field aliases and ignored extra fields (the seed's `timestamp`, `quote_av`, ...) are the Structs' own
business and decode exactly as before. One decode of the bytes into the Struct is also faster than
Litestar's decode-then-convert.
"""

from __future__ import annotations

import functools
import re
from typing import Any

import msgspec
from litestar import Request
from litestar.exceptions import ClientException, ValidationException
from litestar.handlers import HTTPRouteHandler
from litestar.status_codes import HTTP_422_UNPROCESSABLE_ENTITY
from litestar.types import Empty

_EXPECTED = re.compile(r"Expected `([^`]+)`")
_JSON_KIND = {"float": "a finite JSON number", "int": "a JSON integer", "bool": "true or false", "str": "a string"}


@functools.cache
def _decoders(struct: type[msgspec.Struct]) -> tuple[msgspec.json.Decoder, msgspec.json.Decoder]:
    """(strict, lax) decoders of one body type; the lax one only explains a strict failure."""
    return msgspec.json.Decoder(struct, strict=True), msgspec.json.Decoder(struct, strict=False)


def body_struct(handler: HTTPRouteHandler) -> type[msgspec.Struct] | None:
    """The msgspec Struct a handler takes as `data`, or None (no body, or another type)."""
    field = handler.parsed_data_field
    annotation = field.annotation if field is not None else None
    return annotation if isinstance(annotation, type) and issubclass(annotation, msgspec.Struct) else None


def _problem(exc: msgspec.ValidationError) -> dict[str, str]:
    """msgspec's "Expected `float`, got `str` - at `$.klines[1].open`" → Litestar's {message, key, source}."""
    message, _, where = str(exc).partition(" - at `$")
    problem = {"message": message, "source": "body"}
    key = where.rstrip("`").lstrip(".")
    if key:
        problem["key"] = key
    return problem


def _not_converted(exc: msgspec.ValidationError) -> dict[str, str]:
    problem = _problem(exc)
    expected = _EXPECTED.search(problem["message"])
    kind = _JSON_KIND.get(expected.group(1), "its JSON type") if expected else "its JSON type"
    problem["message"] += f"; values are not converted: send {kind}, unquoted"
    return problem


def decode_struct(body: bytes, struct: type[msgspec.Struct], what: str) -> msgspec.Struct:
    """`body` as `struct`, strictly; `what` ("POST /predict") prefixes the error detail."""
    strict, lax = _decoders(struct)
    try:
        try:
            return strict.decode(body)
        except msgspec.ValidationError as exc:
            try:
                lax.decode(body)
            except msgspec.ValidationError as lax_exc:
                raise ValidationException(detail=f"Validation failed for {what}", extra=[_problem(lax_exc)]) from exc
            raise ValidationException(
                detail=f"Validation failed for {what}",
                extra=[_not_converted(exc)],
                status_code=HTTP_422_UNPROCESSABLE_ENTITY,
            ) from exc
    except msgspec.DecodeError as exc:
        raise ClientException(str(exc)) from exc
    except (UnicodeDecodeError, RecursionError) as exc:
        raise unreadable(exc) from exc


def unreadable(exc: UnicodeDecodeError | RecursionError) -> ClientException:
    if isinstance(exc, UnicodeDecodeError):
        return ClientException(f"the JSON body is not valid UTF-8: byte {exc.start} ({exc.reason})")
    return ClientException("the JSON body is nested too deeply")


class StrictJsonRequest(Request):
    """A Request whose `json()` decodes strictly into the handler's body Struct (see the module)."""

    async def json(self) -> Any:
        if self._json is not Empty:
            return self._json
        if (cached := self._connection_state.json) is not Empty:
            self._json = cached
            return cached
        struct = body_struct(self.route_handler)
        if struct is None:
            try:
                return await super().json()
            except (UnicodeDecodeError, RecursionError) as exc:
                raise unreadable(exc) from exc
        value = decode_struct(await self.body() or b"null", struct, f"{self.scope['method']} {self.scope['path']}")
        self._json = self._connection_state.json = value
        return value
