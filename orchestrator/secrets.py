"""Secrets never leave the process: values of secret-looking variables are scrubbed from all we write."""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from typing import overload

_SECRET_NAME = re.compile(r"KEY|TOKEN|SECRET|PASSWORD|PASSWD|CREDENTIAL", re.I)


def secret_values(environ: Mapping[str, str] | None = None) -> list[str]:
    """Values of secret-looking environment variables (API keys, tokens), longest first."""
    env = os.environ if environ is None else environ
    found = {v for k, v in env.items() if _SECRET_NAME.search(k) and len(v) >= 8}
    return sorted(found, key=len, reverse=True)


@overload
def scrub(text: str, secrets: list[str] | None = None) -> str: ...
@overload
def scrub(text: None, secrets: list[str] | None = None) -> None: ...
@overload
def scrub(text: str | None, secrets: list[str] | None = None) -> str | None: ...
def scrub(text: str | None, secrets: list[str] | None = None) -> str | None:
    """The text with every secret value replaced: a failing test may print the environment."""
    if not text:
        return text
    for value in secret_values() if secrets is None else secrets:
        text = text.replace(value, "[redacted]")
    return text
