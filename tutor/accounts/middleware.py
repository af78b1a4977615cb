"""Send a user who must choose their own password to the password change page.

Accounts created from a teacher's roster start with a temporary password that the teacher has
seen. Until its owner replaces it, every request but the password change itself and logging
out is answered with a redirect there (a request that is not a page view, such as a form post
or a JSON fetch, gets the same redirect, so nothing can be done on the borrowed password).
"""

from __future__ import annotations

from collections.abc import Callable

from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect
from django.urls import reverse

# The pages such a user may still reach, by URL name.
ALLOWED_URL_NAMES = ("password_change", "password_change_done", "logout")


class PasswordChangeRequiredMiddleware:
    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response
        self._allowed: frozenset[str] | None = None

    def allowed_paths(self) -> frozenset[str]:
        # Reversed on first use: the URLconf is not loaded when middleware is built.
        if self._allowed is None:
            self._allowed = frozenset(reverse(name) for name in ALLOWED_URL_NAMES)
        return self._allowed

    def __call__(self, request: HttpRequest) -> HttpResponse:
        user = getattr(request, "user", None)
        if (
            user is not None
            and user.is_authenticated
            and getattr(user, "must_change_password", False)
            and request.path_info not in self.allowed_paths()
        ):
            return redirect("password_change")
        return self.get_response(request)
