"""Claude's requests follow each model's rules (issue 9): the capability table, config errors
at load time naming the field, requests the fake (which refuses what the API refuses) accepts
for every model the installed SDK names, and what a task cost priced by each model's rates."""

from __future__ import annotations

import logging
import typing
from pathlib import Path
from typing import Any

import anthropic
import msgspec
import pytest
from anthropic.types.model_param import ModelParam

from reverie.agents.claude.client import (
    DEFAULT_PRICES,
    Claude,
    ClaudeOptions,
    cost_of,
    price_of,
)
from reverie.agents.claude.critic import VERDICT_TOOL
from reverie.agents.claude.critic import build_request as critic_request
from reverie.agents.claude.models import MODEL_RULES, rules_for
from reverie.agents.claude.reasoner import build_request as reasoner_request
from reverie.protocol import Candidate, Result, ResultStatus, Task, Usage
from reverie.runtime import ConfigError
from reverie.runtime.cli.render import format_result

from .conftest import make_config
from .fakes.messages_api import MODEL_RULES as FAKE_RULES
from .fakes.messages_api import FakeAnthropic, Reply

KEY = "sk-ant-test-key"
SDK_MODELS = [m for m in typing.get_args(typing.get_args(ModelParam)[0]) if m[-8:].isdigit() is False]
"""Every model id the installed SDK names (dated snapshots resolve to these)."""


def test_every_model_the_sdk_names_has_rules_and_a_price_or_says_it_has_none(caplog: pytest.LogCaptureFixture) -> None:
    assert "claude-sonnet-5-5" in SDK_MODELS and len(SDK_MODELS) >= 15
    with caplog.at_level(logging.WARNING, "reverie.claude"):
        for model in SDK_MODELS:
            assert rules_for(model) is MODEL_RULES[model]
    assert not caplog.records  # no model of the SDK falls back to the unknown-model rules
    unpriced = [m for m in SDK_MODELS if price_of(ClaudeOptions(model=m)) is None]
    assert unpriced == ["claude-mythos-preview"]  # no public price: reported as such, not as $0
    assert rules_for("claude-haiku-4-5-20251001") is MODEL_RULES["claude-haiku-4-5"]
    assert rules_for("claude-opus-5-20260701") is MODEL_RULES["claude-opus-5"]  # not claude-opus-5-5's


@pytest.mark.parametrize("model", sorted(MODEL_RULES))
def test_our_table_and_the_fakes_reading_of_the_docs_agree(model: str) -> None:
    """Two readings of the docs, written apart: where the docs are silent we may be stricter
    (send fewer thinking types or efforts) than the fake, never looser."""
    ours, fake = MODEL_RULES[model], FAKE_RULES[model]
    assert ours.forced_tool_choice == fake.forced_tool, "forced tool choice"
    assert set(ours.thinking) <= set(fake.thinking), "thinking types"
    assert ours.thinks_by_default == fake.thinks_by_default, "thinking by default"
    assert ours.sampling == fake.sampling, "sampling parameters"
    assert ours.min_cache_tokens == fake.min_cache, "minimum cacheable prefix"
    assert set(ours.efforts) <= set(fake.efforts), "effort values"


def test_cache_reads_are_priced_by_each_models_own_rate() -> None:
    read_only = msgspec.convert({"input_tokens": 0, "output_tokens": 0, "cache_read_input_tokens": 1_000_000},
                                _Tokens)
    for model, per_million in {"claude-opus-5-5": 0.20, "claude-fable-5-1": 0.25, "claude-sonnet-5-5": 0.10,
                               "claude-opus-5": 0.50, "claude-haiku-4-5": 0.10}.items():
        assert cost_of(read_only, DEFAULT_PRICES[model], batched=False) == pytest.approx(per_million), model
    # Haiku 5.5 is priced by prompt length: past 100,000 prompt tokens every rate is 5x
    short = msgspec.convert({"input_tokens": 100_000, "output_tokens": 1_000}, _Tokens)
    long = msgspec.convert({"input_tokens": 100_001, "output_tokens": 1_000}, _Tokens)
    haiku = DEFAULT_PRICES["claude-haiku-5-5"]
    assert cost_of(short, haiku, batched=False) == pytest.approx(0.0105)
    assert cost_of(long, haiku, batched=False) == pytest.approx(5 * (100_001 * 0.10 + 1_000 * 0.50) / 1e6)
    assert cost_of(short, haiku, batched=True) == pytest.approx(0.0105 / 2)


class _Tokens(msgspec.Struct):
    input_tokens: int
    output_tokens: int
    cache_creation_input_tokens: int = 0
    cache_read_input_tokens: int = 0


def test_a_model_without_a_price_says_so_in_the_result() -> None:
    usage = Usage(input_tokens=10, output_tokens=5, requests=1, cost_usd=0.0, unpriced=("claude-mythos-preview",))
    result = Result(task_id="t", status=ResultStatus.EXHAUSTED, agent="dreamer", usage=usage,
                    usage_by_agent={"dreamer": usage})
    assert "not counting claude-mythos-preview: no price" in format_result(result)


# ------------------------------------------------------------------ config errors at load time


def dreamer(options: str, tmp_path: Path) -> None:
    make_config("nats://127.0.0.1:4222", tmp_path / "d", agents=f"""
[[agents]]
name = "dreamer"
kind = "dreamer"
[agents.options]
reasoner = "anthropic"
[agents.options.reasoner_options]
api_key_env = "REVERIE_TEST_ANTHROPIC_KEY"
{options}
""")


@pytest.mark.parametrize(("options", "field", "says"), [
    pytest.param('model = "claude-opus-5-5"\nthinking = "enabled"', "reasoner_options.thinking",
                 'does not accept thinking = "enabled"', id="enabled-on-an-always-adaptive-model"),
    pytest.param('thinking = "enabled"', "reasoner_options.thinking", "claude-sonnet-5-5", id="enabled-on-sonnet-5-5"),
    pytest.param("temperature = 0.7", "reasoner_options.temperature", "takes no sampling parameters",
                 id="temperature"),
    pytest.param("refine_temperature = 0.2", "reasoner_options.refine_temperature", "sampling", id="refine-temp"),
    pytest.param('model = "claude-sonnet-4-6"\nthinking = "enabled"\nthinking_budget = 2048\nmax_tokens = 8192\n'
                 'refine_max_tokens = 2048', "reasoner_options.refine_max_tokens", "above thinking_budget",
                 id="refine-max-tokens-at-the-budget"),
    pytest.param('model = "claude-haiku-4-5"\neffort = "low"', "reasoner_options.effort", "takes no effort",
                 id="effort-where-there-is-none"),
    pytest.param('model = "claude-opus-4-6"\nrefine_effort = "xhigh"', "reasoner_options.refine_effort",
                 "not xhigh", id="an-effort-the-model-lacks"),
    pytest.param('effort = "max"', "reasoner_options.effort", "thinking on at effort max",
                 id="thinking-off-at-max-effort"),
])
def test_what_the_model_would_refuse_is_a_config_error_naming_the_field(
        monkeypatch: pytest.MonkeyPatch, tmp_path: Path, options: str, field: str, says: str) -> None:
    monkeypatch.setenv("REVERIE_TEST_ANTHROPIC_KEY", KEY)
    with pytest.raises(ConfigError) as err:
        dreamer(options, tmp_path)
    assert f"$.agents[0].options.{field}" in str(err.value) and says in str(err.value), str(err.value)


def test_thinking_off_on_a_model_that_always_thinks_is_said_once(monkeypatch: pytest.MonkeyPatch, tmp_path: Path,
                                                                  caplog: pytest.LogCaptureFixture) -> None:
    monkeypatch.setenv("REVERIE_TEST_ANTHROPIC_KEY", KEY)
    with caplog.at_level(logging.WARNING, "reverie.claude"):
        dreamer('model = "claude-fable-5-1"', tmp_path)
        dreamer('model = "claude-fable-5-1"', tmp_path)
    said = [r.getMessage() for r in caplog.records if "always thinks" in r.getMessage()]
    assert said == ['thinking = "off": claude-fable-5-1 always thinks (adaptive) and cannot turn it off; '
                    'effort = "low" keeps it short']


# ------------------------------------------------------------------ requests the API accepts


TASK = Task(id="t1", kind="plan", input={"start": "a", "goal": "b", "operations": []})
CAND = Candidate(id="c1", task=TASK, round=1, index=0, steps=("x",), text="x")


def sent_thinking(model: str, thinking: str) -> Any:
    return Claude(ClaudeOptions(model=model, thinking=thinking), api_key=KEY).thinking()  # type: ignore[arg-type]


@pytest.mark.filterwarnings("ignore:The model .* is deprecated:DeprecationWarning")  # the SDK's, for old models
@pytest.mark.parametrize("model", SDK_MODELS)
async def test_every_request_we_build_is_one_the_api_accepts_for_every_model(model: str) -> None:
    """The critic's verdict call, the reasoner's round (first and refining) and `thinking = off`
    and `adaptive` where the model takes them: all accepted by the fake, which enforces the
    documented per-model rules (forced tool choice, thinking types, sampling, effort)."""
    with FakeAnthropic(api_key=KEY) as fake:
        fake.responder = lambda body: Reply.tool("verdict", {"decision": "accept", "reasons": []})
        rules = rules_for(model)
        variants = ["off"] + (["adaptive"] if "adaptive" in rules.thinking else [])
        for thinking in variants:
            effort = "high" if rules.efforts else None
            options = ClaudeOptions(model=model, thinking=thinking, effort=effort, base_url=fake.url,  # type: ignore[arg-type]
                                    max_retries=0, api_key_env="REVERIE_TEST_ANTHROPIC_KEY")
            async with Claude(options, api_key=KEY) as claude:
                judge = claude.params(refining=False, **critic_request(options, CAND, claude.tool_choice("verdict")))
                dream = claude.params(refining=True, **reasoner_request(options, TASK, 2, 2, [], []))
                for params in (judge, dream):
                    message, usage = await claude.create(params)
                    assert message.stop_reason == "tool_use" and usage.requests == 1
        forced = [r.body for r in fake.message_requests() if "tool_choice" in r.body]
        # forced where the model allows it and thinking is off; never where it always thinks
        assert bool(forced) == (rules.forced_tool_choice and rules.off is not None)
        assert not fake.errors


def test_thinking_off_means_off_where_the_model_can_turn_it_off() -> None:
    assert sent_thinking("claude-sonnet-5-5", "off") == {"type": "between_tools"}
    assert sent_thinking("claude-opus-5", "off") == {"type": "disabled"}
    assert sent_thinking("claude-haiku-4-5", "off") == {"type": "disabled"}
    assert sent_thinking("claude-opus-5-5", "off") is None  # always adaptive: said at config time
    assert sent_thinking("claude-opus-5-5", "adaptive") == {"type": "adaptive"}


async def test_the_fake_refuses_what_we_used_to_send() -> None:
    """The two requests that broke on the default model: a forced verdict and a temperature."""
    with FakeAnthropic(api_key=KEY) as fake:
        client = anthropic.AsyncAnthropic(api_key=KEY, base_url=fake.url, max_retries=0)
        base: dict[str, Any] = {"model": "claude-sonnet-5-5", "max_tokens": 64, "tools": [VERDICT_TOOL],
                                "messages": [{"role": "user", "content": "judge"}]}
        with pytest.raises(anthropic.BadRequestError, match='tool_choice: type "tool" and "any" are not supported'):
            await client.messages.create(**base, tool_choice={"type": "tool", "name": "verdict"})
        with pytest.raises(anthropic.BadRequestError, match="temperature"):
            await client.messages.create(**base, extra_body={"temperature": 0.3})
        await client.close()
