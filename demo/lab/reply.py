"""What one request will get: the tokens of the reply, why it ends, and the pace to send them at."""

from __future__ import annotations

import dataclasses
import secrets
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from functools import lru_cache

from demo.lab.content import message_text
from demo.lab.profiles import PACE_CHECKS, Profile
from demo.lab.request import CompletionRequest
from demo.lab.schedule import due_times
from demo.lab.tokens import count_tokens, split_tokens

MESSAGE_OVERHEAD_TOKENS = 4
"""Tokens a chat template adds around each message (role markers), roughly as OpenAI counts."""
REPLY_PRIMER_TOKENS = 3
"""Tokens that prime the assistant's reply in the template."""
CYCLE_SEPARATOR = "\n\n"
"""Put between repetitions of an answer when `output_tokens` asks for more than it has."""


@dataclass(frozen=True, slots=True)
class ReplyPlan:
    """Everything decided before the first byte of the reply is sent."""

    pace: Profile
    """The profile with the request's overrides applied."""
    tokens: list[str]
    finish_reason: str
    prompt_tokens: int
    seed: int

    @property
    def chunk_count(self) -> int:
        """How many content chunks the reply is sent in."""
        per_chunk = self.pace.tokens_per_chunk
        return -(-len(self.tokens) // per_chunk)

    def timetable(self, start_ns: int) -> Iterator[int]:
        """When each content chunk is due, for a request that arrived at `start_ns`."""
        return due_times(start_ns, self.chunk_count, self.pace, self.seed)

    @property
    def text(self) -> str:
        """The whole reply."""
        return "".join(self.tokens)


@lru_cache(maxsize=64)
def _answer_tokens(answer: str) -> tuple[str, ...]:
    # The shipped answers are few and fixed: splitting each once keeps long replies cheap.
    return tuple(split_tokens(answer))


def plan_reply(
    request: CompletionRequest,
    profile: Profile,
    answer_for: Callable[[Sequence[dict[str, object]]], str],
) -> ReplyPlan:
    """Choose the reply to `request` and how it is paced."""
    overrides = request.overrides
    pace = dataclasses.replace(profile, **{k: v for k, v in overrides.items() if k in PACE_CHECKS})
    base = _answer_tokens(answer_for(request.messages))
    wanted = overrides.get("output_tokens")
    if wanted is None:
        tokens = list(base)
    else:
        cycle = base + _answer_tokens(CYCLE_SEPARATOR)
        tokens = [cycle[i % len(cycle)] for i in range(wanted)]
    finish_reason = "stop"
    if request.max_tokens is not None and len(tokens) > request.max_tokens:
        tokens = tokens[: request.max_tokens]
        finish_reason = "length"
    prompt_tokens = REPLY_PRIMER_TOKENS + sum(
        MESSAGE_OVERHEAD_TOKENS + count_tokens(message_text(m)) for m in request.messages
    )
    seed = overrides.get("seed")
    return ReplyPlan(
        pace=pace,
        tokens=tokens,
        finish_reason=finish_reason,
        prompt_tokens=prompt_tokens,
        seed=secrets.randbits(63) if seed is None else seed,
    )
