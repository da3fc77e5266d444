"""Secrets never leave the process: the one home of what counts as a secret.

A variable is secret-looking by its name (KEY, TOKEN, SECRET, PASSWORD, ...) or by its value (a
known token shape: `sk-ant-…`, `ghp_…`, `AKIA…`, a URL with a password). Such variables never reach
the target's test processes (`suite/sandbox.py`), and their values are scrubbed, also reversed and
base64-encoded, from everything we write: handoffs, commit messages, checkpoints, logs, prompts.
"""

from __future__ import annotations

import base64
import os
import re
from collections.abc import Mapping
from typing import overload

_SECRET_NAME = re.compile(
    r"KEY|TOKEN|SECRET|PASSWORD|PASSWD|PASSPHRASE|CREDENTIAL|AUTH(?!OR)|COOKIE|SESSION_ID|PRIVATE",
    re.I,
)
_SECRET_VALUE = re.compile(
    r"^(sk-ant-|sk-|ghp_|gho_|ghs_|ghu_|github_pat_|glpat-|xox[abpr]-|AKIA|ASIA|hf_|npm_|pypi-)"
    r"|://[^/\s:@]+:[^/\s@]+@"  # a URL carrying a password
    r"|-----BEGIN [A-Z ]*PRIVATE KEY-----"
)
_NOT_SECRET = frozenset({"PYTEST_ADDOPTS", "KEYTIMEOUT", "XAUTHORITY"})
MIN_LENGTH = 8  # shorter values ("1", "true") would redact ordinary words
REDACTED = "[redacted]"


def is_secret(name: str, value: str) -> bool:
    """Whether an environment variable looks like a credential, by its name or its value."""
    if name in _NOT_SECRET:
        return False
    return bool(_SECRET_NAME.search(name) or _SECRET_VALUE.search(value))


def secret_values(environ: Mapping[str, str] | None = None) -> list[str]:
    """Values of secret-looking environment variables (API keys, tokens), longest first."""
    env = os.environ if environ is None else environ
    found = {v for k, v in env.items() if len(v) >= MIN_LENGTH and is_secret(k, v)}
    return sorted(found, key=len, reverse=True)


def _forms(value: str) -> list[str]:
    """The shapes a secret travels in when someone tries to smuggle it: as is, reversed, base64."""
    raw = value.encode()
    encoded = [base64.b64encode(raw), base64.urlsafe_b64encode(raw), raw.hex().encode()]
    forms = [value, value[::-1], *(e.decode().rstrip("=") for e in encoded)]
    return [f for f in forms if len(f) >= MIN_LENGTH]


@overload
def scrub(text: str, secrets: list[str] | None = None) -> str: ...
@overload
def scrub(text: None, secrets: list[str] | None = None) -> None: ...
@overload
def scrub(text: str | None, secrets: list[str] | None = None) -> str | None: ...
def scrub(text: str | None, secrets: list[str] | None = None) -> str | None:
    """The text with every secret value replaced (as is, reversed, base64 or hex): a failing
    test may print the environment, a model may repeat what it saw."""
    if not text:
        return text
    for value in secret_values() if secrets is None else secrets:
        for form in _forms(value):
            text = text.replace(form, REDACTED)
    return text
