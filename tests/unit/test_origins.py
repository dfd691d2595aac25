"""Origin matching: exact entries and wildcard subdomains."""

from __future__ import annotations

import pytest

from service.middlewares import origin_matches

ALLOWED = ["https://app.example.com", "https://*.example.org", "http://localhost:3000"]


@pytest.mark.parametrize(
    ("origin", "ok"),
    [
        ("https://app.example.com", True),
        ("HTTPS://APP.EXAMPLE.COM", True),
        ("https://evil.example.com", False),
        ("http://app.example.com", False),
        ("https://a.example.org", True),
        ("https://a.b.example.org", True),
        ("https://example.org", False),
        ("https://evilexample.org", False),
        ("http://a.example.org", False),
        ("http://localhost:3000", True),
        ("http://localhost:3001", False),
        ("null", False),
    ],
)
def test_origin_matching(origin: str, ok: bool) -> None:
    assert origin_matches(origin, ALLOWED) is ok
