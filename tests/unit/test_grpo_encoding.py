"""A dialogue becomes one GRPO sequence in which only the tutor's own tokens are trained."""

import dataclasses

import pytest
from transformers import AutoTokenizer

from inference.models import default_model_dir
from inference.prompts import build_tutor_messages
from training.encoding import encode_dialogue, first_prompt_ids
from training.grpo import final_metrics
from training.grpo_rollouts import pedagogy_reward
from training.rollout import Dialogue, DialogueTurn, EndpointConfig, RolloutProblem
from training.simulated_student import StudentProfile

pytestmark = pytest.mark.unit

PROBLEM = RolloutProblem(
    problem_id="p1", text="Tom has 3 bags of 4 apples. How many apples?", final_answer="12"
)
STUDENT = StudentProfile(name="Sam", profile="Sam is in 6th grade.")
ENDPOINT = EndpointConfig(base_url="http://x/v1", model="m")


@pytest.fixture(scope="module")
def tokenizer():
    return AutoTokenizer.from_pretrained(default_model_dir())


def tutor_turn(dialogue: Dialogue, raw: str, visible: str) -> DialogueTurn:
    messages = build_tutor_messages(PROBLEM.context(), dialogue.history())
    return DialogueTurn(role="tutor", text=visible, raw=raw, messages=messages)


def tokens_where(tokenizer, encoded, flag: int) -> str:
    pairs = zip(encoded.completion_ids, encoded.mask, strict=True)
    return tokenizer.decode([token for token, mask in pairs if mask == flag])


def make_dialogue() -> Dialogue:
    d = Dialogue(problem=PROBLEM, student=STUDENT, tutor=ENDPOINT, student_model=ENDPOINT)
    d.turns.append(DialogueTurn(role="student", text="I think it is 7?", generated=False))
    d.turns.append(tutor_turn(d, "<think>they added</think>How many bags?", "How many bags?"))
    d.turns.append(DialogueTurn(role="student", text="There are 3 bags, each with 4."))
    d.turns.append(tutor_turn(d, "Good. What is 3 groups of 4?", "Good. What is 3 groups of 4?"))
    return d


def test_only_tutor_tokens_are_trained_and_student_turns_are_context(tokenizer):
    encoded = encode_dialogue(tokenizer, make_dialogue())
    assert encoded is not None
    assert len(encoded.completion_ids) == len(encoded.mask)
    trained = tokens_where(tokenizer, encoded, 1)
    masked = tokens_where(tokenizer, encoded, 0)
    eos = tokenizer.eos_token
    # earlier turns as the student saw them; the last one raw, hidden thinking included
    assert trained == f"How many bags?{eos}Good. What is 3 groups of 4?{eos}"
    assert "There are 3 bags, each with 4." in masked
    assert "How many bags" not in masked
    prompt = tokenizer.decode(encoded.prompt_ids)
    assert prompt.endswith("<|im_start|>assistant\n")
    assert "I think it is 7?" in prompt and "How many bags" not in prompt


def test_last_turn_keeps_hidden_thinking(tokenizer):
    d = Dialogue(problem=PROBLEM, student=STUDENT, tutor=ENDPOINT, student_model=ENDPOINT)
    d.turns.append(DialogueTurn(role="student", text="help", generated=False))
    d.turns.append(tutor_turn(d, "<think>plan: ask</think>What do you know?", "What do you know?"))
    encoded = encode_dialogue(tokenizer, d)
    trained = tokens_where(tokenizer, encoded, 1)
    assert trained.startswith("<think>plan: ask</think>What do you know?")


def test_a_dialogue_without_tutor_turns_is_not_encoded(tokenizer):
    d = Dialogue(problem=PROBLEM, student=STUDENT, tutor=ENDPOINT, student_model=ENDPOINT)
    d.turns.append(DialogueTurn(role="student", text="help", generated=False))
    assert encode_dialogue(tokenizer, d) is None


def test_the_first_prompt_of_a_dialogue_is_the_prompt_of_its_sequence(tokenizer):
    # what a failed rollout hands TRL as its prompt, with no completion to train on
    dialogue = make_dialogue()
    encoded = encode_dialogue(tokenizer, dialogue)
    assert first_prompt_ids(tokenizer, dialogue) == encoded.prompt_ids
    planned = tokenizer.decode(first_prompt_ids(tokenizer, dialogue, hidden_planning=True))
    assert planned != tokenizer.decode(encoded.prompt_ids) and "I think it is 7?" in planned


def test_long_dialogues_are_cut_to_the_token_budget(tokenizer):
    whole = encode_dialogue(tokenizer, make_dialogue())
    budget = len(whole.prompt_ids) + 5
    encoded = encode_dialogue(tokenizer, make_dialogue(), max_tokens=budget)
    assert encoded.prompt_ids == whole.prompt_ids
    assert encoded.completion_ids == whole.completion_ids[:5]
    assert encoded.mask == whole.mask[:5]


def test_reward_function_hands_back_the_rollout_reward():
    assert pedagogy_reward(["a", "b"], ["x", "y"], pedagogy_reward=[1, -0.5]) == [1.0, -0.5]


def test_final_metrics_compare_first_and_last_steps():
    history = [
        {"reward_mean": -1.0, "leak_rate": 1.0, "dialogues_per_min": 10.0},
        {"reward_mean": 0.0, "leak_rate": 0.5, "dialogues_per_min": 20.0},
        {"reward_mean": 0.5, "leak_rate": 0.0, "dialogues_per_min": 30.0},
    ]
    metrics = final_metrics(history, tail=1)
    assert metrics["reward_mean_first"] == -1.0 and metrics["reward_mean_last"] == 0.5
    assert metrics["leak_rate_first"] == 1.0 and metrics["leak_rate_last"] == 0.0
    assert metrics["dialogues_per_min_mean"] == 20.0
    assert final_metrics([]) == {}


# ---- the rollout function TRL calls ------------------------------------------------------------


class FakePublisher:
    current = "job-x-step0"


class ScriptedChat:
    """Tutor replies by model call order: the first rollout of each group leaks, the other asks;
    the student always answers 12 at the end."""

    def __init__(self, fail: bool = False):
        self.fail = fail
        self.tutor_calls = 0

    async def __call__(self, endpoint, messages, *, seed, n=1, max_tokens=None, extra_body=None):
        from training.rollout import Completion

        if self.fail:
            raise ConnectionError("server down")
        if endpoint.model == FakePublisher.current:
            self.tutor_calls += 1
            leak = "The answer is 12." if self.tutor_calls % 2 else "How many bags are there?"
            return [Completion(text=leak)]
        if "Final answer" in messages[0]["content"] or "final" in messages[-1]["content"].lower():
            return [Completion(text="Final answer: 12") for _ in range(n)]
        return [Completion(text="I am not sure.")]


def rollouts_for(tokenizer, chat, **overrides):
    from training.curriculum import SelfEvolvingCurriculum
    from training.grpo_rollouts import TutorRollouts
    from training.jobs import TrainJobConfig

    config = TrainJobConfig(
        group_size=2, problems_per_step=2, max_turns=1, k=1, concurrency=1, **overrides
    )
    algebra = dataclasses.replace(PROBLEM, problem_id="p2", category="algebra")
    problems = {"general": [PROBLEM], "algebra": [algebra]}  # as Dataset.by_category gives
    curriculum = SelfEvolvingCurriculum(sorted(problems), seed=0)
    return TutorRollouts(
        config, tokenizer, problems, curriculum, FakePublisher(), log=lambda _: None, chat=chat
    )


class FakeTrainer:
    class state:
        global_step = 0


def test_rollouts_give_trl_masked_sequences_and_rewards_per_group(tokenizer):
    # Without the guard: its retries would take turns of the scripted alternation.
    rollouts = rollouts_for(tokenizer, ScriptedChat(), lambda_=1.0, guard_retries=None)
    out = rollouts(["slot 0"] * 2 + ["slot 1"] * 2, FakeTrainer())
    assert len(out["prompt_ids"]) == len(out["completion_ids"]) == len(out["env_mask"]) == 4
    for ids, mask in zip(out["completion_ids"], out["env_mask"], strict=True):
        assert len(ids) == len(mask) and sum(mask) > 0
    # hard variant: a leak costs lambda whatever the student then solves
    assert sorted(out["pedagogy_reward"]) == [-1.0, -1.0, 1.0, 1.0]
    assert out["logprobs"] is None
    metrics = rollouts.last.metrics
    assert metrics["leak_rate"] == 0.5 and metrics["rollouts"] == 4.0
    # the curriculum saw advantages for the categories it drew
    assert sum(rollouts.curriculum.counts.values()) >= 1


class LeakThenAsk:
    """A tutor that states the answer on its first attempt at a turn and asks once corrected."""

    def __init__(self):
        self.corrected = 0

    async def __call__(self, endpoint, messages, *, seed, n=1, max_tokens=None, extra_body=None):
        from training.rollout import Completion

        if endpoint.model == FakePublisher.current:
            if "Correction" in messages[0]["content"]:
                self.corrected += 1
                return [Completion(text=" how many bags are there?")]
            return [Completion(text="The answer is 12.")]
        return [Completion(text="Final answer: 12") for _ in range(n)]


def test_guarded_rollouts_show_the_student_no_leak_yet_penalise_it(tokenizer):
    chat = LeakThenAsk()
    rollouts = rollouts_for(tokenizer, chat, lambda_=1.0, guard_retries=2)
    out = rollouts(["slot 0"] * 2 + ["slot 1"] * 2, FakeTrainer())
    dialogues = rollouts.last.dialogues
    assert chat.corrected == 4
    for dialogue in dialogues:
        (turn,) = dialogue.tutor_turns()
        assert "12" not in turn.text and turn.text.endswith("how many bags are there?")
        assert turn.raw == "The answer is 12." and turn.model_leaked
        assert turn.guard == "retried" and turn.blocked == ["answer_leak"]
    # The trained sample is the model's own leak: penalised although no student saw it.
    assert out["pedagogy_reward"] == [-1.0] * 4


def test_rollouts_refuse_groups_that_do_not_divide_and_a_dead_server(tokenizer):
    rollouts = rollouts_for(tokenizer, ScriptedChat())
    with pytest.raises(ValueError, match="groups of 2"):
        rollouts(["slot"] * 3, FakeTrainer())
    dead = rollouts_for(tokenizer, ScriptedChat(fail=True))
    with pytest.raises(RuntimeError, match="every rollout failed"):
        dead(["slot"] * 4, FakeTrainer())


def test_callback_reports_each_step_once_with_the_trainers_figures(tmp_path):
    from types import SimpleNamespace

    from training.curriculum import SelfEvolvingCurriculum
    from training.grpo import JobCallback, load_state
    from training.grpo_rollouts import StepRecord
    from training.jobs import TrainJobConfig

    class Publisher:
        published: list[int] = []

        def publish(self, model, step, accelerator=None):
            self.published.append(step)

    rollouts = SimpleNamespace(
        last=StepRecord(metrics={"reward_mean": 0.5, "rollout_s": 0.0}),
        curriculum=SelfEvolvingCurriculum(["general"]),
    )
    reports, stop = [], {"now": False}
    history: list[dict] = []
    callback = JobCallback(
        TrainJobConfig(steps=3), rollouts, Publisher(), history, reports.append,
        lambda: stop["now"], lambda _line: None,
    )  # fmt: skip
    args = SimpleNamespace(output_dir=str(tmp_path), process_index=0)
    control = SimpleNamespace(should_save=False, should_training_stop=False)
    callback.on_train_begin(args, SimpleNamespace(global_step=0), control)
    for step in (1, 2, 3):
        state = SimpleNamespace(global_step=step, max_steps=3)
        stop["now"] = step == 3
        callback.on_step_end(args, state, control)
        callback.on_log(args, state, control, logs={"kl": 0.01 * step, "loss": 0.1})
        if step == 2:  # a checkpoint step
            (tmp_path / "checkpoint-2").mkdir()
            callback.on_save(args, state, control)
    callback.on_train_end(args, state, control)
    assert [h["step"] for h in history] == [1.0, 2.0, 3.0]
    assert [h["kl"] for h in history] == [0.01, 0.02, 0.03]
    assert [r.message for r in reports] == [
        "training", "training", "checkpoint saved", "cancelling"
    ]  # fmt: skip
    assert reports[2].checkpoint == str(tmp_path / "checkpoint-2")
    assert load_state(tmp_path / "checkpoint-2")["history"] == history[:2]
    # published at the start and after every step but the cancelled one, which saves instead
    assert Publisher.published == [0, 1, 2]
    assert callback.cancelled and control.should_save and control.should_training_stop
