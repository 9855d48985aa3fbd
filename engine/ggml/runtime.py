"""llama.cpp's process-wide set-up: backend initialisation and where its log goes.

llama.cpp prints model loading details to stderr by default; here they go to the
``sparkedit.ggml`` logger at debug level, and the last lines are kept so that a load
failure can say what llama.cpp said (it reports why through its log, not its return
values). Both are process-wide in llama.cpp itself, hence set up exactly once.
"""

from __future__ import annotations

import ctypes
import logging
from collections import deque
from functools import cache

log = logging.getLogger("sparkedit.ggml")

LOG_LEVEL_ERROR = 4  # GGML_LOG_LEVEL_ERROR
LOG_LEVEL_WARN = 3


class LlamaLog:
    """The receiving end of llama.cpp's log: lines to Python logging, recent ones kept."""

    def __init__(self, keep: int = 40) -> None:
        self.recent: deque[str] = deque(maxlen=keep)
        self._partial = ""

    def __call__(self, level: int, text: bytes | None, _user: object) -> None:
        chunk = (text or b"").decode("utf-8", "replace")
        self._partial += chunk
        while "\n" in self._partial:
            line, self._partial = self._partial.split("\n", 1)
            if line.strip():
                self.recent.append(line.strip())
                log.log(logging.WARNING if level == LOG_LEVEL_ERROR else logging.DEBUG,
                        "llama.cpp: %s", line.strip())

    def explain(self) -> str:
        """The most telling recent line (an error if there is one), for an error message."""
        for line in reversed(self.recent):
            lowered = line.lower()
            if any(w in lowered for w in ("error", "failed", "unknown", "invalid", "not ")):
                return line
        return self.recent[-1] if self.recent else "no details from llama.cpp"


@cache
def ensure_backend() -> LlamaLog:
    """Initialise llama.cpp once per process; returns its log receiver."""
    import llama_cpp

    receiver = LlamaLog()
    # The ctypes callback must outlive every llama.cpp call: it is kept on the receiver,
    # which this cached function keeps for the life of the process.
    receiver.c_callback = llama_cpp.llama_log_callback(receiver)  # type: ignore[attr-defined]
    llama_cpp.llama_log_set(receiver.c_callback, ctypes.c_void_p(0))  # type: ignore[attr-defined]
    llama_cpp.llama_backend_init()
    return receiver
