"""Building the tutor's chat messages: the problem, its reference answer, the pedagogy
instructions of the class or assignment, and the dialogue so far."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal

TUTOR_GUIDELINES = """\
You are a patient, encouraging math tutor talking with a school student.
Your goal is that the student solves the problem themselves and understands why.
- Never state the final answer, and never do the last step of the calculation for the student,
  even if they ask for it directly. If they insist, explain kindly that working it out
  themselves is the point, and give a smaller hint instead.
- Guide with one short step at a time: ask a question, point at the relevant information,
  or check one part of their reasoning.
- When the student makes a mistake, help them find it instead of correcting it for them.
- Keep each reply short (a few sentences). Use Markdown, and LaTeX between $...$ for math.
- When the student says they have the answer, ask them to enter it in the answer box."""


HIDDEN_PLANNING = """\
## Planning (the student never sees it)
Before each reply, think privately inside <think>...</think>: what the student has understood,
where their mistake is, and which single next step to ask about. Then write your reply after
the closing </think> tag. Never put the final answer in your reply."""


@dataclass(frozen=True)
class ProblemContext:
    text: str
    final_answer: str
    solution: str = ""


@dataclass(frozen=True)
class Turn:
    role: Literal["student", "tutor"]
    text: str


def build_system_prompt(
    problem: ProblemContext, instructions: Sequence[str] = (), hidden_planning: bool = False
) -> str:
    """The tutor's system prompt. With ``hidden_planning`` the tutor is asked to plan inside
    ``<think>`` tags, which :mod:`inference.thinking` strips from what the student sees."""
    parts = [
        TUTOR_GUIDELINES,
        f"## The problem the student is working on\n{problem.text.strip()}",
    ]
    if problem.solution.strip():
        parts.append(f"## Reference solution (for you only)\n{problem.solution.strip()}")
    parts.append(f"## Final answer (for you only; never reveal it)\n{problem.final_answer.strip()}")
    cleaned = [line.strip() for line in instructions if line and line.strip()]
    if cleaned:
        listed = "\n".join(f"- {line}" for line in cleaned)
        parts.append(
            "## Instructions from the student's teacher (follow them unless they ask you to "
            f"reveal the answer)\n{listed}"
        )
    if hidden_planning:
        parts.append(HIDDEN_PLANNING)
    return "\n\n".join(parts)


def trim_history(history: Sequence[Turn], char_budget: int) -> list[Turn]:
    """Keep the newest turns whose text fits in ``char_budget`` (at least the last one)."""
    kept: list[Turn] = []
    used = 0
    for turn in reversed(history):
        if kept and used + len(turn.text) > char_budget:
            break
        kept.append(turn)
        used += len(turn.text)
    kept.reverse()
    # A chat must start with the user after the system prompt.
    while kept and kept[0].role == "tutor":
        kept.pop(0)
    return kept


def build_tutor_messages(
    problem: ProblemContext,
    history: Sequence[Turn],
    instructions: Sequence[str] = (),
    char_budget: int = 6000,
    hidden_planning: bool = False,
) -> list[dict[str, str]]:
    """OpenAI chat messages for the tutor's next turn.

    Consecutive turns by the same speaker are merged, since many chat templates require
    user and assistant turns to alternate.
    """
    messages: list[dict[str, str]] = [
        {"role": "system", "content": build_system_prompt(problem, instructions, hidden_planning)}
    ]
    for turn in trim_history(history, char_budget):
        role = "user" if turn.role == "student" else "assistant"
        text = turn.text.strip()
        if not text:
            continue
        if messages[-1]["role"] == role:
            messages[-1]["content"] += "\n\n" + text
        else:
            messages.append({"role": role, "content": text})
    return messages
