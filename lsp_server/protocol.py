"""pygls's LSP protocol, made to answer every request.

pygls drops a message it cannot deserialise (it logs a traceback and, for a request, never
answers: an editor would wait forever), ignores a request whose ``jsonrpc`` is not "2.0" or
that arrives after ``shutdown``, and cannot structure a request without ``params``. Here a
malformed request is answered at once with a JSON-RPC error naming the field
(lsp_server/rpc_errors.py), a malformed notification is logged in one line, and everything
well-formed goes on to pygls as before.
"""

from __future__ import annotations

import json
import logging
from typing import Any

from lsprotocol.types import CANCEL_REQUEST, EXIT, ResponseErrorMessage
from pygls.exceptions import JsonRpcInvalidParams
from pygls.protocol import LanguageServerProtocol
from pygls.protocol.json_rpc import (
    JsonRPCNotification,
    JsonRPCRequestMessage,
    JsonRPCResponseMessage,
)

from lsp_server import rpc_errors

log = logging.getLogger(__name__)



class _Handled:
    """What ``structure_message`` returns for a message it has already answered or logged."""


HANDLED = _Handled()


class _QuietClientMistakes(logging.Filter):
    """pygls logs a traceback for every error a handler raises and for every body that is
    not JSON; both are the client's mistake, answered (-32602, -32700) and logged in one
    line here."""

    def filter(self, record: logging.LogRecord) -> bool:
        exc = record.exc_info[1] if record.exc_info else None
        return not isinstance(exc, JsonRpcInvalidParams | json.JSONDecodeError
                              | UnicodeDecodeError)


def _strict(kind: type, accepts: tuple[type, ...]) -> Any:
    def structure(value: Any, _: Any) -> Any:
        if not isinstance(value, accepts) or (kind is not bool and isinstance(value, bool)):
            raise TypeError(f"must be {kind.__name__}, got {type(value).__name__}")
        return kind(value)
    return structure


class SparkeditProtocol(LanguageServerProtocol):
    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        # cattrs converts what it can (7 -> "7", "3" -> 3, true -> 1): a change whose text
        # is a number would be applied as digits. JSON types are taken as they come.
        for kind, accepts in ((str, (str,)), (int, (int,)), (float, (int, float)),
                              (bool, (bool,))):
            self._converter.register_structure_hook(kind, _strict(kind, accepts))
        for name in ("pygls.protocol.json_rpc", "pygls.server"):
            pygls_log = logging.getLogger(name)
            if not any(isinstance(f, _QuietClientMistakes) for f in pygls_log.filters):
                pygls_log.addFilter(_QuietClientMistakes())

    def send_error(self, msg_id: Any, code: int, message: str) -> None:
        log.info("answered %s with %d: %s", msg_id, code, message)
        self._send_data({"jsonrpc": "2.0", "id": msg_id,
                         "error": {"code": code, "message": message}})

    def structure_message(self, data: dict[str, Any]) -> Any:
        if "jsonrpc" not in data:  # a nested object, or an envelope handle_message refuses
            return data
        if "method" in data and "params" not in data:
            # JSON-RPC lets a message leave out `params` (vscode-languageclient does for
            # `sendRequest(method)`); pygls cannot structure that, so it is read as null.
            data = {**data, "params": None}
        problem = rpc_errors.envelope_problem(data)
        if problem is None:
            try:
                return self._structure(data)
            except Exception as exc:
                return self._malformed(data, exc)
        notification = isinstance(data.get("method"), str) and "id" not in data
        response = "method" not in data and ("result" in data or "error" in data)
        if notification or response:  # nothing to answer
            log.warning("ignored a malformed message: %s", problem)
        else:  # JSON-RPC: an invalid request is answered, with a null id if need be
            self.send_error(rpc_errors.answerable_id(data), rpc_errors.INVALID_REQUEST, problem)
        return HANDLED

    def _structure(self, data: dict[str, Any]) -> Any:
        """pygls's structuring, without its traceback on failure."""
        if "id" in data and "method" not in data:
            default = ResponseErrorMessage if "error" in data else JsonRPCResponseMessage
            return self._converter.structure(data, self._result_types.pop(data["id"], None)
                                             or default)
        default = JsonRPCRequestMessage if "id" in data else JsonRPCNotification
        return self._converter.structure(data, self.get_message_type(data["method"]) or default)

    def _malformed(self, data: dict[str, Any], exc: Exception) -> _Handled:
        method = data.get("method")
        if method is None:
            log.warning("ignored a response that does not deserialise: %s",
                        "; ".join(rpc_errors.field_errors(exc)))
        elif "id" in data:
            self.send_error(data["id"], rpc_errors.INVALID_PARAMS,
                            rpc_errors.invalid_params_message(method, exc))
        else:  # a notification cannot be answered
            log.warning("ignored %s", rpc_errors.invalid_params_message(method, exc))
        return HANDLED

    def handle_message(self, message: Any) -> None:
        if message is HANDLED:
            return
        if not hasattr(message, "jsonrpc"):  # a top-level array, scalar or object sans jsonrpc
            problem = rpc_errors.envelope_problem(message) or "not a JSON-RPC message"
            self.send_error(rpc_errors.answerable_id(message), rpc_errors.INVALID_REQUEST,
                            problem)
            return
        method = getattr(message, "method", None)
        if method == CANCEL_REQUEST and not rpc_errors.valid_id(
                getattr(getattr(message, "params", None), "id", None)):
            log.warning("ignored $/cancelRequest: params.id must be a string or an integer")
            return
        if self._shutdown and method not in (None, EXIT) and hasattr(message, "id"):
            self.send_error(message.id, rpc_errors.INVALID_REQUEST,
                            f"{method}: the server is shutting down")
            return
        super().handle_message(message)
        if method is not None and not hasattr(message, "id"):
            self._forget_notification_futures()

    def _forget_notification_futures(self) -> None:
        """pygls files the future of a notification's generator handler (its own didOpen,
        didChange and didClose wrappers) under a fresh uuid in `_request_futures` and never
        removes it: about 700 bytes a keystroke, forever (14 MB in the 20,000-keystroke
        soak). A finished one is dropped here; a request's future leaves on its answer."""
        futures = self._request_futures
        for key in [k for k, future in futures.items() if future.done()]:
            del futures[key]

    def parse_error(self, error: Exception) -> None:
        """An unparsable body: JSON-RPC's answer is -32700 with a null id."""
        self.send_error(None, rpc_errors.PARSE_ERROR, f"the message is not JSON: {error}")
