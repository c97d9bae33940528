"""A verified token is taken on trust again for a short while, never past its ``exp``;
anything else (another text: altered, forged) is verified in full every time."""

from __future__ import annotations

import asyncio
from typing import Any

import httpx
import pytest

from harness.identity import AUDIENCE, ISSUER_FOR_TESTS
from services.infusion_bridge.auth import tokens
from services.infusion_bridge.auth.tokens import TokenError, TokenVerifier


class Clock:
    def __init__(self, now: float) -> None:
        self.now = now

    def time(self) -> float:
        return self.now

    def monotonic(self) -> float:
        return self.now


@pytest.fixture
def verifier(monkeypatch: pytest.MonkeyPatch) -> tuple[TokenVerifier, list[str]]:
    http = httpx.AsyncClient(transport=ISSUER_FOR_TESTS.transport())
    verifier = TokenVerifier(issuer=ISSUER_FOR_TESTS.issuer, audience=AUDIENCE, http=http)
    checked: list[str] = []
    real = verifier.claims

    async def counting(token: str) -> dict[str, Any]:
        checked.append(token)
        return await real(token)

    monkeypatch.setattr(verifier, "claims", counting)
    return verifier, checked


def test_the_same_token_is_checked_once(verifier: tuple[TokenVerifier, list[str]]) -> None:
    v, checked = verifier
    token = ISSUER_FOR_TESTS.token(name="nurse-a", roles=("nurse",))

    async def twice() -> tuple[Any, Any]:
        return await v.verify(token), await v.verify(token)

    first, second = asyncio.run(twice())
    assert first == second
    assert first.roles == frozenset({"nurse"})
    assert checked == [token]


def test_an_altered_token_is_refused_even_after_the_real_one_verified(
    verifier: tuple[TokenVerifier, list[str]],
) -> None:
    v, checked = verifier
    token = ISSUER_FOR_TESTS.token()
    header, payload, signature = token.split(".")
    altered = f"{header}.{payload}.{signature[:-4]}AAAA"

    async def go() -> None:
        await v.verify(token)
        for _ in range(2):
            with pytest.raises(TokenError, match="signature"):
                await v.verify(altered)

    asyncio.run(go())
    assert checked == [token, altered, altered]


def test_trust_ends_after_a_while_and_never_outlives_the_token(
    verifier: tuple[TokenVerifier, list[str]], monkeypatch: pytest.MonkeyPatch
) -> None:
    v, checked = verifier
    long_lived = ISSUER_FOR_TESTS.token(expires_in=3600)
    short_lived = ISSUER_FOR_TESTS.token(expires_in=5)
    clock = Clock(tokens.time.time())
    monkeypatch.setattr(tokens, "time", clock)

    async def at(offset: float, token: str) -> None:
        clock.now = start + offset
        await v.verify(token)

    start = clock.now
    asyncio.run(at(0, long_lived))
    asyncio.run(at(tokens.VERIFIED_FOR - 1, long_lived))
    assert checked == [long_lived]
    asyncio.run(at(tokens.VERIFIED_FOR + 1, long_lived))
    assert checked == [long_lived, long_lived]

    asyncio.run(at(0, short_lived))
    asyncio.run(at(4, short_lived))
    assert checked.count(short_lived) == 1
    asyncio.run(at(6, short_lived))  # past its exp: verified again (PyJWT's leeway decides)
    assert checked.count(short_lived) == 2


def test_remembers_a_bounded_number_of_tokens(
    verifier: tuple[TokenVerifier, list[str]], monkeypatch: pytest.MonkeyPatch
) -> None:
    v, checked = verifier
    monkeypatch.setattr(tokens, "VERIFIED_MAX", 3)
    many = [ISSUER_FOR_TESTS.token(name=f"user-{i}") for i in range(5)]

    async def go() -> None:
        for token in many:
            await v.verify(token)
        await v.verify(many[0])  # forgotten (the oldest): checked again
        await v.verify(many[4])  # remembered

    asyncio.run(go())
    assert len(v._verified) <= 3
    assert checked == [*many, many[0]]
