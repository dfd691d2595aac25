"""Passwords in URLs, masked wherever a URL is shown (check-config, errors) and handed to the
log filter: a Redis BACKPLANE_URL's (in the userinfo, or `?password=`, which redis-py reads too)
and an upstream's (`wss://user:PASSWORD@host/`, which aiohttp sends as Basic auth)."""

from __future__ import annotations

from urllib.parse import unquote, unquote_plus, urlsplit, urlunsplit


def redact(url: str) -> str:
    """`url` with its passwords (userinfo's, `?password=`) as ***: for logs, errors, output."""
    parts = urlsplit(url)
    # By hand, not `parts.password`: a cluster URL lists several host:port (no single port).
    userinfo, _, hosts = parts.netloc.rpartition("@")
    user, colon, _password = userinfo.partition(":")
    netloc = f"{user}:***@{hosts}" if colon else parts.netloc
    query = "&".join(
        f"{item.partition('=')[0]}=***" if _is_password(item) else item
        for item in parts.query.split("&")
    )
    if (netloc, query) == (parts.netloc, parts.query):
        return url  # unchanged, not re-assembled (urlunsplit would drop an empty `//`)
    return urlunsplit(parts._replace(netloc=netloc, query=query))


def passwords(url: str) -> list[str]:
    """Every password `url` holds, as written and as redis-py decodes it: for the log filter."""
    parts = urlsplit(url)
    userinfo = parts.netloc.rpartition("@")[0]
    found = []
    if ":" in userinfo:
        written = userinfo.partition(":")[2]
        found += [written, unquote(written)]
    for item in parts.query.split("&"):
        if _is_password(item):
            written = item.partition("=")[2]
            found += [written, unquote_plus(written)]
    return list(dict.fromkeys(text for text in found if text))


def _is_password(option: str) -> bool:
    """A query item redis-py reads as the password (it decodes the names, as parse_qs does),
    or one a user meant as it (`Password=`: redis-py refuses that name, and the error that
    says so shows the URL)."""
    return unquote_plus(option.partition("=")[0]).lower() == "password"
