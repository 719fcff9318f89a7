"""The turn's LLM steps: profile update, tool phase, explanations and the reply's intro.

Each step raises :class:`~agent.steps.LLMFailure` when the model cannot be used for it; the
turn's :class:`~agent.steps.StepRunner` decides what that costs. The model writes the profile
update and the explanations through JSON-schema structured output, and plans retrievals as tool
calls (LangChain ``create_agent``); ids never come from its text.
"""

from __future__ import annotations

import json
import re
import time
from collections.abc import Callable, Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Annotated, Any

from pydantic import BaseModel, Field, StringConstraints, ValidationError

import prompts
from agent.conversation import Conversation
from agent.explainer import ItemExplanation, checked, item_prompt, used_fields
from agent.fusion import Scored
from agent.grounding import Checked, Explanation
from agent.llm import ChatFactory
from agent.profile import MAX_PHRASES, SUMMARY_CHARS, ProfileUpdate, UserProfile, merge
from agent.reading import Reading
from agent.reading import messages as reading_messages
from agent.steps import LLMFailure, as_failure, llm_errors
from agent.toolkit import TurnContext, build_tools
from agent.wording import intro
from tools.config_llm import LLMSettings

# Output budgets per step: a small model left unbounded can ramble until the context is full.
MAX_TOKENS = {
    "profile": 200,
    "tools": 160,
    "explain": 70,  # one item's sentence (200 characters at most)
    "intro": 60,
    "expand": 60,
    "read": 160,
}


class Expansions(BaseModel):
    """Concrete kinds of thing that satisfy a request (the expansion step's output)."""

    kinds: list[Annotated[str, StringConstraints(max_length=30)]] = Field(
        default_factory=list, max_length=6
    )


Clock = dict[str, float]


def _spent(clock: Clock, start: float, excluded: float = 0.0) -> None:
    clock["llm"] = clock.get("llm", 0.0) + time.perf_counter() - start - excluded


@dataclass(frozen=True)
class LLMSteps:
    """The LLM steps of a turn, bound to one chat model factory and the catalogue's titles (what
    the checker and the intro guard compare against)."""

    chat: ChatFactory
    llm: LLMSettings
    catalogue_titles: list[str]

    def structured(
        self,
        schema: type[BaseModel],
        prompt: str | list[tuple[str, str]],
        clock: Clock,
        budget: int,
    ) -> Any:
        start = time.perf_counter()
        try:
            model = self.chat(streaming=False, max_tokens=budget)
            result = model.with_structured_output(schema, method="json_schema").invoke(prompt)
        except llm_errors() as exc:
            raise as_failure(exc) from exc
        finally:
            _spent(clock, start)
        if isinstance(result, dict):
            try:
                result = schema.model_validate(result)
            except ValidationError as exc:
                problem = f"the answer does not fit {schema.__name__}: {exc}"
                raise LLMFailure(problem, False) from exc
        if not isinstance(result, schema):
            raise LLMFailure(f"expected {schema.__name__}, got {type(result).__name__}", False)
        return result

    def read(self, convo: Conversation, message: str, clock: Clock) -> Reading:
        """The message read into slots (:mod:`agent.reading`), with worked examples."""
        reading: Reading = self.structured(
            Reading, reading_messages(convo, message), clock, MAX_TOKENS["read"]
        )
        return reading

    def update_profile(self, convo: Conversation, message: str, clock: Clock) -> UserProfile:
        prompt = prompts.render(
            "profile",
            profile_json=convo.profile.model_dump_json(exclude={"user_id", "turns"}),
            history="; ".join(convo.history_titles[-15:]) or "(none)",
            conversation=convo.transcript(),
            message=message,
            max_phrases=MAX_PHRASES,
            summary_chars=SUMMARY_CHARS,
        )
        update: ProfileUpdate = self.structured(ProfileUpdate, prompt, clock, MAX_TOKENS["profile"])
        return merge(convo.profile, update)

    def expand(self, request: str, clock: Clock) -> list[str]:
        """Up to six concrete kinds for ``request`` (extra search queries only: ids and
        categories never come from here). Asked as a short chat with worked examples
        (prompts/expand_examples.txt): a 0.5B model copies a single inline example instead."""
        messages: list[tuple[str, str]] = [("system", prompts.render("expand_system"))]
        for line in prompts.load_text("expand_examples.txt").splitlines():
            asked, _, kinds = line.partition("|")
            if kinds.strip():
                messages.append(("human", prompts.render("expand", request=asked.strip())))
                listed = [k.strip() for k in kinds.split(",") if k.strip()]
                messages.append(("ai", json.dumps({"kinds": listed})))
        messages.append(("human", prompts.render("expand", request=request)))
        result: Expansions = self.structured(Expansions, messages, clock, MAX_TOKENS["expand"])
        cleaned = [" ".join(k.split())[:30] for k in result.kinds]
        return list(dict.fromkeys(k for k in cleaned if k and k.lower() != request.lower()))

    def use_tools(self, ctx: TurnContext, message: str, clock: Clock) -> None:
        """Let the model plan retrievals; what they find lands in ``ctx.buffer``."""
        from langchain.agents import create_agent
        from langchain.agents.middleware import ModelCallLimitMiddleware

        from agent.middleware import TolerantToolCalls, ToolChoicePolicy

        usable = [t for t in build_tools(ctx) if _usable(t.name, ctx)]
        attached = (" Attached files: " + ", ".join(ctx.attachments)) if ctx.attachments else ""
        start = time.perf_counter()
        tools_before = ctx.seconds["tools"]
        try:
            agent = create_agent(
                self.chat(streaming=False, max_tokens=MAX_TOKENS["tools"]),
                usable,
                system_prompt=prompts.render("agent_system", today_hint=""),
                middleware=[
                    ModelCallLimitMiddleware(  # type: ignore[list-item]
                        run_limit=self.llm.max_steps, exit_behavior="end"
                    ),
                    ToolChoicePolicy(self.llm.tool_choice),
                    TolerantToolCalls(),
                ],
            )
            agent.invoke(
                {"messages": [{"role": "user", "content": message + attached}]},
                {"recursion_limit": 4 * self.llm.max_steps + 4},
            )
        except llm_errors() as exc:
            raise as_failure(exc) from exc
        finally:  # tool time is the agent's own, not the LLM's
            _spent(clock, start, ctx.seconds["tools"] - tools_before)

    def explain(
        self,
        chosen: list[Scored],
        profile: UserProfile,
        message: str,
        clock: Clock,
        why: Mapping[str, list[str]] | None = None,
        asked: Mapping[str, str] | None = None,
    ) -> dict[str, Checked]:
        """Explanations for ``chosen``, one short call per item, all at once (vLLM batches
        them: five short answers side by side take about as long as one). ``why`` (item id ->
        computed reasons) goes into each prompt for the model to phrase; ``asked`` (item id ->
        its reasons' words) makes the checker also reject tautologies and words neither the
        facts nor the reasons hold. An item whose call fails is left out (the turn says its
        reasons instead); when every call fails, the first failure is raised."""
        start = time.perf_counter()
        facts = {s.candidate.id: dict(s.candidate.facts) for s in chosen}
        prompts_ = {
            i: item_prompt(
                {**f, **({"why_it_fits": why[i]} if why and i in why else {})},
                profile.summary,
                message,
            )
            for i, f in facts.items()
        }
        answers: dict[str, ItemExplanation] = {}
        failures: list[LLMFailure] = []
        with ThreadPoolExecutor(max_workers=max(1, len(prompts_))) as pool:
            pending = {
                i: pool.submit(self.structured, ItemExplanation, p, {}, MAX_TOKENS["explain"])
                for i, p in prompts_.items()
            }
            for i, job in pending.items():
                try:
                    answers[i] = job.result()
                except LLMFailure as exc:
                    failures.append(exc)
        clock["llm"] = clock.get("llm", 0.0) + time.perf_counter() - start  # wall time, once
        if failures and not answers:
            raise failures[0]
        written = [
            Explanation(item_id=i, text=a.text, cited_fields=used_fields(a.text, facts[i]))
            for i, a in answers.items()
        ]
        said = message.lower()  # a title the shopper said ("Farm") is their word, not an item
        others = [
            t for t in self.catalogue_titles if not re.search(rf"\b{re.escape(t.lower())}\b", said)
        ]
        return checked(written, facts, others, asked)

    def intro(
        self,
        message: str,
        profile: UserProfile,
        chosen_titles: list[str],
        on_token: Callable[[str], None] | None,
        clock: Clock,
    ) -> str:
        """The reply's first sentence, streamed; replaced by a template when it names an item
        that is not among the recommendations."""
        prompt = prompts.render(
            "reply_intro",
            request=message,
            profile_summary=profile.summary or "(unknown)",
            count=len(chosen_titles),
        )
        start = time.perf_counter()
        parts: list[str] = []
        try:
            for chunk in self.chat(streaming=True, max_tokens=MAX_TOKENS["intro"]).stream(prompt):
                text = str(chunk.content)
                if text:
                    if not parts:
                        clock["first_token_at"] = time.perf_counter()
                    parts.append(text)
                    if on_token:
                        on_token(text)
        except llm_errors() as exc:
            raise as_failure(exc) from exc
        finally:
            _spent(clock, start)
        text = "".join(parts).strip().strip('"').split("\n")[0]
        allowed = {t.lower() for t in chosen_titles}
        named = [
            t
            for t in self.catalogue_titles
            if len(t) >= 3
            and t.lower() not in allowed
            and re.search(rf"\b{re.escape(t.lower())}s?\b", text.lower())
        ]
        if named:  # the intro may not name items the user is not being recommended
            return intro(chosen_titles)
        return text


def _usable(name: str, ctx: TurnContext) -> bool:
    if name in {"search_by_image", "caption_image", "transcribe_audio"}:
        return bool(ctx.attachments)
    if name == "user_history":
        return bool(ctx.history_titles)
    return True
