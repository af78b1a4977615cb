"""Database fixtures for ``benchmarks/chat_latency.py``, run in a subprocess with the same
environment as the platform server (so it writes the database that server reads).

    python benchmarks/_fixtures.py setup   < spec.json  > fixtures.json
    python benchmarks/_fixtures.py report  < {"sessions": [...]}  > messages.json
    python benchmarks/_fixtures.py cleanup < {"prefix": "..."}

``setup`` migrates, creates students (with a password, to log in through the login form),
one problem and the tutoring sessions the benchmark will chat in, and returns the exact
chat messages the consumer sends to the model for a fresh session's first student message
(``tutor.dialogues.services.tutor_prompt``), so that direct clients can send the same prompt.
"""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[1]

PROBLEM = {
    "title": "Benchmark: solve for x",
    "text": "Solve for $x$: $3x + 7 = 25$.",
    "final_answer": "6",
    "solution": "Subtract 7 from both sides: $3x = 18$. Divide by 3: $x = 6$.",
    "skills": ["linear equations"],
    "difficulty": 2,
}


def _django() -> None:
    sys.path.insert(0, str(REPO_ROOT))
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "tutor.settings")
    import django

    django.setup()


def setup(spec: dict) -> dict:
    from django.core.management import call_command
    from django.db import transaction

    from tutor.accounts.models import Role, User
    from tutor.dialogues import services
    from tutor.dialogues.models import TutoringSession
    from tutor.problems.models import Problem

    call_command("migrate", interactive=False, verbosity=0)
    prefix = spec["prefix"]
    with transaction.atomic():
        problem = Problem.objects.create(
            **(spec.get("problem") or PROBLEM),
            source=Problem.Source.CUSTOM,
            source_id=f"{prefix}problem",
        )
        students = []
        for i in range(spec["students"]):
            user = User(username=f"{prefix}s{i:03d}", role=Role.STUDENT, first_name=f"S{i}")
            user.set_password(spec["password"])
            user.save()
            students.append(user)
        sessions: dict[str, list[int]] = {}
        for batch in spec["batches"]:
            sessions[batch["key"]] = [
                TutoringSession.objects.create(
                    student=students[i], problem=problem, model_name=spec.get("model_name", "")
                ).pk
                for i in range(batch["size"])
            ]
        # The prompt the consumer builds for a fresh session's first student message.
        probe = TutoringSession.objects.create(student=students[0], problem=problem)
        services.store_student_message(probe, spec["message"], None)
        prompt = services.tutor_prompt(probe)
        probe.delete()
    return {
        "problem_id": problem.pk,
        "usernames": [u.username for u in students],
        "sessions": sessions,
        "prompt": prompt,
    }


def report(spec: dict) -> dict:
    from tutor.dialogues.models import Message

    rows = Message.objects.filter(session_id__in=spec["sessions"], role=Message.Role.TUTOR)
    return {
        "messages": [
            {
                "session": m.session_id,
                "prompt_tokens": m.prompt_tokens,
                "completion_tokens": m.completion_tokens,
                "time_to_first_token_ms": m.time_to_first_token_ms,
                "duration_ms": m.duration_ms,
                "partial": m.partial,
                "finish_reason": m.finish_reason,
                "chars": len(m.text),
            }
            for m in rows.order_by("id")
        ]
    }


def cleanup(spec: dict) -> dict:
    from tutor.accounts.models import User
    from tutor.dialogues.models import TutoringSession
    from tutor.problems.models import Problem

    prefix = spec["prefix"]
    deleted_sessions, _ = TutoringSession.objects.filter(
        student__username__startswith=prefix
    ).delete()
    User.objects.filter(username__startswith=prefix).delete()
    Problem.objects.filter(source_id=f"{prefix}problem").delete()
    return {"deleted_sessions": deleted_sessions}


def main() -> int:
    command = sys.argv[1]
    spec = json.load(sys.stdin)
    _django()
    result = {"setup": setup, "report": report, "cleanup": cleanup}[command](spec)
    json.dump(result, sys.stdout)
    return 0


if __name__ == "__main__":
    sys.exit(main())
