"""Optional single sign-on through django-allauth (OpenID Connect), configured in settings.

:func:`providers` is safe to call whether it is on or off; the adapters allauth uses when it
is on are in ``sso_adapters``.
"""

from __future__ import annotations

from dataclasses import dataclass

from django.conf import settings
from django.urls import reverse


@dataclass(frozen=True)
class SSOProvider:
    name: str  # shown on the button: "Sign in with {name}"
    login_url: str  # allauth's provider login (POST, so no link can log anyone in)


def providers() -> list[SSOProvider]:
    """The sign-in buttons for the login page: none while single sign-on is off."""
    if not getattr(settings, "TUTOR_SSO", False):
        return []
    return [
        SSOProvider(
            name=settings.TUTOR_SSO_NAME,
            login_url=reverse(
                "openid_connect_login", kwargs={"provider_id": settings.TUTOR_SSO_PROVIDER_ID}
            ),
        )
    ]
