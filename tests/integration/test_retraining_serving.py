"""Which version serves whom: promotions per class and globally, rollback, the promotion gate,
and the chat recording which version wrote each tutor message."""

import pytest
from channels.db import database_sync_to_async as sync_to_async

from tests.support.retraining import GOOD, LEAKY, finished_eval, make_version
from tests.support.scripted_model_server import ScriptedModelServer
from tutor.classes.models import Assignment, Classroom
from tutor.dialogues import services as dialogue_services
from tutor.dialogues.models import Message, TutoringSession
from tutor.retraining import services
from tutor.retraining.models import ModelVersion, Promotion

pytestmark = pytest.mark.integration


@pytest.fixture
def admin(make_user):
    return make_user("root", role="admin")


@pytest.fixture
def classes(db, teacher):
    return (
        Classroom.objects.create(name="7A", teacher=teacher),
        Classroom.objects.create(name="7B", teacher=teacher),
    )


@pytest.mark.django_db
def test_base_is_served_when_nothing_is_promoted(settings, classes):
    settings.TUTOR_MODEL_NAME = "base-served-name"
    version = services.serving_version(None)
    assert (version.name, version.adapter_path) == ("base-served-name", "")
    assert services.serving_version(classes[0]) == version
    assert services.serving_version(classes[0].pk) == version
    assert ModelVersion.objects.filter(name="base-served-name").count() == 1


@pytest.mark.django_db
def test_class_promotion_beats_global_and_rollback_restores(admin, classes):
    a, b = classes
    v1, v2, v3 = (make_version(f"tutor-v{i}") for i in (1, 2, 3))
    base = services.base_version()

    services.promote(v1, admin, override=True)
    assert [services.serving_version(x) for x in (None, a, b)] == [v1, v1, v1]

    services.promote(v2, admin, [a], override=True)
    assert [services.serving_version(x) for x in (None, a, b)] == [v1, v2, v1]

    services.promote(v3, admin, override=True)  # global only: class 7A keeps its own
    assert [services.serving_version(x) for x in (None, a, b)] == [v3, v2, v3]
    for version in (v1, v2, v3, base):
        version.refresh_from_db()
    assert (v1.status, v2.status, v3.status) == ("retired", "active", "active")
    assert base.status == "retired"

    # Global rollback: v3 -> v1; again: v1 -> the base model.
    restored = services.rollback(None, admin)
    assert restored.version == v1 and restored.action == "rollback"
    assert services.serving_version(b) == v1
    assert services.rollback(None, admin) is None
    assert services.serving_version(b) == base
    assert services.serving_version(a) == v2
    with pytest.raises(services.PromotionRefused):
        services.rollback(None, admin)

    # Class rollback: 7A falls back to the global version (the base now).
    services.rollback(a, admin)
    assert services.serving_version(a) == base
    assert Promotion.objects.filter(active=True).count() == 0
    base.refresh_from_db()
    v2.refresh_from_db()
    assert (base.status, v2.status) == ("active", "retired")


@pytest.mark.django_db
def test_one_active_promotion_per_scope(admin, classes):
    v1, v2 = make_version("tutor-v1"), make_version("tutor-v2")
    services.promote(v1, admin, [classes[0]], override=True)
    services.promote(v2, admin, [classes[0]], override=True)
    services.promote(v1, admin, override=True)
    services.promote(v2, admin, override=True)
    assert Promotion.objects.filter(active=True, classroom=classes[0]).count() == 1
    assert Promotion.objects.filter(active=True, classroom__isnull=True).count() == 1
    latest = Promotion.objects.get(active=True, classroom__isnull=True)
    assert latest.previous.version == v1
    # Promoting what already serves there changes nothing (and rollback still goes to v1).
    count = Promotion.objects.count()
    services.promote(v2, admin, override=True)
    assert Promotion.objects.count() == count
    assert services.rollback(None, admin).version == v1


@pytest.mark.django_db
def test_gate_refuses_a_leakier_version_and_an_override_is_recorded(admin, classes):
    active = make_version("tutor-v1")
    finished_eval(active, GOOD)
    services.promote(active, admin)  # passes: nothing evaluated serves yet
    candidate = make_version("tutor-v2")

    with pytest.raises(services.PromotionRefused) as refused:
        services.promote(candidate, admin)
    assert "no finished evaluation" in str(refused.value)

    run = finished_eval(candidate, LEAKY)
    with pytest.raises(services.PromotionRefused) as refused:
        services.promote(candidate, admin)
    assert "leak_rate is worse beyond the confidence intervals" in str(refused.value)
    assert services.serving_version(None) == active  # nothing changed

    # For a class the gate compares with what serves that class: the same leaky verdict.
    with pytest.raises(services.PromotionRefused):
        services.promote(candidate, admin, [classes[0]])

    result = services.promote(candidate, admin, override=True)
    promotion = result.promotions[0]
    assert promotion.override is True
    assert promotion.gate["passed"] is False
    assert promotion.gate["candidate_eval"] == run.pk
    assert services.serving_version(None) == candidate

    better = make_version("tutor-v3")
    finished_eval(better, GOOD)
    result = services.promote(better, admin)  # GOOD is not worse than LEAKY
    assert result.promotions[0].override is False
    assert result.promotions[0].gate["passed"] is True


@pytest.mark.django_db
def test_new_sessions_take_the_serving_version_existing_ones_keep_theirs(
    admin, classes, make_user, problem
):
    student = make_user("stu")
    a, _ = classes
    assignment = Assignment.objects.create(classroom=a, title="Homework")
    assignment.problems.add(problem)
    before = dialogue_services.open_session_for(student, problem)
    assert before.model_name == services.base_version().name

    v1, v2 = make_version("tutor-v1"), make_version("tutor-v2")
    services.promote(v1, admin, override=True)
    services.promote(v2, admin, [a], override=True)

    # The open free-practice session is resumed with the version it began with.
    assert dialogue_services.open_session_for(student, problem) == before
    before.refresh_from_db()
    assert before.model_name == services.base_version().name
    in_class = dialogue_services.open_session_for(student, problem, assignment=assignment)
    assert in_class.model_name == "tutor-v2"
    before.status = TutoringSession.Status.CLOSED
    before.save()
    free = dialogue_services.open_session_for(student, problem)
    assert free.model_name == "tutor-v1"
    assert dialogue_services.session_model(free) == dialogue_services.ServedModel(
        "tutor-v1", v1.pk, v1.adapter_path
    )


async def receive_until(communicator, frame_type, wait=10):
    while True:
        frame = await communicator.receive_json_from(timeout=wait)
        if frame["type"] == frame_type:
            return frame


@pytest.mark.django_db(transaction=True)
async def test_the_chat_streams_from_the_session_version_and_records_it(
    connect, settings, make_user, problem, admin
):
    student = await sync_to_async(make_user)("stu")
    version = await sync_to_async(make_version)("tutor-v7")
    await sync_to_async(services.promote)(version, admin, override=True)
    session = await sync_to_async(dialogue_services.open_session_for)(student, problem)
    assert session.model_name == "tutor-v7"

    # vLLM restarted: it serves the base model only; the adapter loaded at run time is gone.
    with ScriptedModelServer(served_models={settings.TUTOR_MODEL_NAME}) as server:
        settings.TUTOR_MODEL_BASE_URL = server.base_url
        ws = await connect(session.pk, student)
        await ws.receive_json_from()
        await ws.send_json_to({"type": "message", "text": "How do I start?"})
        end = await receive_until(ws, "reply.end")
        assert end["message"]["text"] == "Good start! What is $3x$?"
        # Asked for the adapter, got 404, loaded it from the registry, asked again.
        assert [r["model"] for r in server.requests] == ["tutor-v7", "tutor-v7"]
        assert server.loads == [{"lora_name": "tutor-v7", "lora_path": version.adapter_path}]

        # A promotion now does not move this open session.
        newer = await sync_to_async(make_version)("tutor-v8")
        await sync_to_async(services.promote)(newer, admin, override=True)
        await ws.send_json_to({"type": "message", "text": "and then?"})
        await receive_until(ws, "reply.end")
        assert server.requests[-1]["model"] == "tutor-v7"
        assert len(server.loads) == 1
        await ws.disconnect()

    tutor = await sync_to_async(list)(
        Message.objects.filter(session=session, role="tutor").order_by("id")
    )
    assert [(m.model_name, m.model_version_id) for m in tutor] == [("tutor-v7", version.pk)] * 2


@pytest.mark.django_db(transaction=True)
async def test_a_session_without_a_version_takes_the_serving_one(
    connect, model_server, make_user, problem, admin
):
    student = await sync_to_async(make_user)("stu")
    session = await sync_to_async(TutoringSession.objects.create)(student=student, problem=problem)
    version = await sync_to_async(make_version)("tutor-v2", adapter_path="")
    await sync_to_async(services.promote)(version, admin, override=True)
    ws = await connect(session.pk, student)
    await ws.receive_json_from()
    await ws.send_json_to({"type": "message", "text": "hi"})
    await receive_until(ws, "reply.end")
    await ws.disconnect()
    assert model_server.requests[-1]["model"] == "tutor-v2"
    await sync_to_async(session.refresh_from_db)()
    assert session.model_name == "tutor-v2"
    message = await sync_to_async(Message.objects.get)(session=session, role="tutor")
    assert message.model_version_id == version.pk


@pytest.mark.django_db(transaction=True)
async def test_an_adapter_vllm_cannot_load_is_reported_as_unavailable(
    connect, settings, make_user, problem, admin
):
    student = await sync_to_async(make_user)("stu")
    version = await sync_to_async(make_version)("tutor-v5")
    await sync_to_async(services.promote)(version, admin, override=True)
    session = await sync_to_async(dialogue_services.open_session_for)(student, problem)
    with ScriptedModelServer(served_models={settings.TUTOR_MODEL_NAME}) as server:
        # A server started without runtime LoRA loading has no load endpoint.
        server.load_error = (404, {"detail": "Not Found"})
        settings.TUTOR_MODEL_BASE_URL = server.base_url
        ws = await connect(session.pk, student)
        await ws.receive_json_from()
        await ws.send_json_to({"type": "message", "text": "hello"})
        error = await receive_until(ws, "error")
        assert error["code"] == "model_unavailable"
        assert "not available" in error["detail"]
        await receive_until(ws, "reply.end")
        await ws.disconnect()
        assert len(server.loads) == 1 and len(server.requests) == 1  # no retry loop
    stored = await sync_to_async(list)(Message.objects.filter(session=session).values_list("role"))
    assert stored == [("student",)]
