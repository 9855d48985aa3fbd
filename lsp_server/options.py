"""The language server's settings: one frozen dataclass, read from camelCase on the wire.

Settings arrive as `initializationOptions` and again with each
`workspace/didChangeConfiguration`. A malformed field never fails the request: it keeps
its previous value and yields one human-readable problem string for the log or a
`window/showMessage`.
"""

from __future__ import annotations

import math
import os
from collections.abc import Callable, Mapping
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from lsp_server.usage import BACKEND_CHOICES, QUANTS

TARGETS = ("wafer-sim", "cerebras", "openai")
STATS_OFF = "off"
SECTION = "sparkedit"  # `{"sparkedit": {...}}`, as VS Code sends a configuration section

MIN_BUDGET = 16
MAX_BUDGET = 1 << 20  # prompt tokens: eight times the largest context a target serves
DEFAULT_WARM_BUDGET = 1024
MAX_TOKENS_RANGE = (1, 4096)
DEBOUNCE_RANGE_MS = (0.0, 5000.0)


@dataclass(frozen=True, kw_only=True)
class ServerOptions:
    target: str = "wafer-sim"  # one of TARGETS
    model: str | None = None  # a model folder (local targets) or a model id (remote ones)
    base_url: str | None = None  # overrides the remote target's address
    budget: int = 2048  # prompt tokens
    max_tokens: int = 64
    languages: tuple[str, ...] = ()  # LSP languageIds or sparkedit names; empty = all
    exclude: tuple[str, ...] = ()  # gitignore-style patterns kept out of the context
    max_file_bytes: int = 1_000_000
    debounce_min_ms: float = 0.0
    debounce_max_ms: float = 150.0
    stats_file: str | None = None  # None: default path (see `stats_path`); "off": none
    next_edit: bool = True
    backend: str = "auto"  # one of BACKEND_CHOICES: the engine's compute backend
    quant: str | None = None  # one of QUANTS, None: the engine's default
    # The document's context is prefilled in the background, first at `warm_budget`
    # tokens (quick), then at `budget`; requests use the warm budget until the full one is.
    warm_up: bool = True
    warm_budget: int = DEFAULT_WARM_BUDGET


DEFAULTS = ServerOptions()


class _Bad(Exception):
    """A field's value is unusable; the message says what was expected."""


def _integer(value: Any) -> int:
    # JSON from Lua or JavaScript may carry 2048 as 2048.0
    if isinstance(value, bool):
        raise _Bad("must be an integer")
    if isinstance(value, int):
        return value
    if isinstance(value, float) and value.is_integer():
        return int(value)
    raise _Bad("must be an integer")


def _number(value: Any) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        raise _Bad("must be a number")
    return float(value)


def _target(value: Any) -> str:
    if value not in TARGETS:
        raise _Bad(f"must be one of {', '.join(TARGETS)}")
    return value


def _backend(value: Any) -> str:
    if value not in BACKEND_CHOICES:
        raise _Bad(f"must be one of {', '.join(BACKEND_CHOICES)}")
    return value


def _quant(value: Any) -> str | None:
    if value is not None and value not in QUANTS:
        raise _Bad(f"must be one of {', '.join(QUANTS)} or null")
    return value


def _optional_text(value: Any) -> str | None:
    if value is None:
        return None
    if not isinstance(value, str) or not value.strip():
        raise _Bad("must be a non-empty string or null")
    return value.strip()


def _base_url(value: Any) -> str | None:
    url = _optional_text(value)
    if url is not None:
        parts = urlsplit(url)
        if parts.scheme not in ("http", "https") or not parts.netloc:
            raise _Bad("must be an http:// or https:// URL or null")
    return url


def _budget(value: Any) -> int:
    budget = _integer(value)
    if budget < MIN_BUDGET:
        raise _Bad(f"must be at least {MIN_BUDGET}")
    if budget > MAX_BUDGET:
        raise _Bad(f"must be at most {MAX_BUDGET} tokens")
    return budget


def _max_tokens(value: Any) -> int:
    low, high = MAX_TOKENS_RANGE
    count = _integer(value)
    if not low <= count <= high:
        raise _Bad(f"must be between {low} and {high}")
    return count


def _positive(value: Any) -> int:
    size = _integer(value)
    if size <= 0:
        raise _Bad("must be a positive integer")
    return size


def _strings(value: Any) -> tuple[str, ...]:
    if not isinstance(value, list | tuple) or not all(isinstance(v, str) for v in value):
        raise _Bad("must be a list of strings")
    return tuple(v.strip() for v in value if v.strip())


def _languages(value: Any) -> tuple[str, ...]:
    return tuple(v.lower() for v in _strings(value))


def _flag(value: Any) -> bool:
    if not isinstance(value, bool):
        raise _Bad("must be true or false")
    return value


# wire name -> (field, parser, accepts null as a value)
_FIELDS: dict[str, tuple[str, Callable[[Any], Any], bool]] = {
    "target": ("target", _target, False),
    "model": ("model", _optional_text, True),
    "baseUrl": ("base_url", _base_url, True),
    "budget": ("budget", _budget, False),
    "maxTokens": ("max_tokens", _max_tokens, False),
    "languages": ("languages", _languages, False),
    "exclude": ("exclude", _strings, False),
    "maxFileBytes": ("max_file_bytes", _positive, False),
    "statsFile": ("stats_file", _optional_text, True),
    "nextEdit": ("next_edit", _flag, False),
    "backend": ("backend", _backend, False),
    "quant": ("quant", _quant, True),
    "warmUp": ("warm_up", _flag, False),
    "warmBudget": ("warm_budget", _budget, False),
}


def _show(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 40 else text[:37] + "..."


def _debounce(raw: Any, base: ServerOptions, problems: list[str]) -> dict[str, float]:
    if not isinstance(raw, Mapping):
        problems.append(f"setting 'debounce' must be an object {{minMs, maxMs}}, "
                        f"got {_show(raw)}; kept the previous values")
        return {}
    low, high = DEBOUNCE_RANGE_MS
    values = {"minMs": base.debounce_min_ms, "maxMs": base.debounce_max_ms}
    for key, value in raw.items():
        if key not in values:
            problems.append(f"unknown setting 'debounce.{key}'")
            continue
        if value is None:
            continue
        try:
            ms = _number(value)
            if not low <= ms <= high:
                raise _Bad(f"must be between {low:g} and {high:g}")
        except _Bad as exc:
            problems.append(f"setting 'debounce.{key}' {exc}, got {_show(value)}; "
                            f"kept {values[key]:g}")
            continue
        values[key] = ms
    if values["minMs"] > values["maxMs"]:
        problems.append(f"setting 'debounce.minMs' ({values['minMs']:g}) must not exceed "
                        f"'debounce.maxMs' ({values['maxMs']:g}); kept "
                        f"{base.debounce_min_ms:g}..{base.debounce_max_ms:g}")
        return {}
    return {"debounce_min_ms": values["minMs"], "debounce_max_ms": values["maxMs"]}


def parse_options(raw: Any, base: ServerOptions = DEFAULTS) -> tuple[ServerOptions, list[str]]:
    """`base` updated by the wire settings in `raw`, and one problem string per field that
    was malformed (and kept from `base`) or unknown. Accepts the settings object itself or
    `{"sparkedit": {...}}`; None (no settings) gives `base`. Never raises.

    A null value resets `model`, `baseUrl`, `quant` and `statsFile` (where null means
    "default") and is ignored elsewhere (VS Code sends null for settings the user did not
    set).
    """
    problems: list[str] = []
    if raw is None:
        return base, problems
    if isinstance(raw, Mapping) and SECTION in raw:
        raw = raw[SECTION]  # other sections (other extensions' settings) are not ours
        if raw is None:
            return base, problems
    if not isinstance(raw, Mapping):
        problems.append(f"settings must be an object, got {_show(raw)}; kept the previous ones")
        return base, problems
    changes: dict[str, Any] = {}
    for key, value in raw.items():
        if key == "debounce":
            if value is not None:
                changes.update(_debounce(value, base, problems))
            continue
        if key not in _FIELDS:
            problems.append(f"unknown setting {key!r}")
            continue
        field, parse, nullable = _FIELDS[key]
        if value is None and not nullable:
            continue
        try:
            changes[field] = parse(value)
        except _Bad as exc:
            problems.append(f"setting {key!r} {exc}, got {_show(value)}; "
                            f"kept {_show(getattr(base, field))}")
    return replace(base, **changes), problems


def nulls_to_startup(raw: Any, new: ServerOptions, startup: ServerOptions) -> ServerOptions:
    """`new` with each setting that `raw` cleared to null back at what the server was started
    with (its command line), not at the built-in default."""
    section = raw.get(SECTION, raw) if isinstance(raw, Mapping) else None
    if not isinstance(section, Mapping):
        return new
    cleared = {field: getattr(startup, field) for key, (field, _, nullable) in _FIELDS.items()
               if nullable and key in section and section[key] is None}
    return replace(new, **cleared) if cleared else new


def enabled_for(options: ServerOptions, language_id: str, language_name: str | None) -> bool:
    """Whether suggestions are offered for a document of this LSP languageId (and, when
    sparkedit knows the language, its sparkedit name, e.g. "tsx" for "typescriptreact")."""
    if not options.languages:
        return True
    wanted = set(options.languages)
    return language_id.strip().lower() in wanted or (
        language_name is not None and language_name.lower() in wanted)


def restart_needed(old: ServerOptions, new: ServerOptions) -> bool:
    """Whether the engine must be restarted for `new` (what it serves changed)."""
    def served(o: ServerOptions) -> tuple[Any, ...]:
        return o.target, o.model, o.base_url, o.backend, o.quant

    return served(old) != served(new)


def stats_path(options: ServerOptions, environ: Mapping[str, str] | None = None,
               home: Path | None = None) -> Path | None:
    """Where `Feedback` saves its statistics: `statsFile` ("~" expanded), None for "off",
    else `$XDG_STATE_HOME/sparkedit/stats.json` or `~/.local/state/sparkedit/stats.json`."""
    env = os.environ if environ is None else environ
    if options.stats_file == STATS_OFF:
        return None
    try:
        home_dir = home if home is not None else Path.home()
    except RuntimeError:  # no home directory known: only an explicit absolute path works
        home_dir = None
    if options.stats_file is not None:
        path = options.stats_file
        if path == "~" or path.startswith("~/"):
            return home_dir / path[2:] if home_dir is not None else None
        return Path(path)
    state = env.get("XDG_STATE_HOME")
    if state and Path(state).is_absolute():  # the XDG spec ignores relative paths
        return Path(state) / "sparkedit" / "stats.json"
    if home_dir is None:
        return None
    return home_dir / ".local" / "state" / "sparkedit" / "stats.json"
