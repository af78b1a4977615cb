"""Account pages: log in, sign up with a class code, change and reset a password.

Password change and reset are Django's auth views with the site's templates; what they add is
the end of a forced change (a teacher-issued password) and rate limits. The reset pages answer
the same whether or not an account has the address given, so they reveal nobody's account.
"""

from __future__ import annotations

from django.conf import settings
from django.contrib import messages
from django.contrib.auth import login
from django.contrib.auth import views as auth_views
from django.db import IntegrityError, transaction
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.urls import reverse_lazy
from django.utils.decorators import method_decorator
from django.views.decorators.debug import sensitive_post_parameters
from django.views.decorators.http import require_http_methods

from tutor import limits
from tutor.classes.models import Enrollment

from . import sso
from .forms import OwnPasswordChangeForm, OwnSetPasswordForm, SignupForm

HOUR = 3600


def client_address(request: HttpRequest) -> str:
    """The address limits are counted against: the one django-axes locks logins for."""
    from axes.helpers import get_client_ip_address

    return get_client_ip_address(request) or "unknown"


def _minutes(seconds: float) -> int:
    return max(1, round(seconds / 60))


class LoginView(auth_views.LoginView):
    """Django's login, with the sign-up and reset links and any single sign-on buttons."""

    def get_context_data(self, **kwargs):
        context = super().get_context_data(**kwargs)
        context["sso_providers"] = sso.providers()
        return context


# ---- sign-up with a class code -------------------------------------------------------------


def _signup_page(request: HttpRequest, form: SignupForm, error: str = "", status: int = 200):
    return render(
        request, "registration/signup.html", {"form": form, "page_error": error}, status=status
    )


@sensitive_post_parameters("password1", "password2")
@require_http_methods(["GET", "POST"])
def signup(request: HttpRequest) -> HttpResponse:
    """A new student account, enrolled in the class whose join code it was made with.

    Every try from an address counts toward ``TUTOR_RATE_SIGNUPS_PER_HOUR`` (a class signing up
    from one school address fits), and ``TUTOR_SIGNUP_CODE_FAILURES_PER_HOUR`` wrong codes lock
    the address out for an hour, so codes cannot be found by trying them.
    """
    if request.user.is_authenticated:
        return redirect("home")
    if request.method == "GET":
        return _signup_page(request, SignupForm())

    address = client_address(request)
    form = SignupForm(request.POST)
    if limits.held("signup-code", address):
        return _signup_page(
            request,
            form,
            "Too many wrong class codes were tried from your network. Please wait an hour, "
            "or ask your teacher to create your account.",
            status=429,
        )
    wait = limits.take("signup", address, limits.Rate(settings.TUTOR_RATE_SIGNUPS_PER_HOUR, HOUR))
    if wait:
        return _signup_page(
            request,
            form,
            f"Too many sign-ups from your network. Please wait {_minutes(wait)} minutes.",
            status=429,
        )
    if form.is_valid():
        try:
            with transaction.atomic():
                user = form.save()
                Enrollment.objects.create(classroom=form.classroom, student=user)
        except IntegrityError:  # the same username, signed up a moment before
            form.add_error("username", "A user with that username already exists.")
        else:
            login(request, user, backend="django.contrib.auth.backends.ModelBackend")
            messages.success(request, f"Welcome! You are in “{form.classroom.name}”.")
            return redirect("home")
    elif form.wrong_code:
        failures = limits.Rate(settings.TUTOR_SIGNUP_CODE_FAILURES_PER_HOUR, HOUR)
        if limits.take("signup-code-failures", address, failures):
            limits.hold("signup-code", address, HOUR)
    return _signup_page(request, form)


# ---- password change ------------------------------------------------------------------------


class PasswordChangeView(auth_views.PasswordChangeView):
    """Django's password change. It ends a forced change (the form clears the flag), and old
    passwords tried through it are rate limited like logins, per user."""

    form_class = OwnPasswordChangeForm
    success_url = reverse_lazy("password_change_done")

    def get_context_data(self, **kwargs):
        context = super().get_context_data(**kwargs)
        context["forced"] = self.request.user.must_change_password
        return context

    def post(self, request, *args, **kwargs):
        rate = limits.Rate(settings.AXES_FAILURE_LIMIT * 2, HOUR)
        wait = limits.take("password-change", request.user.pk, rate)
        if wait:
            # An unbound form: the old password is not even checked.
            context = self.get_context_data(form=self.form_class(user=request.user))
            context["page_error"] = (
                f"Too many tries. Please wait {_minutes(wait)} minutes and try again."
            )
            return self.render_to_response(context, status=429)
        return super().post(request, *args, **kwargs)


# ---- password reset -------------------------------------------------------------------------


@method_decorator(sensitive_post_parameters("email"), name="dispatch")
class PasswordResetView(auth_views.PasswordResetView):
    """Django's reset by email, with limits on how many mails an address (the requester's) and
    an email address (the recipient's) can cause. Past the recipient's limit the page says the
    same as always and sends nothing, so it still reveals nothing about accounts."""

    success_url = reverse_lazy("password_reset_done")

    def post(self, request, *args, **kwargs):
        rate = limits.Rate(settings.TUTOR_RATE_PASSWORD_RESETS_PER_HOUR, HOUR)
        wait = limits.take("password-reset", client_address(request), rate)
        if wait:
            form = self.get_form()
            context = self.get_context_data(form=form)
            context["page_error"] = (
                f"Too many reset requests from your network. Please wait {_minutes(wait)} "
                "minutes and try again."
            )
            return self.render_to_response(context, status=429)
        return super().post(request, *args, **kwargs)

    def form_valid(self, form):
        email = form.cleaned_data["email"].strip().lower()
        rate = limits.Rate(settings.TUTOR_RATE_PASSWORD_RESETS_PER_HOUR, HOUR)
        if limits.take("password-reset-email", email, rate):
            return redirect(self.get_success_url())
        return super().form_valid(form)


class PasswordResetConfirmView(auth_views.PasswordResetConfirmView):
    form_class = OwnSetPasswordForm
    success_url = reverse_lazy("password_reset_complete")
