"""What a client got wrong in a JSON-RPC message, in one line that names the field.

The language server answers every request, however malformed: an envelope that is not a
JSON-RPC 2.0 request gets -32600, params that do not deserialise -32602 naming the first bad
field (``params.position.character: must be >= 0, got -1``), an unknown method -32601 and
an unparsable body -32700. This module holds the pure part (no pygls): checking envelopes,
naming fields from a cattrs validation error, and the checks of the custom requests' params.
"""

from __future__ import annotations

import re
from typing import Any

import cattrs

from lsp_server.documents import Position

PARSE_ERROR, INVALID_REQUEST, METHOD_NOT_FOUND, INVALID_PARAMS = -32700, -32600, -32601, -32602
MAX_FIELDS_NAMED = 3


class InvalidParams(ValueError):
    """A custom request's params are malformed; the message names the field."""

    def __init__(self, field: str, expected: str) -> None:
        super().__init__(f"params.{field}: {expected}")


def valid_id(value: Any) -> bool:
    return isinstance(value, str | int) and not isinstance(value, bool)


def envelope_problem(data: Any) -> str | None:
    """Why a decoded message is not a JSON-RPC 2.0 request, notification or response."""
    if not isinstance(data, dict):
        kind = "a batch (array)" if isinstance(data, list) else type(data).__name__
        return f"a message must be a JSON object, got {kind}"
    if data.get("jsonrpc") != "2.0":
        return f"'jsonrpc' must be \"2.0\", got {data.get('jsonrpc')!r}"
    if "method" in data:
        if not isinstance(data["method"], str):
            return "'method' must be a string"
        if "id" in data and not valid_id(data["id"]):
            return "'id' must be a string or an integer"
    elif "id" not in data:
        return "a message needs a 'method' (request, notification) or an 'id' (response)"
    return None


def answerable_id(data: Any) -> int | str | None:
    """The id to answer a malformed request with (null when it has none usable)."""
    if isinstance(data, dict) and "method" in data and valid_id(data.get("id")):
        return data["id"]
    return None


def _camel(name: str) -> str:
    head, *rest = name.split("_")
    return head + "".join(part[:1].upper() + part[1:] for part in rest)


_VALUE = re.compile(r"^\w+\.(\w+) should be in range \[(-?\d+):(-?\d+)\], but was (.+)\.$")


def _type_name(type_: Any) -> str:
    args = [a for a in getattr(type_, "__args__", ()) if a is not type(None)]
    if args and getattr(type_, "__origin__", None) is not list:  # Union, Optional
        return " or ".join(_type_name(a) for a in args)
    if hasattr(type_, "__attrs_attrs__"):
        return "an object"
    return getattr(type_, "__name__", str(type_))


def _describe(exc: BaseException, type_: Any) -> str:
    text = str(exc)
    match = _VALUE.match(text)
    if match:  # lsprotocol's integer validators
        low, value = match.group(2), match.group(4)
        return f"must be >= {low}, got {value}"
    if isinstance(exc, KeyError):
        return "required"
    if isinstance(exc, TypeError | AttributeError) and type_ is not None:
        return f"must be {_type_name(type_)}"
    if isinstance(exc, ValueError) and text:
        return text
    return f"must be {_type_name(type_)}" if type_ is not None else "invalid"


def field_errors(exc: BaseException) -> list[str]:
    """``params.textDocument.uri: required``-style lines for a cattrs structuring error."""
    try:
        lines = cattrs.transform_error(exc, path="$", format_exception=_describe)
    except Exception:  # not a cattrs error: say what it is
        return [f"params: {exc}"]
    out = []
    for line in lines:
        message, _, path = line.rpartition(" @ ")
        fields = [_camel(p) for p in path.removeprefix("$.").split(".") if p]
        out.append(f"{'.'.join(fields) or 'params'}: {message}")
    return out


def invalid_params_message(method: str, exc: BaseException) -> str:
    errors = field_errors(exc)
    more = f" (and {len(errors) - MAX_FIELDS_NAMED} more)" if len(errors) > MAX_FIELDS_NAMED \
        else ""
    return f"{method}: invalid params: " + "; ".join(errors[:MAX_FIELDS_NAMED]) + more


# ---------------------------------------------------------------------------- custom params


def field(params: Any, path: str) -> Any:
    """``params["textDocument"]["uri"]`` for ``"textDocument.uri"``; None when absent.
    pygls hands a custom request's params over as dicts or attribute objects."""
    value = params
    for name in path.split("."):
        if isinstance(value, dict):
            value = value.get(name)
        elif value is None or isinstance(value, str | int | float | bool | list):
            return None
        else:
            value = getattr(value, name, None)
    return value


def need_str(params: Any, path: str) -> str:
    value = field(params, path)
    if not isinstance(value, str):
        raise InvalidParams(path, "required string" if value is None
                            else f"must be a string, got {type(value).__name__}")
    return value


def optional_int(params: Any, path: str, *, minimum: int) -> int | None:
    value = field(params, path)
    if value is None:
        return None
    if not isinstance(value, int) or isinstance(value, bool) or value < minimum:
        raise InvalidParams(path, f"must be an integer >= {minimum}, got {value!r}")
    return value


def need_position(params: Any, path: str = "position") -> Position:
    if field(params, path) is None:
        raise InvalidParams(path, "required {line, character}")
    line = optional_int(params, f"{path}.line", minimum=0)
    character = optional_int(params, f"{path}.character", minimum=0)
    if line is None or character is None:
        raise InvalidParams(f"{path}.{'line' if line is None else 'character'}",
                            "required integer >= 0")
    return Position(line=line, character=character)


def text_document_position(params: Any) -> tuple[str, int | None, Position]:
    """(uri, version, position) of ``{textDocument: {uri, version?}, position}``."""
    uri = need_str(params, "textDocument.uri")
    version = optional_int(params, "textDocument.version", minimum=-(2 ** 31))
    return uri, version, need_position(params)
