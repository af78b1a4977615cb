"""Single sign-on (django-allauth, OpenID Connect): off by default, and when on, a button on the
login page and new users who are students without a class.

Turning it on changes INSTALLED_APPS and the URLconf, so the "on" side runs in a fresh Python
process on the project's own settings, with a SQLite database in a temporary folder. The
provider's side of the flow (the redirect and the token exchange) is allauth's; the script
hands allauth the user info a provider would return, as its callback does.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from django.apps import apps
from django.test import Client
from django.urls import reverse

pytestmark = [pytest.mark.integration]

REPO = Path(__file__).resolve().parents[2]

SCRIPT = r"""
import json
import django
django.setup()
from django.core.management import call_command
call_command("migrate", verbosity=0)
from django.test.utils import setup_test_environment
setup_test_environment()
from allauth.core import context
from allauth.socialaccount.adapter import get_adapter
from allauth.socialaccount.helpers import complete_social_login
from django.contrib.auth.models import AnonymousUser
from django.contrib.messages.middleware import MessageMiddleware
from django.contrib.sessions.middleware import SessionMiddleware
from django.test import Client, RequestFactory
from django.urls import reverse
from tutor.accounts.models import User

out = {}
client = Client()
out["login_page"] = client.get("/accounts/login/").content.decode()
out["provider_login_url"] = reverse("openid_connect_login", kwargs={"provider_id": "example"})
out["allauth_signup"] = client.get("/sso/signup/").status_code
out["allauth_password_reset"] = client.get("/sso/password/reset/").status_code
teacher = User.objects.create_user("teach", email="teach@example.org", role="teacher")


def sso_login(claims):
    request = RequestFactory().get("/sso/oidc/example/login/callback/")
    SessionMiddleware(lambda r: None).process_request(request)
    MessageMiddleware(lambda r: None).process_request(request)
    request.user = AnonymousUser()
    with context.request_context(request):
        provider = get_adapter().get_provider(request, "example")
        sociallogin = provider.sociallogin_from_response(request, claims)
        response = complete_social_login(request, sociallogin)
    return request.session.get("_auth_user_id"), response


user_id, response = sso_login(
    {"sub": "1", "email": "sam@example.org", "name": "Sam Sso", "preferred_username": "sam",
     "role": "admin", "is_staff": True, "groups": ["teachers"]}
)
sam = User.objects.get(pk=user_id)
out["new_user"] = {
    "role": sam.role, "is_staff": sam.is_staff, "is_superuser": sam.is_superuser,
    "classes": sam.enrollments.count(), "usable_password": sam.has_usable_password(),
    "must_change_password": sam.must_change_password, "first_name": sam.first_name,
}
# An identity whose email is a teacher's is not logged in as that teacher.
user_id, response = sso_login({"sub": "2", "email": "teach@example.org", "name": "Mallory"})
out["same_email_user"] = user_id
out["teacher_id"] = str(teacher.pk)
print("RESULT" + json.dumps(out))
"""


def run_with_sso(tmp_path) -> dict:
    env = {
        key: value
        for key, value in os.environ.items()
        if not key.startswith(("REDIS_URL", "DATABASE_URL", "CELERY_", "EMAIL_", "TUTOR_SSO"))
    }
    env.update(
        DJANGO_SETTINGS_MODULE="tutor.settings",
        TUTOR_VAR_DIR=str(tmp_path),
        DATABASE_URL=f"sqlite:///{tmp_path / 'sso.sqlite3'}",
        TUTOR_SSO_CLIENT_ID="client-id",
        TUTOR_SSO_CLIENT_SECRET="client-secret",
        TUTOR_SSO_PROVIDER_ID="example",
        TUTOR_SSO_NAME="Example ID",
        TUTOR_SSO_SERVER_URL="https://idp.example.org",
    )
    done = subprocess.run(
        [sys.executable, "-c", SCRIPT], cwd=REPO, env=env, capture_output=True, text=True,
        timeout=120,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr[-4000:]
    line = next(line for line in done.stdout.splitlines() if line.startswith("RESULT"))
    return json.loads(line.removeprefix("RESULT"))


def test_sso_on_shows_a_button_and_makes_students_without_a_class(tmp_path):
    out = run_with_sso(tmp_path)
    assert "Sign in with Example ID" in out["login_page"]
    assert out["provider_login_url"] == "/sso/oidc/example/login/"  # as the README says
    assert f'action="{out["provider_login_url"]}"' in out["login_page"]
    # allauth's own local sign-up and reset are not reachable: the class code stays the gate.
    assert out["allauth_signup"] == 404 and out["allauth_password_reset"] == 404
    assert out["new_user"] == {
        "role": "student",
        "is_staff": False,
        "is_superuser": False,
        "classes": 0,
        "usable_password": False,
        "must_change_password": False,
        "first_name": "Sam",
    }
    assert out["same_email_user"] != out["teacher_id"]


@pytest.mark.django_db
def test_sso_is_off_by_default(settings):
    assert not settings.TUTOR_SSO
    assert not apps.is_installed("allauth")
    assert Client().get("/sso/login/").status_code == 404
    assert "Sign in with" not in Client().get(reverse("login")).text


def test_sso_needs_both_client_id_and_secret(tmp_path):
    env = {k: v for k, v in os.environ.items() if not k.startswith("TUTOR_SSO")}
    env.update(TUTOR_VAR_DIR=str(tmp_path), TUTOR_SSO="1", TUTOR_SSO_CLIENT_ID="only-the-id")
    done = subprocess.run(
        [sys.executable, "-c", "import tutor.settings"], cwd=REPO, env=env,
        capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert done.returncode != 0
    assert "TUTOR_SSO_CLIENT_SECRET" in done.stderr


def test_the_embedded_default_prints_mail_on_the_console(tmp_path):
    env = {k: v for k, v in os.environ.items() if not k.startswith("EMAIL_")}
    env.update(TUTOR_VAR_DIR=str(tmp_path))
    code = "import tutor.settings as s; print(s.EMAIL_BACKEND)"
    done = subprocess.run(
        [sys.executable, "-c", code], cwd=REPO, env=env, capture_output=True, text=True,
        timeout=60,
    )  # fmt: skip
    assert done.stdout.strip() == "django.core.mail.backends.console.EmailBackend"
    env.update(EMAIL_HOST="smtp.example.org", EMAIL_PORT="587")
    done = subprocess.run(
        [sys.executable, "-c", code], cwd=REPO, env=env, capture_output=True, text=True,
        timeout=60,
    )  # fmt: skip
    assert done.stdout.strip() == "django.core.mail.backends.smtp.EmailBackend"
