"""A trip-planning agno Agent on the chat completions stub, sending its session's history with
each question: what the fork and copy tests continue sessions with."""

from __future__ import annotations

from agno.agent import Agent
from agno.models.openai import OpenAIChat

from tests.interop.openai_stub import ChatStub

# The stub's answer to each question.
ANSWERS = {"Where do I go?": "To Lyon.", "When?": "In May.", "With whom?": "With Ada."}


def answer(messages: list[dict]) -> str:
    """The stub's answer: the one to the last question."""
    return ANSWERS[messages[-1]["content"]]


def planner(storage, stub: ChatStub) -> Agent:
    """The agent, id ``planner``, on agno storage ``storage``, asking ``stub``."""
    return Agent(
        id="planner",
        model=OpenAIChat(id="stub-model", base_url=stub.base_url, api_key="test"),
        db=storage,
        add_history_to_context=True,
        num_history_runs=10,
        telemetry=False,
    )


def user_turns(request: dict) -> list[str]:
    """The user messages of one request to the model: the history agno sent, then the question."""
    return [message["content"] for message in request["messages"] if message["role"] == "user"]
