"""The translation backends' view of the suite's one retry helper (``cltrlib.providers.http``): the same
``RetryPolicy`` and backoff, raising ``TranslationError`` so a build reports a translation failure as such."""

from __future__ import annotations

import requests

from cltrlib.providers.http import DEFAULT_POLICY, RETRY_STATUS, RequestError, RetryPolicy, request_json

__all__ = ["DEFAULT_POLICY", "RETRY_STATUS", "RetryPolicy", "TranslationError", "post_json"]


class TranslationError(RequestError):
    """A backend failed for good (after retries) or answered something we cannot use."""


def post_json(url: str, payload: dict, headers: dict[str, str] | None = None,
              policy: RetryPolicy = DEFAULT_POLICY, session: requests.Session | None = None,
              what: str = "request") -> dict:
    """``cltrlib.providers.http.request_json`` (POST), failing with ``TranslationError``."""
    return request_json("POST", url, payload, headers, policy, session, what, error=TranslationError)
