"""What is secret, decided in one place: which store options are
credentials, and how a URL or a line of text looks with its secrets masked.

- :func:`split_secrets` parts store options into what the index may hold and
  what goes to the owner-only credentials file: the flavor's own secret
  options, any option at any depth of nested objects (``client_kwargs``,
  ``config_kwargs``, ...) whose name looks like a credential
  (``aws_secret_access_key``, ``aws_session_token``, ``password``, ...), and
  any URL carrying userinfo (``http://key:secret@host``: the index keeps
  ``http://host``). :func:`merge_secrets` puts them back together.
- :func:`mask_url` shows a URL with its password as ``***``
  (``postgresql+psycopg://user:***@host/db``); :func:`redact` masks every
  URL password, signed-URL and connection-string secret, and every secret
  value this process has been given (:func:`remember_secrets`: a store's
  credentials), in free text (errors, log lines, a library's debug output
  that quotes a header). The index URL's password is masked where it
  stands, in a URL's password field: a short password (``team``) masked as
  free text would mask paths (``/tmp/team/homes``) too.
- :func:`install_log_redaction` makes every log record of the process pass
  through :func:`redact` (the command line installs it).
"""

from __future__ import annotations

import logging
import re
import threading
from collections.abc import Iterable, Iterator
from typing import Any
from urllib.parse import parse_qsl, urlencode, urlsplit

MASK = "***"

#: Option names that are credentials wherever they appear.
_SECRET_NAME = re.compile(
    r"secret|passw|passphrase|pwd|token|credential|signature|account_?key|access_?key|private_?key|api_?key"
    r"|connection_?string|session_?key|auth_?key",
    re.IGNORECASE,
)
# scheme://user:password@ (the password may not hold '/', '@' or whitespace unescaped)
_URL_PASSWORD = re.compile(r"(?P<head>\b[a-z][a-z0-9+.-]*://[^\s/@:]*:)(?P<password>[^\s/@]*)@", re.IGNORECASE)
# key=value secrets in query strings, connection strings and signed URLs; key:value headers
_SECRET_PARAM = re.compile(
    r"(?P<key>\b(?:[a-z_]*(?:password|passwd|pwd|secret|token)|AccountKey|SharedAccessSignature|sig|Signature"
    r"|X-Amz-Signature|X-Amz-Credential|X-Amz-Security-Token)(?:=|:\s*))(?P<value>[^;&,\s'\"]+)",
    re.IGNORECASE,
)
_known: set[str] = set()  # secret values given to this process (see remember_secrets)
_known_lock = threading.Lock()
_USERINFO = re.compile(r"^([a-z][a-z0-9+.-]*://)([^/?#@]*)@", re.IGNORECASE)


def looks_secret(name: str) -> bool:
    return bool(_SECRET_NAME.search(name))


# -- store options -------------------------------------------------------------------------------


def split_secrets(flavor_or_names: Any, options: dict[str, Any]) -> tuple[dict[str, Any], dict[str, Any]]:
    """``(public options, secret options)``; nested objects are split key by
    key, so each part keeps the shape :func:`merge_secrets` needs."""
    names = getattr(flavor_or_names, "secret_options", flavor_or_names) or frozenset()
    return _split(options, frozenset(names))


def _split(options: dict[str, Any], names: frozenset[str]) -> tuple[dict[str, Any], dict[str, Any]]:
    public: dict[str, Any] = {}
    secret: dict[str, Any] = {}
    for key, value in options.items():
        if key in names or looks_secret(str(key)):
            secret[key] = value
        elif isinstance(value, dict):
            inner_public, inner_secret = _split(value, frozenset())
            if inner_public or not inner_secret:
                public[key] = inner_public
            if inner_secret:
                secret[key] = inner_secret
        elif isinstance(value, str) and _USERINFO.match(value):
            public[key] = _USERINFO.sub(r"\1", value)  # the address without its credentials
            secret[key] = value
        else:
            public[key] = value
    return public, secret


def merge_secrets(public: dict[str, Any], secret: dict[str, Any]) -> dict[str, Any]:
    """The options a filesystem is built with: ``secret`` wins, nested objects merge."""
    merged = dict(public)
    for key, value in secret.items():
        if isinstance(value, dict) and isinstance(merged.get(key), dict):
            merged[key] = merge_secrets(merged[key], value)
        else:
            merged[key] = value
    return merged


def secret_names(secret: dict[str, Any], prefix: str = "") -> list[str]:
    """Dotted names of the secret options (``client_kwargs.aws_secret_access_key``), never values."""
    names = []
    for key, value in secret.items():
        name = f"{prefix}{key}"
        if isinstance(value, dict) and not (key and looks_secret(str(key))):
            names.extend(secret_names(value, name + "."))
        else:
            names.append(name)
    return sorted(names)


def secret_values(secret: dict[str, Any]) -> Iterator[str]:
    """Every string value inside secret options (to redact them from text)."""
    for value in secret.values():
        if isinstance(value, dict):
            yield from secret_values(value)
        elif isinstance(value, str):
            yield value
            if match := _URL_PASSWORD.search(value):
                yield match["password"]


# -- URLs and text -----------------------------------------------------------------------------------


def mask_url(url: str) -> str:
    """``url`` with its password (in userinfo or in the query) shown as ``***``."""
    try:
        parts = urlsplit(url)
    except ValueError:
        return redact(url)
    masked = url  # edited in place: urlunsplit would drop the '//' of sqlite:////abs/path
    if parts.password is not None:
        userinfo, _, hostport = parts.netloc.rpartition("@")
        masked = masked.replace(parts.netloc, f"{userinfo.partition(':')[0]}:{MASK}@{hostport}", 1)
    pairs = parse_qsl(parts.query, keep_blank_values=True)
    if any(looks_secret(key) for key, _ in pairs):
        query = urlencode([(k, MASK if looks_secret(k) else v) for k, v in pairs], safe="*")
        masked = masked.replace("?" + parts.query, "?" + query, 1)
    return masked


def remember_secrets(values: Iterable[str | None]) -> None:
    """Secret values this process holds (where they enter it: a store's
    credentials): :func:`redact` masks them
    wherever they appear."""
    with _known_lock:
        _known.update(v for v in values if isinstance(v, str) and len(v) >= 4)


def redact(text: str, values: Iterable[str] = ()) -> str:
    """``text`` with URL passwords, secret parameters, the remembered secret
    values and each of ``values`` masked."""
    with _known_lock:
        known = list(_known)
    for value in sorted({*known, *(v for v in values if isinstance(v, str) and len(v) >= 4)}, key=len, reverse=True):
        text = text.replace(value, MASK)
    text = _URL_PASSWORD.sub(lambda m: f"{m['head']}{MASK}@", text)
    return _SECRET_PARAM.sub(lambda m: f"{m['key']}{MASK}", text)


# -- log records ---------------------------------------------------------------------------------------


def install_log_redaction() -> None:
    """Make every log record of this process pass through :func:`redact`
    (its message and its traceback), whichever handler writes it. Idempotent."""
    previous = logging.getLogRecordFactory()
    if getattr(previous, "artifactfs_redacts", False):
        return

    def factory(*args: Any, **kwargs: Any) -> logging.LogRecord:
        record = previous(*args, **kwargs)
        try:
            message = record.getMessage()
        except Exception:  # noqa: BLE001 - a broken format string is logging's to report
            return record
        clean = redact(message)
        if clean != message:
            record.msg, record.args = clean, ()
        if record.exc_info and not record.exc_text:
            record.exc_text = redact(logging.Formatter().formatException(record.exc_info))
        return record

    factory.artifactfs_redacts = True  # type: ignore[attr-defined]
    logging.setLogRecordFactory(factory)


__all__ = [
    "MASK",
    "install_log_redaction",
    "looks_secret",
    "mask_url",
    "merge_secrets",
    "redact",
    "remember_secrets",
    "secret_names",
    "secret_values",
    "split_secrets",
]
