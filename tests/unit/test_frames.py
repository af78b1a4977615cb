import uuid

import pytest

from tutor.dialogues.frames import FrameError, clean_text, parse_frame, parse_student_message

pytestmark = pytest.mark.unit


@pytest.mark.parametrize(
    ("text", "binary", "code"),
    [
        ("{not json", None, "bad_json"),
        ("[1, 2]", None, "bad_frame"),
        ('{"text": "no type"}', None, "bad_frame"),
        ('{"type": 3}', None, "bad_frame"),
        (None, b"\x00\x01", "bad_frame"),
        ('{"type": "message", "text": "' + "x" * 20000 + '"}', None, "too_long"),
        ("[" * 5000, None, "bad_json"),
    ],
)
def test_bad_frames(text, binary, code):
    with pytest.raises(FrameError) as info:
        parse_frame(text, binary, max_bytes=16384)
    assert info.value.code == code
    assert info.value.as_frame()["type"] == "error"


def test_control_characters_are_removed_but_newlines_kept():
    assert clean_text("a\x00b\x07c\nd\x1b[31m", field="text", max_chars=100) == "abc\nd[31m"


def test_empty_after_cleaning_is_an_error():
    with pytest.raises(FrameError) as info:
        clean_text(" \x00\x01 ", field="text", max_chars=10)
    assert info.value.code == "empty"


def test_too_long_message_carries_its_client_id():
    cid = str(uuid.uuid4())
    with pytest.raises(FrameError) as info:
        parse_student_message({"type": "message", "text": "x" * 11, "client_id": cid}, 10)
    assert info.value.code == "too_long"
    assert info.value.as_frame()["client_id"] == cid


def test_bad_client_id_and_non_string_text():
    with pytest.raises(FrameError):
        parse_student_message({"type": "message", "text": "hi", "client_id": "nope"}, 10)
    with pytest.raises(FrameError):
        parse_student_message({"type": "message", "text": ["hi"]}, 10)
