from django import forms
from django.contrib.auth import get_user_model

from tutor.accounts.models import Role
from tutor.problems.models import Problem

from .models import (
    PEDAGOGY_INSTRUCTIONS_MAX_CHARS,
    Assignment,
    Classroom,
    validate_instructions_length,
)

INSTRUCTIONS_HELP = (
    "Plain words, one instruction per line, e.g. “Give at most one hint per turn.” "
    "They are added to the tutor's instructions for this class's sessions "
    f"(at most {PEDAGOGY_INSTRUCTIONS_MAX_CHARS} characters)."
)


class InstructionsField(forms.CharField):
    """Pedagogy instructions: line breaks count as one character, as the browser counts them
    (a textarea sends each as CR LF), and a text over the limit gets the model's message."""

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.error_messages["max_length"] = validate_instructions_length.message

    def to_python(self, value):
        value = super().to_python(value)
        return value.replace("\r\n", "\n").replace("\r", "\n")


class ClassroomForm(forms.ModelForm):
    class Meta:
        model = Classroom
        fields = ["name", "pedagogy_instructions"]
        field_classes = {"pedagogy_instructions": InstructionsField}
        widgets = {"pedagogy_instructions": forms.Textarea(attrs={"rows": 4})}
        help_texts = {"pedagogy_instructions": INSTRUCTIONS_HELP}


class AddStudentForm(forms.Form):
    username = forms.CharField(max_length=150)

    def clean_username(self):
        username = self.cleaned_data["username"].strip()
        student = get_user_model().objects.filter(username=username, role=Role.STUDENT).first()
        if student is None:
            raise forms.ValidationError(f"There is no student with the username “{username}”.")
        self.student = student
        return username


def normalise_code(code: str) -> str:
    """Join codes are read aloud and typed by hand: ignore case, spaces and dashes."""
    return "".join(ch for ch in code.upper() if ch not in " -\t")


class JoinClassForm(forms.Form):
    code = forms.CharField(max_length=32)

    def clean_code(self):
        code = normalise_code(self.cleaned_data["code"])
        classroom = Classroom.objects.filter(join_code=code, is_archived=False).first()
        if classroom is None:
            raise forms.ValidationError(
                "No class has that code. Check it with your teacher and try again."
            )
        self.classroom = classroom
        return code


class DateTimeLocalInput(forms.DateTimeInput):
    input_type = "datetime-local"

    def __init__(self, attrs=None):
        super().__init__(attrs=attrs, format="%Y-%m-%dT%H:%M")


class AssignmentForm(forms.ModelForm):
    problems = forms.ModelMultipleChoiceField(
        queryset=Problem.objects.none(),
        widget=forms.CheckboxSelectMultiple,
        error_messages={"required": "Pick at least one problem."},
    )

    class Meta:
        model = Assignment
        fields = ["title", "due_at", "pedagogy_instructions", "problems"]
        field_classes = {"pedagogy_instructions": InstructionsField}
        labels = {"due_at": "Due", "pedagogy_instructions": "Pedagogy instructions (optional)"}
        widgets = {
            "due_at": DateTimeLocalInput(),
            "pedagogy_instructions": forms.Textarea(attrs={"rows": 3}),
        }
        help_texts = {
            "pedagogy_instructions": "Added after the class's instructions for this assignment "
            f"(at most {PEDAGOGY_INSTRUCTIONS_MAX_CHARS} characters)."
        }

    def __init__(self, *args, usable=None, **kwargs):
        """``usable``: the problems this assignment may use (``Problem.objects.assignable``:
        the bank, shared problems and the class teacher's own); none when not given, so no
        caller can offer another teacher's unshared problem by omission."""
        super().__init__(*args, **kwargs)
        allowed = usable if usable is not None else Problem.objects.none()
        if self.instance.pk:
            # Keep problems already set even if they have since been retired or archived.
            allowed = allowed | Problem.objects.filter(assignments=self.instance)
        self.fields["problems"].queryset = allowed.distinct()
