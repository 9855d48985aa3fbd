"""privacy.py: every kind of secret is redacted and counted; ordinary code is untouched."""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path

import pytest

from lsp_server.context.privacy import DEFAULT_EXCLUDES, ExclusionRules, redact_secrets

# Built from parts so that this file does not itself look like it holds credentials.
GITHUB = "ghp_" + "a1B2c3D4e5F6g7H8i9J0k1L2m3N4o5P6q7R8"
GITHUB_PAT = "github_pat_" + "11ABCDEFG0123456789_abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMN"
SLACK = "xoxb-" + "123456789012-1234567890123-AbCdEfGhIjKlMnOpQrStUvWx"
OPENAI = "sk-" + "proj-abc123DEF456ghi789JKL012mno345"
CEREBRAS = "csk-" + "abc123def456ghi789jkl012mno345pqr"
GOOGLE = "AIza" + "SyA1234567890abcdefghijklmnopqrstuv"
STRIPE = "sk_live_" + "4eC39HqLyjWDarjtT1zdp7dc"
AWS_ID = "AKIA" + "IOSFODNN7EXAMPLE"
AWS_SECRET = "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY"
JWT = "eyJ" + "hbGciOiJIUzI1NiJ9.eyJzdWIiOiIxMjM0NTY3ODkwIn0.dozjgNryP4J3jVmNHl0w5N_XgL0n3I9P"
PEM = (
    "-----BEGIN RSA " + "PRIVATE KEY-----\nMIIEpAIBAAKCAQEA7b3x\nq9Zk1L0m\n"
    "-----END RSA " + "PRIVATE KEY-----"
)


@pytest.mark.parametrize(
    ("line", "kind", "secret"),
    [
        (f"key = '''{PEM}'''", "private_key", PEM),
        (f"aws_access_key_id = {AWS_ID}", "aws_access_key", AWS_ID),
        (f"aws_secret_access_key = {AWS_SECRET}", "aws_secret", AWS_SECRET),
        (f'AWS_SECRET_ACCESS_KEY="{AWS_SECRET}"', "aws_secret", AWS_SECRET),
        (f'token = "{GITHUB}"', "github_token", GITHUB),
        (f"GH={GITHUB_PAT}", "github_token", GITHUB_PAT),
        (f'SLACK_HOOK = "{SLACK}"', "slack_token", SLACK),
        (f'client = OpenAI(api_key="{OPENAI}")', "openai_key", OPENAI),
        (f'client = Cerebras(api_key="{CEREBRAS}")', "cerebras_key", CEREBRAS),
        (f'url = f"https://maps.example?key={GOOGLE}"', "google_api_key", GOOGLE),
        (f'stripe.api_key = "{STRIPE}"', "stripe_key", STRIPE),
        (f"Cookie: session={JWT}", "jwt", JWT),
        (
            'curl -H "Authorization: Bearer 8f14e45fceea167a5a36dedd4bea2543"',
            "bearer_token",
            "8f14e45fceea167a5a36dedd4bea2543",
        ),
        ('password = "hunter2hunter2"', "secret", "hunter2hunter2"),
        ('    "apiKey": "AbC123dEf456",', "secret", "AbC123dEf456"),
        ("db_passwd: S3cr3t!pass", "secret", "S3cr3t!pass"),
        ("export API_KEY=abc123def456ghi", "secret", "abc123def456ghi"),
        ('access_token := "q1w2e3r4t5y6"', "secret", "q1w2e3r4t5y6"),
        ('PASSWORD: str = "correcthorse9"', "secret", "correcthorse9"),
    ],
)
def test_each_kind_is_redacted(line: str, kind: str, secret: str) -> None:
    redacted, count = redact_secrets(line)
    assert count == 1
    assert secret not in redacted
    assert f"[REDACTED:{kind}]" in redacted
    assert redacted == line.replace(secret, f"[REDACTED:{kind}]")


def test_assignment_keeps_the_name() -> None:
    redacted, _ = redact_secrets('DB_PASSWORD = "s3cr3t-v4lue"\n')
    assert redacted == 'DB_PASSWORD = "[REDACTED:secret]"\n'


def test_counts_several_secrets_once_each() -> None:
    text = f'a = "{GITHUB}"\nb = "{OPENAI}"\npassword = "{GITHUB}"\n{PEM}\nx = 1\n'
    redacted, count = redact_secrets(text)
    assert count == 4
    assert redacted.count("[REDACTED:github_token]") == 2  # the token wins over `password`
    assert redacted.endswith("[REDACTED:private_key]\nx = 1\n")


@pytest.mark.parametrize(
    "line",
    [
        "token = self.tokenizer.encode(text)",
        'password = os.environ["DB_PASSWORD"]',
        'TOKEN_TYPE = "access_token_type"',
        'if password == "hunter2hunter2":',
        'secret = f"{prefix}-{value}"',
        'key = "user:name"',
        'cache_key = "user:1234:profile"',
        "def tokenize(text): pass",
        'headers["Authorization"] = f"Bearer {token}"',
        "task-manager-something-long-name-here = 1",
        "disk-0123456789abcdefghijklmnop",
        "The bearer of this letter is welcome.",
        "api_key = settings.api_key",
        "-----BEGIN CERTIFICATE-----",
    ],
)
def test_ordinary_code_is_untouched(line: str) -> None:
    assert redact_secrets(line) == (line, 0)


def test_standard_library_is_untouched_and_fast() -> None:
    root = Path(pytest.__file__).parent.parent  # site-packages: ordinary Python
    text = ""
    for path in sorted(Path(root).glob("_pytest/**/*.py")):
        text += path.read_text(encoding="utf-8")
        if len(text) > 1_000_000:
            break
    assert redact_secrets(text) == (text, 0)
    best = min(_timed(redact_secrets, text) for _ in range(3))
    # 4-5 ms per MB on a loaded 2-core machine; the bound leaves room for slower CI.
    assert best < 0.05 * len(text) / 1_000_000


def _timed(fn: Callable[[str], object], arg: str) -> float:
    start = time.perf_counter()
    fn(arg)
    return time.perf_counter() - start


def test_dotless_i_keeps_offsets() -> None:
    text = 'İstanbul = 1\npassword = "hunter2hunter2"  # İ\n'
    redacted, count = redact_secrets(text)
    assert count == 1
    assert redacted == 'İstanbul = 1\npassword = "[REDACTED:secret]"  # İ\n'


@pytest.mark.parametrize(
    ("path", "is_dir"),
    [
        (".env", False),
        (".env.local", False),
        ("config/.env.production", False),
        ("server.key", False),
        ("certs/server.pem", False),
        ("id_rsa", False),
        ("home/.ssh/id_ed25519.pub", False),
        ("node_modules/x.js", False),
        ("web/node_modules/react/index.js", False),
        ("node_modules", True),
        ("pkg/__pycache__/mod.cpython-311.pyc", False),
        (".git/config", False),
        ("app.min.js", False),
        ("credentials.json", False),
        ("secrets.yaml", False),
    ],
)
def test_default_exclusions(path: str, is_dir: bool) -> None:
    assert ExclusionRules.create().excluded(path, is_dir)


@pytest.mark.parametrize(
    "path", ["src/app.py", "README.md", "environment.py", "keys.py", "docs/build.md"]
)
def test_default_exclusions_keep_source(path: str) -> None:
    assert not ExclusionRules.create().excluded(path)


def test_user_patterns_extend_and_override_defaults() -> None:
    rules = ExclusionRules.create(["*.log", "!dist/"])
    assert rules.excluded("logs/server.log")
    assert not rules.excluded("dist", is_dir=True)
    assert rules.excluded(".env")
    bare = ExclusionRules.create(["*.log"], use_defaults=False)
    assert not bare.excluded(".env")
    assert bare.patterns == ("*.log",)
    assert ExclusionRules.create().patterns == DEFAULT_EXCLUDES
