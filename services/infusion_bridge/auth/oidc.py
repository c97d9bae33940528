"""The web pages' side of OpenID Connect: the authorization code flow with PKCE (S256)
against the identity provider's discovered endpoints. Authlib makes the verifier, the
challenge and the state; the HTTP goes through the verifier's httpx client."""

from __future__ import annotations

from typing import Any
from urllib.parse import urlencode

import httpx
from authlib.common.security import generate_token
from authlib.oauth2.rfc7636 import create_s256_code_challenge

from .tokens import TokenError, TokenVerifier


async def end_session_url(verifier: TokenVerifier, id_token: str | None, after: str) -> str | None:
    """Where to send the browser to sign out at the provider too (RP-initiated logout)."""
    endpoint = (await verifier.discovery()).get("end_session_endpoint")
    if not endpoint:
        return None
    query = {"post_logout_redirect_uri": after}
    if id_token:
        query["id_token_hint"] = id_token
    return f"{endpoint}?{urlencode(query)}"


class SignInFailed(Exception):
    """The provider refused the code exchange (expired, replayed, wrong client...)."""


class WebSignIn:
    def __init__(
        self,
        verifier: TokenVerifier,
        *,
        client_id: str,
        client_secret: str | None,
        scope: str,
    ) -> None:
        self.verifier = verifier
        self.client_id = client_id
        self.client_secret = client_secret
        self.scope = scope

    async def authorization(self, redirect_uri: str) -> tuple[str, str, str]:
        """(URL to send the browser to, the OAuth ``state``, the PKCE code verifier)."""
        endpoint = str((await self.verifier.discovery())["authorization_endpoint"])
        state, code_verifier = generate_token(32), generate_token(64)
        query = urlencode(
            {
                "response_type": "code",
                "client_id": self.client_id,
                "redirect_uri": redirect_uri,
                "scope": self.scope,
                "state": state,
                "code_challenge": create_s256_code_challenge(code_verifier),
                "code_challenge_method": "S256",
            }
        )
        return f"{endpoint}?{query}", state, code_verifier

    async def exchange(
        self, redirect_uri: str, code: str, code_verifier: str
    ) -> tuple[dict[str, Any], str | None]:
        """Trade the code for tokens: the verified access token's claims, and the ID token
        (kept only as the hint for signing out at the provider)."""
        endpoint = str((await self.verifier.discovery())["token_endpoint"])
        form = {
            "grant_type": "authorization_code",
            "code": code,
            "redirect_uri": redirect_uri,
            "client_id": self.client_id,
            "code_verifier": code_verifier,
        }
        try:
            if self.client_secret:  # a confidential client; else a public one (PKCE only)
                auth = (self.client_id, self.client_secret)
                answer = await self.verifier.http.post(endpoint, data=form, auth=auth)
            else:
                answer = await self.verifier.http.post(endpoint, data=form)
        except httpx.HTTPError as exc:
            raise SignInFailed("the identity provider does not answer") from exc
        if answer.status_code != 200:
            raise SignInFailed(f"the identity provider refused the sign-in ({answer.status_code})")
        try:
            tokens = answer.json()
            claims = await self.verifier.claims(str(tokens["access_token"]))
            return claims, tokens.get("id_token")
        except (TokenError, KeyError, ValueError) as exc:
            raise SignInFailed(f"the identity provider's token is not valid here: {exc}") from exc
