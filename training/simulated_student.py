"""The simulated student that the tutor policy talks with during rollouts.

Following "From Problem-Solving to Teaching Problem-Solving" (Dinucu-Jianu et al., 2025), a
language model role-plays a student who starts from an incorrect first solution and does not
know the answer. After the dialogue the same student writes a final solution on its own; the
tutor's reward comes from whether that solution is right (see :mod:`training.rewards`).

The student's prompts are written as a transcript in one user message rather than as
alternating chat roles: the student's own opening message would otherwise have to be an
assistant turn before any user turn, which many chat templates reject, and small models follow
"write the student's next message" more reliably than a role flip.
"""

from __future__ import annotations

import random
import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

from inference.prompts import Turn
from training.calculator import CALCULATOR_INSTRUCTION

if TYPE_CHECKING:
    from training.data.mathdial import MathDialRecord

FINAL_ANSWER_PREFIX = "Final answer:"
DONE_MARKER = "[DONE]"


@dataclass(frozen=True)
class StudentProfile:
    """A persona: who the student is, the wrong attempt they start from, and what confuses
    them (the last two may be empty for our own problems, where the logs hold no attempt)."""

    name: str
    profile: str
    incorrect_solution: str = ""
    confusion: str = ""

    @classmethod
    def from_mathdial(cls, record: MathDialRecord) -> StudentProfile:
        """The real student of a MathDial record: profile, incorrect solution, and the
        confusion the teacher described."""
        profile = record.student_profile.strip()
        name = _first_name(profile) or "Sam"
        return cls(
            name=name,
            profile=profile or f"{name} is a middle school student.",
            incorrect_solution=record.student_incorrect_solution.strip(),
            confusion=record.teacher_described_confusion.strip(),
        )

    def to_dict(self) -> dict[str, str]:
        return {
            "name": self.name,
            "profile": self.profile,
            "incorrect_solution": self.incorrect_solution,
            "confusion": self.confusion,
        }

    @classmethod
    def from_dict(cls, data: dict[str, str]) -> StudentProfile:
        return cls(
            name=data["name"],
            profile=data.get("profile", ""),
            incorrect_solution=data.get("incorrect_solution", ""),
            confusion=data.get("confusion", ""),
        )


def _first_name(profile: str) -> str:
    match = re.match(r"\s*([A-Z][a-zA-Z'-]+)\b", profile)
    return match.group(1) if match else ""


GENERIC_PERSONAS: tuple[StudentProfile, ...] = (
    StudentProfile(
        name="Alex",
        profile=(
            "Alex is a 7th grade student who rushes through word problems, often uses the "
            "first numbers they see, and forgets to check whether the answer makes sense."
        ),
        confusion="Tends to pick the wrong operation when a problem has several steps.",
    ),
    StudentProfile(
        name="Priya",
        profile=(
            "Priya is an 8th grade student who is careful with arithmetic but unsure how to "
            "turn words into equations; she gives up quickly when she is stuck."
        ),
        confusion="Has trouble setting up the equation from the text.",
    ),
    StudentProfile(
        name="Jonas",
        profile=(
            "Jonas is a 6th grade student who is confident and talkative, mixes up fractions "
            "and percentages, and sometimes insists on his first answer."
        ),
        confusion="Confuses parts and wholes when fractions or percentages appear.",
    ),
    StudentProfile(
        name="Mei",
        profile=(
            "Mei is a quiet 7th grade student who understands the idea of a problem but "
            "makes small calculation slips, especially with decimals and negative numbers."
        ),
        confusion="Makes arithmetic slips in the last steps.",
    ),
)


def generic_persona(seed: int | str | None = None) -> StudentProfile:
    """One of :data:`GENERIC_PERSONAS`, chosen deterministically from ``seed``."""
    return random.Random(str(seed)).choice(GENERIC_PERSONAS)


STUDENT_ROLEPLAY_RULES = """\
You are role-playing a school student in a tutoring chat. Stay in character.
- You do NOT know the correct answer. You start from your own first attempt, which may be wrong.
- Answer the tutor's latest message: reply to their question, try the step they suggest, or say
  what confuses you. Show your thinking briefly, the way a student would.
- Keep each message short: one to three sentences. Never write the tutor's part.
- Do not suddenly become an expert; change your mind only when the tutor's hints convince you.
- When you are sure you have solved the problem, write your answer after "Final answer:" and
  then write [DONE]."""


def _persona_block(student: StudentProfile) -> str:
    parts = [f"## Who you are\nYour name is {student.name}. {student.profile.strip()}"]
    if student.confusion:
        parts.append(f"## What confuses you\n{student.confusion.strip()}")
    if student.incorrect_solution:
        parts.append(f"## Your first attempt at the problem\n{student.incorrect_solution.strip()}")
    return "\n\n".join(parts)


def _transcript(history: Sequence[Turn], student_name: str) -> str:
    lines = []
    for turn in history:
        text = turn.text.strip()
        if not text:
            continue
        speaker = student_name if turn.role == "student" else "Tutor"
        lines.append(f"{speaker}: {text}")
    return "\n\n".join(lines) if lines else "(no messages yet)"


def opening_message(student: StudentProfile) -> str:
    """The student's first message, which opens the dialogue (the serving chat starts with the
    student too). Templated rather than generated: it is cheap and deterministic, and a real
    MathDial student's incorrect attempt is shown as it was written."""
    if student.incorrect_solution:
        return (
            "Hi, I tried this problem but I'm not sure my answer is right. Here is what I did:\n"
            f"{student.incorrect_solution.strip()}"
        )
    return "Hi, I'm working on this problem and I'm not sure how to solve it. Can you help me?"


def build_student_messages(
    problem_text: str, student: StudentProfile, history: Sequence[Turn]
) -> list[dict[str, str]]:
    """Chat messages for the student's next turn in the dialogue (``history`` ends with the
    tutor's latest visible message)."""
    system = "\n\n".join(
        [
            STUDENT_ROLEPLAY_RULES,
            _persona_block(student),
            f"## The problem\n{problem_text.strip()}",
        ]
    )
    user = (
        f"Here is the conversation so far:\n\n{_transcript(history, student.name)}\n\n"
        f"Write {student.name}'s next message to the tutor. Write only the message itself."
    )
    return [{"role": "system", "content": system}, {"role": "user", "content": user}]


FINAL_SOLUTION_INSTRUCTION = (
    "The tutoring session is over. Now solve the problem on your own, step by step, using "
    "what you learned in the conversation. End with a last line of the form "
    "'Final answer: X', where X is just the number."
)


def build_final_solution_messages(
    problem_text: str,
    student: StudentProfile,
    history: Sequence[Turn],
    *,
    calculator: bool = False,
) -> list[dict[str, str]]:
    """Chat messages for the student's post-dialogue solution (sampled k times). With
    ``calculator`` the student is told it may write ``calc(...)``; the caller then evaluates
    the calls (:func:`training.calculator.apply_calculator`) before reading the answer."""
    instruction = FINAL_SOLUTION_INSTRUCTION
    if calculator:
        instruction = f"{instruction} {CALCULATOR_INSTRUCTION}"
    system = "\n\n".join(
        [
            f"You are {student.name}, a school student. {student.profile.strip()}",
            f"## The problem\n{problem_text.strip()}",
        ]
    )
    user = (
        f"Here is your conversation with your tutor:\n\n{_transcript(history, student.name)}"
        f"\n\n{instruction}\n\n## The problem\n{problem_text.strip()}"
    )
    return [{"role": "system", "content": system}, {"role": "user", "content": user}]


_DONE = re.compile(
    r"\[done\]|final answer\s*:|\bi(?:'m| am) done\b|\bi(?: have|'ve) (?:got|solved) it\b",
    re.IGNORECASE,
)


def student_says_done(text: str) -> bool:
    """Whether a student turn ends the dialogue (they state a final answer or say so)."""
    return bool(_DONE.search(text))


def clean_student_turn(text: str, student_name: str) -> str:
    """Trim what small models add around a role-played message: a leading "Name:" and any
    tutor lines they go on to invent."""
    text = text.strip()
    text = re.sub(rf"^\s*(?:{re.escape(student_name)}|Student)\s*:\s*", "", text, flags=re.I)
    invented = re.search(r"(?:^|\n)\s*(?:Tutor|Teacher)\s*:", text, flags=re.I)
    if invented:
        text = text[: invented.start()]
    return text.strip()


_FINAL_LINE = re.compile(r"final\s+answer\s*(?:is)?\s*[:=]?\s*(.+)", re.IGNORECASE)
_NUMBER = re.compile(r"-?\d{1,3}(?:,\d{3})+(?:\.\d+)?|-?\d+(?:\.\d+)?(?:\s*/\s*\d+)?")


def _last_boxed(text: str) -> str | None:
    """Content of the last ``\\boxed{...}`` (nested braces allowed)."""
    start = text.rfind("\\boxed{")
    if start < 0:
        return None
    depth, i = 0, start + len("\\boxed")
    for j in range(i, len(text)):
        if text[j] == "{":
            depth += 1
        elif text[j] == "}":
            depth -= 1
            if depth == 0:
                return text[i + 1 : j].strip()
    return None


def _clean_answer(answer: str) -> str:
    answer = answer.strip().replace("**", "").strip()
    answer = answer.strip("`").strip()
    boxed = _last_boxed(answer)
    if boxed is not None:
        return boxed
    return answer.rstrip(".").strip()


def extract_final_answer(text: str) -> str:
    """The answer a solution commits to: the last "Final answer:" line, else the last
    ``\\boxed{}``, else the last number; "" when there is none."""
    matches = list(_FINAL_LINE.finditer(text))
    for match in reversed(matches):
        answer = _clean_answer(match.group(1).splitlines()[0])
        if answer:
            return answer
    boxed = _last_boxed(text)
    if boxed:
        return boxed
    numbers = _NUMBER.findall(text)
    return numbers[-1].replace(" ", "") if numbers else ""
