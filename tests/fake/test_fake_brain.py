"""The pure parts of the fakes: generation, schema values, prompt-cache rules, fault plans."""

from __future__ import annotations

import random
from enum import StrEnum
from typing import Any

import orjson
import pytest
from pydantic import BaseModel, Field

from thrifty.fake.brain import Prompt, ToolSpec, split_words, think
from thrifty.fake.faults import ALL_FAULTS, FaultPlan, UnknownFault
from thrifty.fake.schema_values import sample_value
from thrifty.fake.usage import PromptCache, Segment

WEATHER = ToolSpec(
    "get_weather",
    {
        "type": "object",
        "properties": {
            "city": {"type": "string"},
            "unit": {"type": "string", "enum": ["celsius", "fahrenheit"]},
            "days": {"type": "integer", "minimum": 1, "maximum": 7},
        },
        "required": ["city", "unit", "days"],
    },
)
CLOCK = ToolSpec("get_time", {"type": "object", "properties": {"tz": {"type": "string"}},
                              "required": ["tz"]})


def ask(text: str, model: str = "gpt-4o", **kw: Any) -> Prompt:
    return Prompt(model=model, turns=(("user", text),), **kw)


def test_reply_is_a_function_of_seed_model_and_prompt() -> None:
    a = think(ask("hello there"), seed=1)
    assert think(ask("hello there"), seed=1) == a
    assert think(ask("hello there"), seed=2).text != a.text
    assert think(ask("hello there", model="gpt-4o-mini"), seed=1).text != a.text
    assert think(ask("hello again"), seed=1).text != a.text


def test_filler_length_and_token_count() -> None:
    for i in range(30):
        reply = think(ask(f"question {i}"), seed=0)
        words = reply.text.split()
        assert 20 <= len(words) <= 80
        assert reply.content_tokens == len(words)
        assert reply.finish == "stop"
        assert reply.text.endswith(".")


def test_echo_is_exact() -> None:
    reply = think(ask("echo:   Hello,  World! \n"), seed=3)
    assert reply.text == "Hello,  World!"
    assert "".join(reply.pieces) == reply.text
    assert reply.content_tokens == 2


def test_max_tokens_truncates_and_reports_length() -> None:
    reply = think(ask("echo: one two three four five", max_tokens=3), seed=0)
    assert (reply.text, reply.finish, reply.content_tokens) == ("one two three", "length", 3)


def test_stop_sequence_cuts_at_the_earliest_match() -> None:
    reply = think(ask("echo: alpha END beta STOP gamma", stop=("STOP", "END")), seed=0)
    assert reply.text == "alpha "
    assert (reply.finish, reply.stop_sequence) == ("stop_sequence", "END")


def test_chunks_join_back_to_the_text() -> None:
    reply = think(ask("a long question"), seed=5)
    chunks = reply.chunks(4)
    assert "".join(text for text, _ in chunks) == reply.text
    assert sum(n for _, n in chunks) == reply.content_tokens
    assert split_words("  a b  ") == ["  a", " b  "]


def test_auto_tool_choice_calls_the_first_tool_with_valid_arguments() -> None:
    reply = think(ask("weather in paris?", tools=(WEATHER, CLOCK)), seed=0)
    assert reply.finish == "tool_calls"
    assert [c.name for c in reply.tool_calls] == ["get_weather"]
    args = reply.tool_calls[0].arguments
    assert isinstance(args["city"], str)
    assert args["unit"] in ("celsius", "fahrenheit")
    assert isinstance(args["days"], int) and 1 <= args["days"] <= 7


def test_parallel_tool_calls_need_the_word_the_tools_and_permission() -> None:
    both = think(ask("do these in parallel", tools=(WEATHER, CLOCK)), seed=0)
    assert [c.name for c in both.tool_calls] == ["get_weather", "get_time"]
    assert len({c.id for c in both.tool_calls}) == 2
    serial = think(ask("do these in parallel", tools=(WEATHER, CLOCK), parallel_tools=False), 0)
    assert len(serial.tool_calls) == 1
    one_tool = think(ask("do these in parallel", tools=(WEATHER,)), seed=0)
    assert len(one_tool.tool_calls) == 1


def test_tool_choice_none_forced_and_after_a_tool_result() -> None:
    assert think(ask("hi", tools=(WEATHER,), tool_choice="none"), 0).tool_calls == ()
    forced = think(ask("hi", tools=(WEATHER, CLOCK), tool_choice="get_time"), 0)
    assert [c.name for c in forced.tool_calls] == ["get_time"]
    after = Prompt(model="m", turns=(("user", "weather?"), ("assistant", "get_weather{}"),
                                     ("tool", "21 degrees, sunny")), tools=(WEATHER,))
    answer = think(after, 0)
    assert answer.tool_calls == () and "21 degrees, sunny" in answer.text
    required = Prompt(model="m", turns=after.turns, tools=(WEATHER,), tool_choice="required")
    assert think(required, 0).tool_calls


class Colour(StrEnum):
    RED = "red"
    BLUE = "blue"


class Item(BaseModel):
    name: str = Field(min_length=3, max_length=5)
    qty: int = Field(ge=2, le=4)
    price: float = Field(gt=0, lt=1)
    colour: Colour
    note: str | None = None


class Order(BaseModel):
    id: str
    items: list[Item] = Field(min_length=1, max_length=3)
    rush: bool
    tags: list[str] = []


def test_schema_values_validate_for_many_seeds() -> None:
    schema = Order.model_json_schema()
    assert "$defs" in schema  # nested models arrive as $ref, which must resolve
    for seed in range(60):
        Order.model_validate(sample_value(schema, random.Random(seed)))


def test_schema_values_understand_gemini_types_and_combinators() -> None:
    rng = random.Random(0)
    gemini = {"type": "OBJECT", "properties": {"n": {"type": "INTEGER"},
                                               "xs": {"type": "ARRAY", "minItems": "2",
                                                      "items": {"type": "NUMBER"}}},
              "required": ["n", "xs"]}
    value = sample_value(gemini, rng)
    assert isinstance(value["n"], int) and len(value["xs"]) >= 2
    assert sample_value({"anyOf": [{"type": "null"}, {"type": "boolean"}]}, rng) in (True, False)
    assert sample_value({"const": 42}, rng) == 42
    merged = sample_value({"allOf": [{"type": "object", "properties": {"a": {"type": "string"}},
                                      "required": ["a"]}]}, rng)
    assert isinstance(merged["a"], str)


def test_json_outputs() -> None:
    obj = think(ask("give json", output="json_object"), 0)
    assert isinstance(orjson.loads(obj.text), dict)
    typed = think(ask("order", output="json_schema", schema=Order.model_json_schema()), 0)
    Order.model_validate_json(typed.text)
    assert typed.content_tokens == (len(typed.text) + 3) // 4
    cut = think(ask("order", output="json_schema", schema=Order.model_json_schema(),
                    max_tokens=3), 0)
    assert cut.finish == "length" and len(cut.text) == 12


def test_a_system_turn_asking_for_json_is_obeyed() -> None:
    schema = orjson.dumps(Item.model_json_schema()).decode()
    asks = Prompt(model="m", turns=(
        ("system", f"Respond with JSON only, matching this JSON schema: {schema}"),
        ("user", "an item please")))
    Item.model_validate_json(think(asks, 0).text)
    plain = Prompt(model="m", turns=(("system", "Reply with one JSON object."), ("user", "x")))
    assert isinstance(orjson.loads(think(plain, 0).text), dict)
    mention = Prompt(model="m", turns=(("system", "You know JSON well."), ("user", "x")))
    assert not think(mention, 0).text.startswith("{")


@pytest.mark.parametrize(
    ("model", "reasons"),
    [("o3-mini", True), ("o1", True), ("openai/o4-mini", True), ("deepseek-r1", True),
     ("claude-thinking", True), ("my-reasoning-model", True), ("gpt-4o", False),
     ("gpt-4o-mini", False), ("gemini-1.5-pro-001", False), ("claude-3-opus", False)],
)
def test_reasoning_models_by_name(model: str, reasons: bool) -> None:
    assert (think(ask("hi", model=model), 0).reasoning_tokens > 0) is reasons


def test_reasoning_by_request_budget_and_opt_out() -> None:
    asked = think(ask("hi", reasoning="high"), 0)
    assert asked.reasoning_tokens > 0 and asked.thinking
    assert asked.output_tokens == asked.content_tokens + asked.reasoning_tokens
    assert think(ask("hi", model="o3-mini", reasoning="none"), 0).reasoning_tokens == 0
    assert think(ask("hi", reasoning="high", reasoning_budget=10), 0).reasoning_tokens == 10


def seg(text: str, breakpoint: bool = False) -> Segment:
    return Segment(text.encode(), (len(text) + 3) // 4, breakpoint)


def test_automatic_cache_needs_a_long_shared_prefix() -> None:
    cache = PromptCache()
    system = seg("s" * 8000)  # 2000 tokens
    first = cache.automatic([system, seg("question one")])
    assert first.cached == 0
    again = cache.automatic([system, seg("question two")])
    assert again.cached == 1920  # 2000 rounded down to a multiple of 128
    assert again.total == 2000 + 3
    assert cache.automatic([seg("t" * 8000), seg("question one")]).cached == 0
    short = PromptCache()
    short.automatic([seg("x" * 400)])
    assert short.automatic([seg("x" * 400)]).cached == 0  # under 1024 tokens


def test_explicit_cache_writes_then_reads_at_breakpoints() -> None:
    cache = PromptCache()
    prompt = [seg("s" * 8000, breakpoint=True), seg("question")]
    first = cache.explicit(prompt)
    assert (first.cached, first.cache_write) == (0, 2000)
    second = cache.explicit(prompt)
    assert (second.cached, second.cache_write) == (2000, 0)
    longer = cache.explicit([prompt[0], seg("d" * 800, breakpoint=True), seg("q")])
    assert (longer.cached, longer.cache_write) == (2000, 200)
    assert cache.explicit([seg("x" * 100, breakpoint=True)]).cache_write == 0  # too short
    cache.clear()
    assert cache.explicit(prompt).cached == 0


def test_fault_plan() -> None:
    assert FaultPlan(ALL_FAULTS, 0.0, 1).pick(None) is None
    assert FaultPlan(ALL_FAULTS, 0.0, 1).pick("Reset") == "reset"
    assert FaultPlan(ALL_FAULTS, 1.0, 1).pick("none") is None
    only = FaultPlan(["500"], 1.0, 1)
    assert {only.pick(None) for _ in range(20)} == {"500"}
    a, b = FaultPlan(ALL_FAULTS, 0.5, 9), FaultPlan(ALL_FAULTS, 0.5, 9)
    seq = [a.pick(None) for _ in range(40)]
    assert seq == [b.pick(None) for _ in range(40)]
    assert None in seq and any(seq)
    with pytest.raises(UnknownFault):
        FaultPlan(["boom"], 0.1, 0)
    with pytest.raises(UnknownFault):
        only.pick("boom")
    with pytest.raises(ValueError):
        FaultPlan(ALL_FAULTS, 1.5, 0)
