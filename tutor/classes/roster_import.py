"""Importing a roster CSV into a class: the upload form and the accounts it creates.

New accounts are students with a temporary password that is returned once, in the report, for
the teacher to hand out; only its hash is stored, and its owner must choose their own password
at first login. Existing student accounts are enrolled. Rows that cannot be imported are
reported with their line and the reason, and the rest are imported.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from django import forms
from django.conf import settings
from django.contrib.auth import get_user_model
from django.db import IntegrityError, transaction
from django.db.models.functions import Lower

from tutor.accounts.models import Role
from tutor.accounts.passwords import hash_temporary_password, temporary_password

from .models import Classroom, Enrollment
from .roster import RejectedRow, Roster, RosterRow, parse_roster


class RosterImportForm(forms.Form):
    file = forms.FileField(
        label="Roster file (CSV)",
        help_text="One student per row: username, first name, last name. A first row naming "
        "the columns is optional.",
        widget=forms.ClearableFileInput(attrs={"accept": ".csv,text/csv,text/plain"}),
    )

    def clean_file(self):
        upload = self.cleaned_data["file"]
        max_bytes = settings.TUTOR_ROSTER_MAX_BYTES
        # The size the upload declares is checked first; only max_bytes + 1 are read anyway.
        if upload.size is not None and upload.size > max_bytes:
            raise forms.ValidationError(f"The file is larger than {max_bytes // 1024} KB.")
        roster = parse_roster(
            upload.read(max_bytes + 1),
            max_bytes=max_bytes,
            max_rows=settings.TUTOR_ROSTER_MAX_ROWS,
        )
        if roster.error:
            raise forms.ValidationError(roster.error)
        self.roster = roster
        return upload


@dataclass(frozen=True)
class NewAccount:
    line: int
    username: str
    name: str
    password: str  # the temporary password, shown once on the report page


@dataclass
class RosterReport:
    created: list[NewAccount] = field(default_factory=list)
    enrolled: list[RosterRow] = field(default_factory=list)  # existing students, now in the class
    already_in_class: list[RosterRow] = field(default_factory=list)
    rejected: list[RejectedRow] = field(default_factory=list)


def import_roster(classroom: Classroom, roster: Roster) -> RosterReport:
    """Create and enrol the roster's students (one query for the existing accounts)."""
    user_model = get_user_model()
    report = RosterReport(rejected=list(roster.rejected))
    keys = [row.username.lower() for row in roster.rows]
    existing = {
        user.username.lower(): user
        for user in user_model.objects.annotate(key=Lower("username")).filter(key__in=keys)
    }
    in_class = set(
        Enrollment.objects.filter(classroom=classroom, student__in=existing.values()).values_list(
            "student_id", flat=True
        )
    )
    for row in roster.rows:
        user = existing.get(row.username.lower())
        if user is None:
            account = _create(classroom, row, user_model)
            if account is None:
                report.rejected.append(
                    RejectedRow(row.line, row.username, "the username was taken meanwhile")
                )
            else:
                report.created.append(account)
        elif user.role != Role.STUDENT:
            report.rejected.append(
                RejectedRow(
                    row.line, row.username, "this username belongs to an account that is not a "
                    "student's",
                )
            )  # fmt: skip
        elif user.username != row.username:
            report.rejected.append(
                RejectedRow(
                    row.line, row.username, f"a student account is named “{user.username}”: "
                    "write the username exactly as it is",
                )
            )  # fmt: skip
        elif user.pk in in_class:
            report.already_in_class.append(row)
        else:
            Enrollment.objects.get_or_create(classroom=classroom, student=user)
            in_class.add(user.pk)
            report.enrolled.append(row)
    report.rejected.sort(key=lambda r: r.line)
    return report


def _create(classroom: Classroom, row: RosterRow, user_model) -> NewAccount | None:
    password = temporary_password()
    try:
        with transaction.atomic():
            user = user_model(
                username=row.username,
                first_name=row.first_name,
                last_name=row.last_name,
                role=Role.STUDENT,
                must_change_password=True,
            )
            user.password = hash_temporary_password(password)
            user.save()
            Enrollment.objects.create(classroom=classroom, student=user)
    except IntegrityError:
        return None
    return NewAccount(row.line, row.username, row.name, password)
