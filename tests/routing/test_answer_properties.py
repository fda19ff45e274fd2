"""Property tests: canonical, agree and final_answer never raise, on any text."""

from hypothesis import given, settings
from hypothesis import strategies as st

from thrifty.routing.answer import agree, canonical, final_answer

# Text biased towards the characters the parsers care about, plus anything at all.
_MATHY = st.text(alphabet="0123456789.,-+*/^()[]{}$%\\'\" xyzfracsqrtbox=#:\n", max_size=80)
_TEXT = st.one_of(st.text(max_size=200), _MATHY)


@settings(max_examples=400, deadline=None)
@given(_TEXT)
def test_canonical_never_raises_and_is_idempotent_on_empty(text: str) -> None:
    out = canonical(text)
    assert isinstance(out, str)
    if not text.strip():
        assert out == ""


@settings(max_examples=300, deadline=None)
@given(_TEXT, _TEXT)
def test_agree_never_raises_and_is_symmetric(a: str, b: str) -> None:
    assert agree(a, b) == agree(b, a)


@settings(max_examples=300, deadline=None)
@given(_TEXT)
def test_agree_is_reflexive_for_non_empty_answers(a: str) -> None:
    assert agree(a, a) == (canonical(a) != "")


@settings(max_examples=300, deadline=None)
@given(_TEXT)
def test_final_answer_never_raises(text: str) -> None:
    out = final_answer(text)
    assert out is None or (isinstance(out, str) and out.strip() == out and out)
