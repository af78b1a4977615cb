import json
import random

import pytest

from training.data.mathdial import DialogueTurn, MathDialRecord
from training.data.mathtutorbench import MathTutorBenchItem
from training.reward_model import (
    PreferencePair,
    RewardModel,
    Sample,
    mathdial_pairs,
    mathtutorbench_pairs,
    normalize_history,
    problem_key,
    rated_turns,
    ratings_pairs,
    split_by_problem,
    synthetic_telling,
)
from training.reward_model.pairs import cap, split_keys
from training.reward_model.train import evaluate, main, spearman, train_reward_model

pytestmark = pytest.mark.unit


def record(qid, question, answer="10"):
    return MathDialRecord(
        qid=str(qid),
        question=question,
        solution=f"12+3=15\n15-5={answer}",
        final_answer=answer,
        turns=[
            DialogueTurn("teacher", "Hi, talk me through your solution", "generic"),
            DialogueTurn("student", "I got 4 because 12-3=9 and 9-5=4"),
            DialogueTurn("teacher", "How many spoons were used while tasting?", "probing"),
            DialogueTurn("student", "3"),
            DialogueTurn("teacher", "So should we add or subtract those 3?", "focus"),
            DialogueTurn("student", "subtract?"),
            DialogueTurn("teacher", "You need to add 3 to 12, she still has them", "telling"),
            DialogueTurn("student", "so 15 and then 10"),
            DialogueTurn("teacher", f"Yes, {answer} is right", "generic"),
        ],
    )


RECORDS = [record(i, f"Problem number {i}: Julia had some spoons...") for i in range(20)]


def test_mathdial_pairs_prefer_scaffolding_over_telling():
    pairs = mathdial_pairs(RECORDS[:1], seed=0)
    kinds = sorted(p.kind for p in pairs)
    # two scaffolding turns, each against a human telling turn and a synthetic one
    assert kinds == ["mathdial_telling"] * 2 + ["synthetic_telling"] * 2
    for pair in pairs:
        assert pair.chosen.turn in {
            "How many spoons were used while tasting?",
            "So should we add or subtract those 3?",
        }
        # same context on both sides: only the candidate turn differs
        assert pair.chosen.problem == pair.rejected.problem
        assert pair.chosen.history == pair.rejected.history
        assert pair.chosen.history[-1][0] == "student"
        if pair.kind == "mathdial_telling":
            assert pair.rejected.turn == "You need to add 3 to 12, she still has them"
        else:
            assert "10" in pair.rejected.turn
    # deterministic for a seed
    assert mathdial_pairs(RECORDS[:1], seed=0) == pairs


def test_scaffolding_turn_that_states_the_answer_is_no_positive():
    leaky = record(1, "Julia had some spoons...")
    turns = list(leaky.turns)
    turns[2] = DialogueTurn("teacher", "Is it 10, do you think?", "probing")
    pairs = mathdial_pairs([MathDialRecord(**{**leaky.__dict__, "turns": turns})])
    assert all(p.chosen.turn != "Is it 10, do you think?" for p in pairs)


def test_synthetic_telling_states_the_answer():
    rng = random.Random(0)
    for _ in range(30):
        text = synthetic_telling("2 x 4 = 8\nThen 8 + 2 = 10", "10", rng)
        assert "10" in text and "{" not in text
    socratic = "How many in all? ** 12+3=<<12+3=15>>15 in all.\nSo 15-5=<<15-5=10>>10"
    for _ in range(30):
        text = synthetic_telling(socratic, "10", rng)
        assert "<<" not in text and "**" not in text and "How many" not in text


def test_split_by_problem_has_no_overlap_and_is_seeded():
    pairs = mathdial_pairs(RECORDS)
    train, held = split_by_problem(pairs, held_out_fraction=0.25, seed=3)
    train_keys = {p.problem_key for p in train}
    held_keys = {p.problem_key for p in held}
    assert train_keys and held_keys and not train_keys & held_keys
    assert len(held_keys) == 5 and len(train) + len(held) == len(pairs)
    assert split_by_problem(pairs, 0.25, seed=3) == (train, held)
    assert split_by_problem(pairs, 0.25, seed=4) != (train, held)
    # the key ignores case and spacing, so the same problem from two sources stays together
    assert problem_key("A  b\nC") == problem_key("a b c")
    assert split_keys(["k"], 0.2) == set()


def test_mathtutorbench_pairs_skip_bridge_items_and_answer_leaks():
    history = [
        DialogueTurn("teacher", "Tell me your solution"),
        DialogueTurn("student", "I think 6"),
        DialogueTurn("teacher", "How many tires on one bicycle?"),
        DialogueTurn("student", "2"),
        DialogueTurn("teacher", "So 4 bicycles have 8 tires"),
    ]
    item = MathTutorBenchItem("Ignatius owns 4 bicycles...", "t", "2 x 4 = 8\n 8", "8", history)
    bridge = MathTutorBenchItem("", "Shapes", "N/A", "", history)
    pairs = mathtutorbench_pairs([item, bridge])
    assert [p.chosen.turn for p in pairs] == ["How many tires on one bicycle?"]
    assert "8" in pairs[0].rejected.turn


def session(problem, turns):
    messages, number = [], 0
    for role, text, ratings in turns:
        number += 1
        messages.append({"id": number, "role": role, "text": text, "ratings": ratings})
    return {"schema": "tutor.session-export.v1", "problem": {"text": problem}, "messages": messages}


def rating(score, gave_away=False, move=""):
    return {
        "rater": "r_1",
        "helpful": score,
        "no_answer_reveal": score,
        "correct": score,
        "encourages_thinking": None,
        "teacher_move": move,
        "gave_away_answer": gave_away,
    }


def test_ratings_pairs_order_by_rubric_and_punish_giveaways():
    sessions = [
        session(
            "What is 3 x 4?",
            [
                ("student", "help", []),
                ("tutor", "What does 3 x 4 mean?", [rating(5), rating(4)]),
                ("student", "3 groups of 4?", []),
                ("tutor", "Right. Now add them.", [rating(3)]),
                ("student", "ok", []),
                ("tutor", "It's 12.", [rating(5, gave_away=True)]),
            ],
        ),
        session("What is 3 x 4?", [("tutor", "Think about groups.", [rating(3.2)])]),
        session("Other problem", [("tutor", "Hi", [{"rater": "r_2", "helpful": None}])]),
    ]
    rated = rated_turns(sessions)
    utility = {r.sample.turn: r.utility for r in rated}
    assert utility["What does 3 x 4 mean?"] == pytest.approx(4.5)
    assert utility["It's 12."] == pytest.approx(0.0)  # 5 less the give-away penalty
    assert utility["Hi"] == pytest.approx(3.0)  # no rubric scores: neutral
    assert rated[1].sample.history == (
        ("student", "help"),
        ("teacher", "What does 3 x 4 mean?"),
        ("student", "3 groups of 4?"),
    )
    pairs = ratings_pairs(rated, min_margin=0.5)
    ordered = {(p.chosen.turn, p.rejected.turn): p for p in pairs}
    assert ("What does 3 x 4 mean?", "Right. Now add them.") in ordered
    assert ("What does 3 x 4 mean?", "Think about groups.") in ordered
    assert ("Right. Now add them.", "Think about groups.") not in ordered  # within the margin
    giveaway = ordered[("Right. Now add them.", "It's 12.")]
    assert giveaway.kind == "ratings_gave_away" and giveaway.weight > 1
    assert all(p.rejected.turn != "What does 3 x 4 mean?" for p in pairs)
    assert all(p.chosen.turn != "It's 12." for p in pairs)
    # pairs never cross problems
    assert all(p.chosen.problem == p.rejected.problem for p in pairs)
    assert len(ratings_pairs(rated, max_pairs_per_problem=2)) == 2


def test_spearman_and_cap():
    assert spearman([1, 2, 3], [10, 20, 30]) == pytest.approx(1.0)
    assert spearman([1, 2, 3], [3, 2, 1]) == pytest.approx(-1.0)
    assert spearman([1, 1], [1, 2]) is None
    assert cap(list(range(10)), 3, seed=1) == cap(list(range(10)), 3, seed=1)
    assert len(cap(list(range(10)), 3)) == 3 and cap([1, 2], None) == [1, 2]


def test_normalize_history_accepts_common_shapes():
    expected = (("teacher", "a"), ("student", "b"))
    assert normalize_history([("teacher", "a"), ("student", "b")]) == expected
    assert normalize_history(
        [{"role": "tutor", "text": "a"}, {"user": "Student", "text": "b"}]
    ) == (expected)
    assert normalize_history([DialogueTurn("teacher", "a"), DialogueTurn("student", "b")]) == (
        expected
    )
    assert normalize_history(None) == ()


def synthetic_pairs():
    good = [
        "what do you think the next step is ?",
        "why did you add 5 ?",
        "how many are left ?",
        "can you check your work ?",
    ]
    bad = ["the answer is 10 .", "the answer is 15 because 12 + 3 = 15 .", "so it equals 10 ."]
    pairs = []
    for index in range(12):
        problem = f"problem {index}: julia had some spoons"
        history = (("student", "i got 4"),)
        pairs.append(
            PreferencePair(
                Sample(problem, history, good[index % len(good)]),
                Sample(problem, history, bad[index % len(bad)]),
                problem_key(problem),
                "synthetic_telling",
            )
        )
    return pairs


def test_tiny_training_lowers_the_loss_and_ranks_the_pairs(tiny_encoder, tmp_path):
    pairs = synthetic_pairs()
    model = RewardModel.from_encoder(tiny_encoder, max_length=48)
    assert model.train_top_layers(-1) == sum(p.numel() for p in model.parameters())
    losses = train_reward_model(
        model, pairs, epochs=25, batch_size=6, lr=3e-3, head_lr=3e-3, progress=False
    )
    assert sum(losses[-4:]) / 4 < sum(losses[:4]) / 4 - 0.2
    metrics = evaluate(model, pairs)
    assert metrics["accuracy"] == 1.0

    # save / load round trip keeps the scores
    saved = model.save(tmp_path / "rm")
    loaded = RewardModel.load(saved)
    one = pairs[0]
    expected = model.score_batch([one.chosen, one.rejected])
    assert loaded.score(one.chosen.problem, one.chosen.history, one.chosen.turn) == pytest.approx(
        expected[0], abs=1e-5
    )
    got = loaded.score_batch([(one.rejected.problem, one.rejected.history, one.rejected.turn)])
    assert got == pytest.approx(expected[1:], abs=1e-5)
    assert json.loads((saved / "reward_model.json").read_text())["max_length"] == 48
    assert (saved / "encoder" / "model.safetensors").exists()


def test_freezing_trains_only_the_top_layers(tiny_encoder):
    model = RewardModel.from_encoder(tiny_encoder)
    head = sum(p.numel() for p in model.head.parameters())
    top = sum(p.numel() for p in model.encoder.encoder.layer[-1].parameters())
    assert model.train_top_layers(0) == head
    assert model.train_top_layers(1) == head + top
    assert not model.encoder.embeddings.word_embeddings.weight.requires_grad


def test_encode_keeps_the_turn_and_the_latest_dialogue(tiny_encoder):
    model = RewardModel.from_encoder(tiny_encoder, max_length=24)
    history = [("student", "i got 4 " * 20), ("teacher", "why did you add"), ("student", "15")]
    batch = model.encode([("problem : julia had some spoons " * 5, history, "how many are left ?")])
    ids = batch["input_ids"][0].tolist()
    text = model.tokenizer.decode(ids)
    assert len(ids) <= 24
    assert text.endswith("how many are left? [SEP]") or "how many are left ?" in text
    assert "15" in text  # the newest turn survives, the long old one is cut
    assert batch["token_type_ids"][0].tolist()[-1] == 1


def test_cli_trains_and_saves(tiny_encoder, tmp_path, capsys):
    data = tmp_path / "mathdial.jsonl"
    rows = []
    for index in range(10):
        turns = "|EOM|".join(
            [
                "Teacher: (generic)hi",
                "Student: i got 4",
                "Teacher: (probing)why did you add ?",
                "Student: 12 + 3",
                "Teacher: (telling)the answer is 10 because 15 - 5 = 10",
            ]
        )
        rows.append(
            {
                "qid": index,
                "question": f"problem {index}: julia had some spoons",
                "ground_truth": "12 + 3 = 15\n15 - 5 = 10\n 10",
                "conversation": turns,
            }
        )
    data.write_text("\n".join(json.dumps(r) for r in rows) + "\n")
    ratings = tmp_path / "export.jsonl"
    ratings.write_text(
        json.dumps(
            session(
                "problem 3: julia had some spoons",
                [("tutor", "how many are left ?", [rating(5)]), ("tutor", "10", [rating(1)])],
            )
        )
        + "\n"
    )
    out = tmp_path / "out"
    metrics = main(
        [
            "--mathdial", str(data),
            "--ratings", str(ratings),
            "--encoder", str(tiny_encoder),
            "--out", str(out),
            "--epochs", "2",
            "--batch-size", "4",
            "--max-length", "48",
            "--train-layers", "-1",
            "--held-out", "0.3",
            "--no-progress",
        ]
    )  # fmt: skip
    printed = capsys.readouterr().out
    assert "held-out pairwise accuracy" in printed
    assert 0.0 <= metrics["held_out"]["accuracy"] <= 1.0
    assert metrics["held_out_problems"] == 3
    saved = json.loads((out / "metrics.json").read_text())
    assert saved["train_pairs"] == metrics["train_pairs"] > 0
    assert RewardModel.load(out).score("problem 1", [("student", "i got 4")], "why ?") == (
        pytest.approx(RewardModel.load(out).score("problem 1", [("student", "i got 4")], "why ?"))
    )
