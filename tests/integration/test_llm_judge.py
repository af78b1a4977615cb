"""The LLM judge in the post-turn check (a fake judge server), its verdicts in review, and its
agreement with teachers, against PostgreSQL."""

import pytest
from django.test import Client
from django.urls import reverse

from tests.support.judge_server import FakeJudgeServer, verdict
from tutor.classes.models import Classroom
from tutor.dialogues import services as dialogue_services
from tutor.dialogues.models import Message, TutoringSession
from tutor.reviews import services
from tutor.reviews.models import Flag, JudgeVerdict, TurnRating

pytestmark = [pytest.mark.integration, pytest.mark.django_db(transaction=True)]


@pytest.fixture
def judge(settings):
    with FakeJudgeServer() as server:
        settings.TUTOR_JUDGE_BASE_URL = server.base_url
        settings.TUTOR_JUDGE_MODEL = "fake-judge"
        settings.TUTOR_JUDGE_TIMEOUT_SECONDS = 3.0
        yield server


@pytest.fixture
def student(make_user):
    return make_user("stu")


@pytest.fixture
def session(student, problem, teacher):
    classroom = Classroom.objects.create(name="7B", teacher=teacher)
    session = TutoringSession.objects.create(student=student, problem=problem, classroom=classroom)
    Message.objects.create(session=session, role="student", text="How do I start?")
    return session


def tutor_says(session, text: str) -> Message:
    return Message.objects.create(session=session, role="tutor", text=text)


def client_for(user) -> Client:
    client = Client()
    client.force_login(user)
    return client


def test_verdicts_are_stored_and_a_failed_leak_verdict_joins_the_rule_judges_flag(judge, session):
    judge.answers["leak"] = verdict("REJECT", "It divides 18 by 3 for the student.")
    judge.answers["pedagogy"] = verdict("REJECT", "It does the work.")
    message = tutor_says(session, "Divide 18 by 3 and you get 6.")
    assert dialogue_services.check_turn(message) is True  # the rule judge's verdict
    verdicts = {v.rule: v for v in JudgeVerdict.objects.filter(message=message)}
    assert set(verdicts) == {"leak", "pedagogy"}
    assert not verdicts["leak"].passed and verdicts["leak"].judge_model == "fake-judge"
    assert verdicts["leak"].reasons == "It divides 18 by 3 for the student."
    leak = Flag.objects.get(message=message, kind=Flag.Kind.ANSWER_LEAK)
    assert "'6'" in leak.detail and "LLM judge (fake-judge): It divides 18" in leak.detail
    style = Flag.objects.get(message=message, kind=Flag.Kind.PEDAGOGY)
    assert style.severity == Flag.Severity.LOW and "It does the work." in style.detail
    # the judge saw the dialogue before the turn and the problem
    sent = judge.requests[0]["messages"][1]["content"]
    assert "How do I start?" in sent and "3x + 7 = 25" in sent
    # checking again (a re-run task) keeps one verdict per rule and one flag per kind
    dialogue_services.check_turn(Message.objects.get(pk=message.pk))
    assert JudgeVerdict.objects.filter(message=message).count() == 2
    assert Flag.objects.filter(message=message).count() == 2
    assert Flag.objects.get(pk=leak.pk).detail.count("LLM judge") == 1


def test_the_judge_flags_a_leak_the_rule_judge_missed(judge, session):
    judge.answers["leak"] = verdict("REJECT", "It hands over every step.")
    message = tutor_says(session, "First subtract seven from both sides, then divide by three.")
    assert dialogue_services.check_turn(message) is False
    flag = Flag.objects.get(message=message)
    assert flag.kind == Flag.Kind.ANSWER_LEAK and "hands over every step" in flag.detail
    assert Message.objects.get(pk=message.pk).leaked_answer is False  # the rule verdict stays


def test_passed_verdicts_raise_no_flag(judge, session):
    message = tutor_says(session, "What could you do to both sides first?")
    assert dialogue_services.check_turn(message) is False
    assert JudgeVerdict.objects.filter(message=message, passed=True).count() == 2
    assert not Flag.objects.filter(message=message).exists()


def test_judge_off_stores_nothing(settings, session):
    settings.TUTOR_JUDGE_BASE_URL = ""
    message = tutor_says(session, "Divide 18 by 3 and you get 6.")
    assert dialogue_services.check_turn(message) is True
    assert not JudgeVerdict.objects.exists()
    assert list(Flag.objects.filter(message=message).values_list("kind", flat=True)) == [
        "answer_leak"
    ]


@pytest.mark.parametrize("failure", ["down", "nonsense", "slow"])
def test_a_failing_judge_loses_nothing(settings, judge, session, failure, caplog):
    if failure == "down":
        settings.TUTOR_JUDGE_BASE_URL = "http://127.0.0.1:9/v1"
    elif failure == "nonsense":
        judge.answers["leak"] = judge.answers["pedagogy"] = "I think it is fine!"
    else:
        judge.delay = 5.0
        settings.TUTOR_JUDGE_TIMEOUT_SECONDS = 0.5
    message = tutor_says(session, "Divide 18 by 3 and you get 6.")
    assert dialogue_services.check_turn(message) is True  # the rule judge still decides
    assert Message.objects.get(pk=message.pk).leaked_answer is True
    assert Flag.objects.filter(message=message, kind="answer_leak").exists()
    assert not JudgeVerdict.objects.exists()
    assert "gave no leak verdict" in caplog.text


def test_teachers_see_verdicts_in_review_and_students_do_not(
    judge, session, teacher, other_teacher, student
):
    judge.answers["pedagogy"] = verdict("REJECT", "Overly long <b>lecture</b>.")
    message = tutor_says(session, "What could you do to both sides first?")
    dialogue_services.check_turn(message)
    page = client_for(teacher).get(reverse("reviews:session", args=[session.pk]))
    assert page.status_code == 200
    html = page.content.decode()
    assert 'data-judge-rule="pedagogy" data-judge-passed="false"' in html
    assert "Overly long &lt;b&gt;lecture&lt;/b&gt;." in html  # escaped, never markup
    data = client_for(teacher).get(reverse("reviews:ratings", args=[session.pk])).json()
    rules = {(v["rule"], v["passed"]) for v in data["judge_verdicts"]}
    assert rules == {("leak", True), ("pedagogy", False)}
    # students: 403; a teacher of another class: 404
    for user, status in ((student, 403), (other_teacher, 404)):
        for name in ("reviews:session", "reviews:ratings"):
            response = client_for(user).get(reverse(name, args=[session.pk]))
            assert response.status_code == status
            assert b"Overly long" not in response.content
    assert not services.visible_judge_verdicts(student).exists()
    assert not services.visible_judge_verdicts(other_teacher).exists()
    assert services.visible_judge_verdicts(teacher).count() == 2


def test_agreement_with_teachers_is_cohens_kappa(session, teacher):
    turns = [tutor_says(session, f"turn {i}") for i in range(4)]
    judge_leak = [True, False, True, False]
    teacher_gave_away = [True, False, False, False]
    for message, leaked, gave_away in zip(turns, judge_leak, teacher_gave_away, strict=True):
        JudgeVerdict.objects.create(message=message, rule="leak", passed=not leaked, reasons="")
        TurnRating.objects.create(message=message, rater=teacher, gave_away_answer=gave_away)
    unrated = tutor_says(session, "not rated")
    JudgeVerdict.objects.create(message=unrated, rule="leak", passed=False, reasons="")
    result = services.judge_teacher_agreement()
    assert result["n"] == 4
    assert result["kappa"]["value"] == pytest.approx(0.5)  # p_o 0.75, p_e 0.5
    assert result["judge_leak_rate"] == 0.5 and result["teacher_leak_rate"] == 0.25
    only_two = services.judge_teacher_agreement(Message.objects.filter(pk__in=[turns[1].pk]))
    assert only_two["n"] == 1 and only_two["kappa"]["value"] is None  # undefined
