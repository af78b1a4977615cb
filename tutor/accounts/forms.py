"""Forms for signing up with a class code and for choosing a password."""

from __future__ import annotations

from django import forms
from django.contrib.auth.forms import PasswordChangeForm, SetPasswordForm, UserCreationForm

from tutor.classes.forms import normalise_code
from tutor.classes.models import Classroom

from .models import Role, User

WRONG_CODE = "No class has that code. Check it with your teacher and try again."


class SignupForm(UserCreationForm):
    """A student account, allowed only with the join code of an open class: the code is the
    gate. ``self.classroom`` is the class the code names once the form is valid."""

    code = forms.CharField(
        label="Class code",
        max_length=32,
        help_text="The join code your teacher gave you, e.g. ABCD-2345.",
        widget=forms.TextInput(attrs={"autocomplete": "off", "autocapitalize": "characters"}),
    )
    field_order = ["code", "username", "first_name", "last_name", "password1", "password2"]

    class Meta(UserCreationForm.Meta):
        model = User
        fields = ("username", "first_name", "last_name")

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.classroom: Classroom | None = None
        self.fields["username"].widget.attrs.pop("autofocus", None)
        self.fields["code"].widget.attrs["autofocus"] = True
        self.fields["first_name"].required = True

    def clean_code(self) -> str:
        code = normalise_code(self.cleaned_data["code"])
        classroom = Classroom.objects.filter(join_code=code, is_archived=False).first()
        if classroom is None:
            raise forms.ValidationError(WRONG_CODE, code="wrong_code")
        self.classroom = classroom
        return code

    @property
    def wrong_code(self) -> bool:
        return self.has_error("code", "wrong_code")

    def save(self, commit: bool = True) -> User:
        user = super().save(commit=False)
        # Whatever was posted, a sign-up makes a student.
        user.role = Role.STUDENT
        user.is_staff = user.is_superuser = False
        if commit:
            user.save()
        return user


class ChoosesOwnPassword:
    """Setting a password through this form is the user choosing their own: any temporary
    password a teacher saw no longer has to be changed."""

    user: User

    def save(self, commit: bool = True) -> User:
        self.user.must_change_password = False
        return super().save(commit=commit)  # type: ignore[misc]


class OwnPasswordChangeForm(ChoosesOwnPassword, PasswordChangeForm):
    def clean(self):
        cleaned = super().clean()
        old, new = cleaned.get("old_password"), cleaned.get("new_password1")
        if old and new and old == new:
            self.add_error(
                "new_password1", "Choose a new password, not the one you were given or had."
            )
        return cleaned


class OwnSetPasswordForm(ChoosesOwnPassword, SetPasswordForm):
    pass
