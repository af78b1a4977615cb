"""The problem editor's forms: one set of fields and bounds for the editor and for every row
of an imported file, and the "try an answer" request."""

from __future__ import annotations

import re
from typing import Any

from django import forms
from django.conf import settings

from .checks import final_answer_error
from .models import Problem

MAX_TITLE_CHARS = 200
MAX_TEXT_CHARS = 5000
MAX_SOLUTION_CHARS = 10000
# The model's column; the grader itself refuses anything past 300 characters.
MAX_FINAL_ANSWER_CHARS = 200
MAX_SKILLS = 8
MAX_SKILL_CHARS = 40
TITLE_FROM_TEXT_CHARS = 60

_SKILL_SEPARATORS = re.compile(r"[,;\n]")


def title_from_text(text: str, limit: int = TITLE_FROM_TEXT_CHARS) -> str:
    """A title from the problem's first sentence, for problems written without one."""
    first = text.strip().split("\n", 1)[0].split(". ", 1)[0].strip()
    return first if len(first) <= limit else first[: limit - 1].rstrip() + "…"


class SkillsField(forms.CharField):
    """Skills typed as one line, separated by commas or semicolons; stored as a list."""

    def __init__(self, **kwargs: Any) -> None:
        kwargs.setdefault("required", False)
        kwargs.setdefault("max_length", MAX_SKILLS * (MAX_SKILL_CHARS + 2))
        super().__init__(**kwargs)

    def prepare_value(self, value: Any) -> Any:
        if isinstance(value, list):
            return ", ".join(str(skill) for skill in value)
        return value

    def clean(self, value: Any) -> list[str]:
        text = super().clean(value)
        skills: list[str] = []
        for part in _SKILL_SEPARATORS.split(text):
            skill = " ".join(part.split())
            if skill and skill.lower() not in {s.lower() for s in skills}:
                skills.append(skill)
        if len(skills) > MAX_SKILLS:
            raise forms.ValidationError(f"Give at most {MAX_SKILLS} skills.")
        too_long = [s for s in skills if len(s) > MAX_SKILL_CHARS]
        if too_long:
            raise forms.ValidationError(
                f"A skill has at most {MAX_SKILL_CHARS} characters (“{too_long[0][:50]}…”)."
            )
        return skills


class ProblemForm(forms.ModelForm):
    """A teacher's problem. The final answer must be one the grader can check: it passes the
    grader's limits and is graded right against itself (:func:`checks.final_answer_error`)."""

    title = forms.CharField(
        max_length=MAX_TITLE_CHARS,
        required=False,
        help_text="Optional: the first sentence of the text is used when left blank.",
    )
    text = forms.CharField(
        max_length=MAX_TEXT_CHARS,
        widget=forms.Textarea(attrs={"rows": 6}),
        help_text="What students see. Markdown and LaTeX ($...$, $$...$$) are rendered.",
    )
    final_answer = forms.CharField(
        max_length=MAX_FINAL_ANSWER_CHARS,
        help_text="One value, checked with the same grader as students' answers "
        "(e.g. 3/4, 1 5/12, $0.75, 2x + 3).",
    )
    solution = forms.CharField(
        label="Worked solution",
        max_length=MAX_SOLUTION_CHARS,
        widget=forms.Textarea(attrs={"rows": 6}),
        help_text="The tutor sees it; students never do.",
    )
    skills = SkillsField(help_text="Separated by commas, e.g. fractions, word problems.")
    difficulty = forms.TypedChoiceField(
        choices=[(d, str(d)) for d in range(1, 6)],
        coerce=int,
        initial=2,
        help_text="1 (easy) to 5 (hard).",
    )

    class Meta:
        model = Problem
        fields = [
            "title",
            "text",
            "final_answer",
            "solution",
            "skills",
            "difficulty",
            "require_simplest_form",
            "shared",
        ]
        labels = {
            "require_simplest_form": "Require simplest form",
            "shared": "Share with other teachers",
        }

    def clean_text(self) -> str:
        return self.cleaned_data["text"].replace("\r\n", "\n").strip()

    def clean_solution(self) -> str:
        return self.cleaned_data["solution"].replace("\r\n", "\n").strip()

    def clean_final_answer(self) -> str:
        return self.cleaned_data["final_answer"].strip()

    def clean(self) -> dict[str, Any]:
        data = super().clean()
        text = data.get("text") or ""
        if not data.get("title") and text:
            data["title"] = title_from_text(text)
        final_answer = data.get("final_answer")
        if final_answer and "text" not in self.errors:
            error = final_answer_error(final_answer, text, bool(data.get("require_simplest_form")))
            if error:
                self.add_error("final_answer", error)
        return data


class TryAnswerForm(forms.Form):
    """One "try an answer" request from the editor: the unsaved problem and a student answer."""

    final_answer = forms.CharField(max_length=MAX_FINAL_ANSWER_CHARS)
    text = forms.CharField(max_length=MAX_TEXT_CHARS, required=False)
    require_simplest_form = forms.BooleanField(required=False)

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        # The students' own limit (a setting), so the editor tries what the chat would accept.
        self.fields["answer"] = forms.CharField(
            max_length=settings.TUTOR_MAX_ANSWER_CHARS,
            error_messages={"required": "Type an answer to try."},
        )
        self.fields["final_answer"].error_messages["required"] = "Write the final answer first."

    def first_error(self) -> str:
        for name, errors in self.errors.items():
            label = self.fields[name].label or name.replace("_", " ").capitalize()
            if name == "__all__":
                return str(errors[0])
            return f"{label}: {errors[0]}"
        return ""
