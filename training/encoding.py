"""A rolled-out dialogue as one GRPO training sequence, with a mask over the tutor's tokens.

The first tutor prompt is the prompt; the completion is the rest of the dialogue, in which only
the tutor's own tokens (and the end-of-turn token after each) are unmasked: student turns and
chat-template glue get no gradient (TRL's ``env_mask``).

Only text and a tokenizer: no torch, so this imports fast and tests without a model. The
tokenizer type comes from transformers for the type checker only.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from inference.prompts import build_tutor_messages
from training.rollout import Dialogue

if TYPE_CHECKING:
    from transformers import PreTrainedTokenizerBase

MAX_SEQUENCE_TOKENS = 2048


@dataclass
class EncodedDialogue:
    prompt_ids: list[int]
    completion_ids: list[int]
    mask: list[int]  # 1 on the tutor's own tokens, 0 on the student's and the template's

    @property
    def trained_tokens(self) -> int:
        return sum(self.mask)


def _render(tokenizer: PreTrainedTokenizerBase, messages: list[dict[str, str]]) -> str:
    text = tokenizer.apply_chat_template(messages, tokenize=False, add_generation_prompt=True)
    if not isinstance(text, str):  # tokenize=False renders text
        raise TypeError(f"the chat template rendered {type(text).__name__}, not text")
    return text


def encode_dialogue(
    tokenizer: PreTrainedTokenizerBase,
    dialogue: Dialogue,
    max_tokens: int = MAX_SEQUENCE_TOKENS,
) -> EncodedDialogue | None:
    """The dialogue as one sequence: the last tutor prompt (which holds every earlier turn as
    the tutor saw it) followed by the last raw completion and the end-of-turn token. Character
    spans of each tutor turn's content (and the end-of-turn token after it) are unmasked; the
    prompt is everything before the first tutor turn. ``None`` for a dialogue without a tutor
    turn (a failed rollout)."""
    tutor_turns = [t for t in dialogue.tutor_turns() if t.messages is not None]
    if not tutor_turns:
        return None
    eos = tokenizer.eos_token or ""
    first_prompt = _render(tokenizer, tutor_turns[0].messages or [])
    context = _render(tokenizer, tutor_turns[-1].messages or [])
    # the context holds the earlier turns as the student saw them (hidden thinking stripped)
    cursor = len(first_prompt) if context.startswith(first_prompt) else 0
    spans: list[tuple[int, int]] = []
    for turn in tutor_turns[:-1]:
        position = context.find(turn.text, cursor) if turn.text else -1
        if position < 0:
            continue
        end = position + len(turn.text)
        if eos and context.startswith(eos, end):
            end += len(eos)
        spans.append((position, end))
        cursor = end
    text = context + tutor_turns[-1].raw + eos
    spans.append((len(context), len(text)))
    start_of_completion = spans[0][0]

    encoded = tokenizer(text, add_special_tokens=False, return_offsets_mapping=True)
    ids: list[int] = encoded["input_ids"]
    offsets: list[tuple[int, int]] = encoded["offset_mapping"]
    split = next((i for i, (s, _) in enumerate(offsets) if s >= start_of_completion), len(ids))
    prompt_ids, completion_ids = ids[:split], ids[split:]
    mask = [int(e > s and any(a <= s and e <= b for a, b in spans)) for s, e in offsets[split:]]
    budget = max(max_tokens - len(prompt_ids), 1)
    completion_ids, mask = completion_ids[:budget], mask[:budget]
    if not completion_ids:
        return None
    return EncodedDialogue(prompt_ids=prompt_ids, completion_ids=completion_ids, mask=mask)


def first_prompt_ids(
    tokenizer: PreTrainedTokenizerBase, dialogue: Dialogue, hidden_planning: bool = False
) -> list[int]:
    """The token ids of the tutor's first prompt (the student's opening only): what a failed
    rollout, which has no sequence to train on, hands TRL as its prompt."""
    messages = build_tutor_messages(
        dialogue.problem.context(),
        dialogue.history()[:1],
        dialogue.problem.instructions,
        hidden_planning=hidden_planning,
    )
    return tokenizer(_render(tokenizer, messages), add_special_tokens=False)["input_ids"]
