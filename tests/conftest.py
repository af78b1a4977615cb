import os

import pytest

# Playwright's sync API runs an event loop in the test thread; Django's ORM calls in browser
# tests happen outside it, so this only silences the loop check, not a real hazard.
os.environ.setdefault("DJANGO_ALLOW_ASYNC_UNSAFE", "true")


@pytest.fixture
def make_user(django_user_model):
    def make(username: str, role: str = "student", password: str = "pw-for-tests"):
        return django_user_model.objects.create_user(
            username=username, password=password, role=role, first_name=username.title()
        )

    return make


@pytest.fixture
def problem(db):
    from tutor.problems.models import Problem

    return Problem.objects.create(
        title="Solve for x",
        text="Solve for $x$: $3x + 7 = 25$.",
        final_answer="6",
        solution="Subtract 7: $3x = 18$. Divide by 3: $x = 6$.",
        skills=["linear equations"],
        difficulty=2,
    )
