"""django-allauth adapters, imported by allauth only while single sign-on is on (TUTOR_SSO)."""

from __future__ import annotations

from allauth.account.adapter import DefaultAccountAdapter
from allauth.socialaccount.adapter import DefaultSocialAccountAdapter
from django.http import HttpRequest

from .models import Role


class AccountAdapter(DefaultAccountAdapter):
    """Local accounts are made only by the class-code sign-up (tutor/accounts/views.py) and by
    teachers' rosters, never through allauth."""

    def is_open_for_signup(self, request: HttpRequest) -> bool:
        return False


class SocialAccountAdapter(DefaultSocialAccountAdapter):
    """A new single sign-on user is a student without a class: the identity provider says who
    they are, never what they may do. They join a class with its code."""

    def is_open_for_signup(self, request: HttpRequest, sociallogin) -> bool:
        return True

    def populate_user(self, request: HttpRequest, sociallogin, data):
        user = super().populate_user(request, sociallogin, data)
        user.role = Role.STUDENT
        user.is_staff = user.is_superuser = False
        user.must_change_password = False
        return user
