"""What never enters a context: excluded paths, and secrets redacted from the text that does.

`ExclusionRules` matches workspace-relative posix paths against gitignore-style patterns
(the defaults below plus the user's). `redact_secrets` replaces credentials that are
obvious from their shape (PEM private keys, provider tokens, JWTs, bearer tokens) or
from the name they are assigned to (`password = "..."`) with `[REDACTED:<kind>]`.

Redaction is a safety net, not a guarantee: it prefers missing an unusual secret to
mangling ordinary code the model needs to see.
"""

from __future__ import annotations

import bisect
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

import pathspec

DEFAULT_EXCLUDES: tuple[str, ...] = (
    # Environment files and credentials.
    ".env",
    ".env.*",
    ".envrc",
    "*.pem",
    "*.key",
    "*.p12",
    "*.pfx",
    "*.crt",
    "*.cer",
    "*.der",
    "*.csr",
    "*.kdbx",
    "*.gpg",
    "*.asc",
    "id_rsa*",
    "id_dsa*",
    "id_ecdsa*",
    "id_ed25519*",
    "*.keystore",
    "*.jks",
    ".netrc",
    "_netrc",
    ".npmrc",
    ".pypirc",
    ".pgpass",
    ".htpasswd",
    ".git-credentials",
    ".dockercfg",
    ".docker/config.json",
    ".aws/",
    ".ssh/",
    ".gnupg/",
    "credentials*",
    "secrets.*",
    "*.secret",
    "*.secrets",
    "*.tfstate",
    "*.tfstate.*",
    "*.tfvars",
    # Version control and tool state.
    ".git/",
    ".hg/",
    ".svn/",
    ".bzr/",
    ".idea/",
    ".vscode/",
    ".DS_Store",
    # Dependencies, caches and build output.
    "node_modules/",
    "bower_components/",
    "__pycache__/",
    "*.pyc",
    "*.pyo",
    ".venv/",
    "venv/",
    "site-packages/",
    "__pypackages__/",
    ".mypy_cache/",
    ".pytest_cache/",
    ".ruff_cache/",
    ".tox/",
    ".nox/",
    ".eggs/",
    "*.egg-info/",
    ".gradle/",
    ".next/",
    ".nuxt/",
    ".terraform/",
    ".cache/",
    "dist/",
    "build/",
    "target/",
    "coverage/",
    "htmlcov/",
    # Generated or minified text that is noise to the model.
    "*.min.js",
    "*.min.css",
    "*.map",
    "*.lock",
    "package-lock.json",
    "pnpm-lock.yaml",
)


@dataclass(frozen=True)
class ExclusionRules:
    """Gitignore-style patterns; a later pattern overrides an earlier one (`!x` re-includes)."""

    patterns: tuple[str, ...]
    _spec: pathspec.GitIgnoreSpec = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "_spec", pathspec.GitIgnoreSpec.from_lines(self.patterns))

    @classmethod
    def create(cls, extra: Sequence[str] = (), use_defaults: bool = True) -> ExclusionRules:
        defaults = DEFAULT_EXCLUDES if use_defaults else ()
        return cls((*defaults, *extra))

    def excluded(self, rel_posix_path: str, is_dir: bool = False) -> bool:
        path = rel_posix_path.strip("/")
        if not path:
            return False
        # Directory patterns (`build/`) only match a path that ends with a slash.
        return self._spec.match_file(path + "/" if is_dir else path)


# --- secrets ---------------------------------------------------------------------------

# A check sees the original text and a match (on the text, or on its lowercase copy, which
# has the same length) and returns (kind, start, end) of the span to redact, or None.
_Check = Callable[[str, "re.Match[str]"], "tuple[str, int, int] | None"]


@dataclass(frozen=True)
class _Rule:
    """One regex pass over the text (`lowered`: over its lowercase copy).

    Speed comes from the pattern, not from a separate pre-check: every pattern starts
    with a literal, preferably of rare letters, so `re` skips between its occurrences at
    string-search speed (about 0.3 ms per MB) instead of trying a match at each position.
    So patterns start at a rare letter inside the secret's prefix (`J` of `eyJ`, `k-` of
    `sk-`) and the check looks back for the rest and for the word boundary; a leading
    `\\b` alone would make a pass 50 times slower.
    """

    pattern: re.Pattern[str]
    check: _Check
    lowered: bool = False


def _word_before(text: str, i: int) -> bool:
    return i > 0 and (text[i - 1].isalnum() or text[i - 1] == "_")


def _has_digit(value: str) -> bool:
    return any(c.isdigit() for c in value)


def _starts_after(text: str, match: re.Match[str], lead: str) -> int | None:
    """Where the secret starts when `lead` precedes the match, at a word boundary."""
    start = match.start() - len(lead)
    if start < 0 or text[start : match.start()] != lead or _word_before(text, start):
        return None
    return start


def _token(
    kind: str, lead: str = "", group: int = 0, need_digit: bool = False, boundary: bool = True
) -> _Check:
    def check(text: str, match: re.Match[str]) -> tuple[str, int, int] | None:
        start = _starts_after(text, match, lead) if boundary else match.start()
        if start is None or (need_digit and not _has_digit(match.group(group))):
            return None
        return kind, match.start(group) if group else start, match.end(group)

    return check


def _aws_or_google(text: str, match: re.Match[str]) -> tuple[str, int, int] | None:
    if _word_before(text, match.start()):
        return None
    kind = "google_api_key" if match.group().startswith("AIza") else "aws_access_key"
    return kind, match.start(), match.end()


def _k_keys(text: str, match: re.Match[str]) -> tuple[str, int, int] | None:
    """`sk_live_`/`rk_live_` (Stripe), `csk-` (Cerebras), `sk-` (OpenAI style)."""
    end = match.end()
    if match.group().startswith("k_live_"):
        start = _starts_after(text, match, "s")
        start = _starts_after(text, match, "r") if start is None else start
        return None if start is None else ("stripe_key", start, end)
    if not _has_digit(match.group()):
        return None
    start = _starts_after(text, match, "cs")
    if start is not None:
        return "cerebras_key", start, end
    start = _starts_after(text, match, "s")
    return None if start is None else ("openai_key", start, end)


# Word-like values (`"access_token_type"`, `"AUTH_HEADER"`, `"auth.token.name"`) and
# template placeholders are names, not secrets.
_WORDLIKE = re.compile(r"[a-z_]+(?:[.\-][a-z_]+)*|[A-Z_]+(?:[.\-][A-Z_]+)*")
_IDENTIFIER_PATH = re.compile(r"[A-Za-z_][A-Za-z0-9_.]*")
_PLACEHOLDER_MARKS = ("{", "$", "%(", "<")
_KEY_OWNER = re.compile(r"(?:api|access|private|secret|auth|signing|encryption|master)[_-]?$")


def _secret_name(lowered_before: str, word: str) -> bool:
    if word == "cret":
        return lowered_before.endswith("se")
    if word == "ken":
        return lowered_before.endswith("to")
    if word == "key":
        return _KEY_OWNER.search(lowered_before) is not None
    return True  # password, passwd, passphrase


def _assigned(text: str, match: re.Match[str]) -> tuple[str, int, int] | None:
    """Generic `name = "value"`: redact the value when it does not look like a name."""
    before = text[max(0, match.start() - 12) : match.start()].lower()
    if not _secret_name(before, match.group(1)):
        return None
    quoted = match.group(3) is not None
    start, end = match.span(3 if quoted else 4)
    value = text[start:end]
    if any(mark in value for mark in _PLACEHOLDER_MARKS) or _WORDLIKE.fullmatch(value):
        return None
    if not quoted and not _plausible_unquoted(value):
        return None
    return ("aws_secret" if "aws" in before else "secret"), start, end


def _plausible_unquoted(value: str) -> bool:
    # Unquoted right-hand sides are usually expressions (`token = self.tokens`); a bare
    # identifier passes only with several digits in it (`abc123def456`).
    digits = sum(c.isdigit() for c in value)
    if _IDENTIFIER_PATH.fullmatch(value):
        return "." not in value and digits >= 3
    return digits > 0


# The rest of a secret-looking name, an optional type annotation, `=` `:` or `:=`, then a
# quoted value or an unquoted one that ends the line (YAML, ini, .env style).
_ASSIGNMENT = (
    r"[\w-]*[\"']?(?:[ \t]*:[ \t]*[\w.\[\]|, ]{1,40}?)?[ \t]*(?::=|[:=])[ \t]*"
    r"(?:([\"'])([^\"'\s]{8,})\2|([^\s\"'#(){}\[\],;<>`]{8,})[ \t]*\r?$)"
)

# Earlier rules win where spans overlap, so the specific kinds go before `secret`.
_RULES: tuple[_Rule, ...] = (
    _Rule(
        re.compile(
            r"-----BEGIN[A-Z0-9 ]*PRIVATE KEY-----"
            r"(?:.*?-----END[A-Z0-9 ]*PRIVATE KEY-----|.*\Z)",
            re.DOTALL,
        ),
        _token("private_key", boundary=False),
    ),
    _Rule(
        re.compile(r"A(?:KIA|SIA)[0-9A-Z]{16}(?![0-9A-Za-z])|AIza[0-9A-Za-z_-]{35}"),
        _aws_or_google,
    ),
    _Rule(
        re.compile(r"g(?:h[pousr]_[A-Za-z0-9]{30,255}|ithub_pat_[A-Za-z0-9_]{22,255})"),
        _token("github_token"),
    ),
    _Rule(re.compile(r"xox[abprs]-[A-Za-z0-9-]{10,}"), _token("slack_token", need_digit=True)),
    _Rule(re.compile(r"k(?:_live_[0-9A-Za-z]{16,}|-[A-Za-z0-9_-]{20,})"), _k_keys),
    _Rule(
        re.compile(r"J[A-Za-z0-9_-]{5,}\.[A-Za-z0-9_-]{5,}\.[A-Za-z0-9_-]{5,}"),
        _token("jwt", lead="ey"),
    ),
    _Rule(
        re.compile(r"bearer[ \t]+([a-z0-9._~+/-]{16,}=*)"),
        _token("bearer_token", group=1, need_digit=True),
        lowered=True,
    ),
    _Rule(re.compile(r"(pass(?:word|wd|phrase))" + _ASSIGNMENT, re.M), _assigned, True),
    _Rule(re.compile(r"(cret)" + _ASSIGNMENT, re.M), _assigned, True),
    _Rule(re.compile(r"(ke[ny])" + _ASSIGNMENT, re.M), _assigned, True),
)


def redact_secrets(text: str) -> tuple[str, int]:
    """Replace obvious secrets with `[REDACTED:<kind>]`; return the text and how many."""
    # U+0130 is the one character whose lowercase is two characters long.
    lowered = text.replace("\u0130", "i").lower()
    spans: list[tuple[int, int, str]] = []  # accepted (start, end, kind), sorted, disjoint
    for rule in _RULES:
        for match in rule.pattern.finditer(lowered if rule.lowered else text):
            found = rule.check(text, match)
            if found is not None:
                _insert_disjoint(spans, *found)
    if not spans:
        return text, 0
    parts: list[str] = []
    pos = 0
    for start, end, kind in spans:
        parts += (text[pos:start], f"[REDACTED:{kind}]")
        pos = end
    parts.append(text[pos:])
    return "".join(parts), len(spans)


def _insert_disjoint(spans: list[tuple[int, int, str]], kind: str, start: int, end: int) -> None:
    i = bisect.bisect_left(spans, (start,))
    if (i > 0 and spans[i - 1][1] > start) or (i < len(spans) and spans[i][0] < end):
        return
    spans.insert(i, (start, end, kind))
