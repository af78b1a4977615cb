from django import forms
from django.conf import settings

from training.jobs import TrainJobConfig
from tutor.classes.models import Classroom

from . import services
from .export import count_window_problems
from .models import ModelVersion


class DateInput(forms.DateInput):
    input_type = "date"


def _number(label, field=forms.FloatField, help_text="", **kwargs):
    return field(label=label, help_text=help_text, **kwargs)


class TrainingJobForm(forms.Form):
    """An admin's choices for a retraining job (``training.jobs.TrainJobConfig``)."""

    base_version = forms.ModelChoiceField(
        queryset=ModelVersion.objects.none(),
        label="Start from version",
        help_text="The new adapter continues from this version (the base model or an adapter).",
    )
    classrooms = forms.ModelMultipleChoiceField(
        queryset=Classroom.objects.none(),
        required=False,
        widget=forms.CheckboxSelectMultiple,
        label="Classes",
        help_text="Logged sessions of these classes. None ticked: every session, free "
        "practice included.",
    )
    date_from = forms.DateField(required=False, widget=DateInput(), label="From")
    date_to = forms.DateField(required=False, widget=DateInput(), label="To")
    lambda_ = _number(
        "λ (pedagogy penalty)",
        min_value=0,
        max_value=10,
        initial=1.0,
        help_text="Weight of the penalty when the tutor leaks the answer or breaks pedagogy: "
        "higher trades solve rate for fewer leaks.",
    )
    steps = _number("Steps", forms.IntegerField, min_value=1, max_value=100_000, initial=10)
    group_size = _number(
        "Group size",
        forms.IntegerField,
        min_value=2,
        max_value=64,
        initial=4,
        help_text="Rollouts per problem; GRPO compares them with each other.",
    )
    learning_rate = _number("Learning rate", min_value=1e-8, max_value=1e-2, initial=2e-5)
    seed = _number("Seed", forms.IntegerField, min_value=0, max_value=2**31 - 1, initial=0)
    # advanced
    mu = _number(
        "μ (learned pedagogy reward)",
        min_value=0,
        max_value=10,
        initial=0.0,
        help_text="Weight of the reward model trained on teacher ratings (0: off).",
    )
    beta = _number("β (KL to the reference)", min_value=0, max_value=1, initial=0.04)
    variant = forms.ChoiceField(
        choices=[
            ("hard", "hard: a leaking dialogue gets −λ, no credit for the solve"),
            ("soft", "soft: a leaking dialogue gets the solve minus λ"),
        ],
        initial="hard",
        label="Penalty",
    )
    max_turns = _number(
        "Tutor turns per dialogue", forms.IntegerField, min_value=1, max_value=10, initial=2
    )
    k = _number(
        "Student solutions per dialogue (k)",
        forms.IntegerField,
        min_value=1,
        max_value=16,
        initial=2,
    )
    problems_per_step = _number(
        "Problems per step", forms.IntegerField, min_value=1, max_value=256, initial=2
    )
    include_problem_bank = forms.BooleanField(
        required=False,
        label="Include the problem bank",
        help_text="Top a small window up with problems from the bank "
        f"(to at least {settings.TUTOR_TRAINING_MIN_PROBLEMS}).",
    )

    curriculum = forms.BooleanField(
        required=False,
        initial=True,
        label="Self-Evolving Curriculum",
        help_text="Draw problem categories where the rewards of recent rollouts differ most "
        "(off: uniformly).",
    )
    hidden_planning = forms.BooleanField(
        required=False,
        initial=settings.TUTOR_HIDDEN_PLANNING,
        label="Hidden planning",
        help_text="The tutor plans inside <think> tags that students never see; serve the "
        "version with TUTOR_HIDDEN_PLANNING set the same way.",
    )
    retrain_reward_model = forms.BooleanField(
        required=False,
        label="Retrain the reward model first",
        help_text="Before the first step, retrain the learned pedagogy reward from the window's "
        "teacher and student ratings and the answers the guard stopped (with μ above 0); kept "
        "only if its held-out accuracy does not fall.",
    )
    band_low = _number(
        "Informative band: lowest solve rate",
        min_value=0,
        max_value=1,
        initial=0.01,
        required=False,
        help_text="Steps draw problems the simulated student solves alone at least this often "
        "(calibrated problems only; see manage.py calibrate_problems).",
    )
    band_high = _number(
        "Informative band: highest solve rate",
        min_value=0,
        max_value=1,
        initial=0.60,
        required=False,
        help_text="… and at most this often.",
    )
    calculator = forms.BooleanField(
        required=False,
        label="The simulated student has a calculator",
        help_text="Its arithmetic is exact, so the dialogue decides whether it picks the right "
        "operations.",
    )

    ADVANCED = (
        "mu",
        "retrain_reward_model",
        "beta",
        "variant",
        "max_turns",
        "k",
        "problems_per_step",
        "include_problem_bank",
        "curriculum",
        "band_low",
        "band_high",
        "calculator",
        "hidden_planning",
    )

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["base_version"].queryset = ModelVersion.objects.exclude(
            status=ModelVersion.Status.FAILED
        ).order_by("-created_at")
        self.fields["classrooms"].queryset = Classroom.objects.select_related("teacher").order_by(
            "name", "id"
        )

    def basic_fields(self):
        return [self[name] for name in self.fields if name not in self.ADVANCED]

    def advanced_fields(self):
        return [self[name] for name in self.ADVANCED]

    def clean(self):
        data = super().clean()
        start, end = data.get("date_from"), data.get("date_to")
        if start and end and start > end:
            self.add_error("date_to", "The end date is before the start date.")
            return data
        low, high = data.get("band_low"), data.get("band_high")
        if low is not None and high is not None and low > high:
            self.add_error("band_high", "The highest solve rate is below the lowest.")
        if data.get("retrain_reward_model") and not data.get("mu"):
            self.add_error(
                "retrain_reward_model",
                "The retrained reward model only counts in the reward with μ above 0.",
            )
        if self.errors:
            return data
        classroom_ids = [c.pk for c in data.get("classrooms") or []]
        problems = count_window_problems(classroom_ids, start, end)
        self.window_problems = problems
        if problems == 0 and not data.get("include_problem_bank"):
            raise forms.ValidationError(
                "No session was logged in this window, so there is nothing to train on. "
                "Widen the window or include the problem bank."
            )
        return data

    def train_config(self) -> TrainJobConfig:
        data = self.cleaned_data
        base: ModelVersion = data["base_version"]
        return TrainJobConfig(
            base_model=base.base_model,
            init_adapter=base.adapter_path or None,
            endpoint=settings.TUTOR_TRAINING_BASE_URL,
            student_model=services.base_version().name,  # as in evaluation (runner)
            steps=data["steps"],
            problems_per_step=data["problems_per_step"],
            group_size=data["group_size"],
            learning_rate=data["learning_rate"],
            lambda_=data["lambda_"],
            mu=data["mu"],
            variant=data["variant"],
            beta=data["beta"],
            seed=data["seed"],
            max_turns=data["max_turns"],
            k=data["k"],
            curriculum=data["curriculum"],
            hidden_planning=data["hidden_planning"],
            reward_model=settings.TUTOR_EVAL_REWARD_MODEL if data["mu"] else None,
            retrain_reward_model=data["retrain_reward_model"],
            band_low=0.01 if data["band_low"] is None else data["band_low"],
            band_high=0.60 if data["band_high"] is None else data["band_high"],
            calculator=data["calculator"],
        )


class EvaluationForm(forms.Form):
    limit = forms.IntegerField(
        min_value=1, max_value=1000, initial=settings.TUTOR_EVAL_LIMIT, label="Items per task"
    )
    max_turns = forms.IntegerField(min_value=1, max_value=10, initial=3, label="Tutor turns")
    k = forms.IntegerField(min_value=1, max_value=16, initial=2, label="Student solutions (k)")
    seed = forms.IntegerField(min_value=0, max_value=2**31 - 1, initial=1234)


class PromoteForm(forms.Form):
    scope = forms.ChoiceField(
        choices=[("global", "Globally (every class and free practice)"), ("classes", "For classes")]
    )
    classrooms = forms.ModelMultipleChoiceField(
        queryset=Classroom.objects.none(), required=False, widget=forms.CheckboxSelectMultiple
    )
    override = forms.BooleanField(
        required=False,
        label="Promote even if the gate fails (recorded)",
    )

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["classrooms"].queryset = Classroom.objects.order_by("name", "id")

    def clean(self):
        data = super().clean()
        if data.get("scope") == "classes" and not data.get("classrooms"):
            self.add_error("classrooms", "Tick at least one class.")
        return data
