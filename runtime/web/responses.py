"""The web view's responses: JSON, and HTML whose Content-Security-Policy lets a page run only its
own inline script and style (by hash), talk only to its own origin, and not be framed."""

from __future__ import annotations

import base64
import hashlib

import msgspec
from starlette.responses import HTMLResponse, Response

from .pages import CSS
from .script import SCRIPT

__all__ = ["CSP", "html_response", "json_response"]


def _sha256(text: str) -> str:
    return "'sha256-" + base64.b64encode(hashlib.sha256(text.encode()).digest()).decode() + "'"


CSP = (f"default-src 'none'; script-src {_sha256(SCRIPT)}; style-src {_sha256(CSS)}; connect-src 'self'; "
       "img-src 'self'; form-action 'self'; base-uri 'none'; frame-ancestors 'none'")
"""No asset from elsewhere, no inline script but ours (an injected one would not run), no framing."""

_HEADERS = {"X-Content-Type-Options": "nosniff", "Referrer-Policy": "no-referrer", "Cache-Control": "no-store"}


def json_response(value: object, status_code: int = 200, headers: dict[str, str] | None = None) -> Response:
    return Response(msgspec.json.encode(value), status_code=status_code, media_type="application/json",
                    headers={**_HEADERS, **(headers or {})})


def html_response(page: str, status_code: int = 200) -> HTMLResponse:
    return HTMLResponse(page, status_code=status_code, headers={**_HEADERS, "Content-Security-Policy": CSP})
