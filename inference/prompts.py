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


# The largest share of the character budget (see build_tutor_messages) that the teacher's
# instructions may take; the rest of the budget goes to the dialogue history.
INSTRUCTIONS_SHARE = 0.25
INSTRUCTIONS_CUT_NOTE = (
    "(The teacher's instructions were longer than the tutor reads; the rest was left out.)"
)


@dataclass(frozen=True)
class ProblemContext:
    text: str
    final_answer: str
    solution: str = ""


@dataclass(frozen=True)
class Turn:
    role: Literal["student", "tutor"]
    text: str


def clean_instructions(instructions: Sequence[str]) -> list[str]:
    """One instruction per non-blank line, stripped (a text with several lines gives several)."""
    return [
        line.strip() for text in instructions if text for line in text.splitlines() if line.strip()
    ]


def fit_instructions(instructions: Sequence[str], char_limit: int) -> tuple[list[str], bool]:
    """The instructions, in order, that fit in ``char_limit`` characters (each counted with a
    line break), and whether any were cut. The instruction that crosses the limit is cut at a
    word boundary; what follows it is left out."""
    kept: list[str] = []
    used = 0
    for line in clean_instructions(instructions):
        room = char_limit - used
        if len(line) + 1 <= room:
            kept.append(line)
            used += len(line) + 1
            continue
        head = line[: max(room - 2, 0)]
        if " " in head:
            head = head.rsplit(" ", 1)[0]
        head = head.rstrip()
        if len(head) >= 10:  # a shorter stub says nothing
            kept.append(head + "…")
        return kept, True
    return kept, False


def build_system_prompt(
    problem: ProblemContext,
    instructions: Sequence[str] = (),
    hidden_planning: bool = False,
    instructions_char_limit: int | None = None,
) -> str:
    """The tutor's system prompt. With ``hidden_planning`` the tutor is asked to plan inside
    ``<think>`` tags, which :mod:`inference.thinking` strips from what the student sees. With
    ``instructions_char_limit`` the teacher's instructions are cut to that many characters,
    with a note saying so."""
    parts = [
        TUTOR_GUIDELINES,
        f"## The problem the student is working on\n{problem.text.strip()}",
    ]
    if problem.solution.strip():
        parts.append(f"## Reference solution (for you only)\n{problem.solution.strip()}")
    parts.append(f"## Final answer (for you only; never reveal it)\n{problem.final_answer.strip()}")
    if instructions_char_limit is None:
        cleaned, cut = clean_instructions(instructions), False
    else:
        cleaned, cut = fit_instructions(instructions, instructions_char_limit)
    if cleaned or cut:
        listed = "\n".join(f"- {line}" for line in cleaned)
        if cut:
            listed = f"{listed}\n{INSTRUCTIONS_CUT_NOTE}".lstrip("\n")
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
    instructions_share: float = INSTRUCTIONS_SHARE,
) -> list[dict[str, str]]:
    """OpenAI chat messages for the tutor's next turn.

    ``char_budget`` bounds what varies from turn to turn and class to class: the teacher's
    instructions take at most ``instructions_share`` of it (cut past that, with a note), the
    dialogue history the rest (newest turns kept). Consecutive turns by the same speaker are
    merged, since many chat templates require user and assistant turns to alternate.
    """
    if not 0 <= instructions_share <= 1:
        raise ValueError(f"instructions_share must be between 0 and 1, not {instructions_share}")
    instructions_limit = int(char_budget * instructions_share)
    kept, _ = fit_instructions(instructions, instructions_limit)
    history_budget = char_budget - sum(len(line) + 1 for line in kept)
    system = build_system_prompt(problem, instructions, hidden_planning, instructions_limit)
    messages: list[dict[str, str]] = [{"role": "system", "content": system}]
    for turn in trim_history(history, history_budget):
        role = "user" if turn.role == "student" else "assistant"
        text = turn.text.strip()
        if not text:
            continue
        if messages[-1]["role"] == role:
            messages[-1]["content"] += "\n\n" + text
        else:
            messages.append({"role": role, "content": text})
    return messages
