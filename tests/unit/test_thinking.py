import pytest

from inference.thinking import ThinkStripper, split_thinking

pytestmark = pytest.mark.unit

REPLY = "<think>The answer is 6. Hint only.</think>What do you get if you subtract 7?"


def stream(chunks, **kwargs):
    stripper = ThinkStripper(**kwargs)
    visible, hidden = "", ""
    for chunk in chunks:
        out = stripper.feed(chunk)
        visible += out.visible
        hidden += out.hidden
    out = stripper.finish()
    return visible + out.visible, hidden + out.hidden


@pytest.mark.parametrize("size", [1, 2, 3, 5, 7, 100])
def test_tags_split_at_every_chunk_boundary(size):
    chunks = [REPLY[i : i + size] for i in range(0, len(REPLY), size)]
    assert stream(chunks) == ("What do you get if you subtract 7?", "The answer is 6. Hint only.")


def test_visible_text_is_not_held_back_longer_than_a_possible_tag():
    stripper = ThinkStripper()
    assert stripper.feed("Hello <").visible == "Hello "
    assert stripper.feed("b>").visible == "<b>"


def test_text_that_merely_starts_like_a_tag_is_shown():
    assert stream(["x <th", "is is fine"]) == ("x <this is fine", "")


def test_several_think_blocks_and_text_between():
    assert split_thinking("a<think>1</think>b<think>2</think>c").visible == "abc"
    assert split_thinking("a<think>1</think>b<think>2</think>c").hidden == "12"


def test_unterminated_think_stays_hidden():
    assert stream(["Hi <think>secret 6", " and more"]) == ("Hi ", "secret 6 and more")


def test_template_that_opens_think_in_the_prompt():
    assert stream(["plan: 6</thi", "nk>Try again"], starts_inside=True) == ("Try again", "plan: 6")


def test_no_tags_passes_through():
    assert stream(["plain ", "text"]) == ("plain text", "")
