"""Drive the Keycloak sandbox (sandbox/keycloak/keycloak.sh) from tests, benchmarks and scripts.

Example::

    kc = KeycloakSandbox(port=8181)
    if not kc.is_up():
        kc.start()
    nurse_token = kc.token("nurse", scope="openid user/Session.rs")
    ehr_token = kc.token("ehr")
"""

from __future__ import annotations

import os
import shutil
import subprocess
from dataclasses import dataclass, field
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parent.parent
KEYCLOAK_DIR = ROOT / "sandbox" / "keycloak"
SCRIPT = KEYCLOAK_DIR / "keycloak.sh"

REALM = "infusion-bridge"
API_AUDIENCE = "infusion-bridge"
CLI_CLIENT_ID = "infusion-bridge-cli"
DEMO_USERS: tuple[str, ...] = ("nurse", "clinician", "admin", "security-officer")
# Demo-only secrets of the confidential clients in realm/infusion-bridge-realm.json.
DEMO_CLIENT_SECRETS: dict[str, str] = {
    "ehr": "ehr-demo-secret",
}
STAFF_SCOPES = " ".join(
    [
        "openid",
        "user/MedicationRequest.rs",
        "user/MedicationAdministration.rs",
        "user/Observation.rs",
        "user/Encounter.rs",
        "user/AdverseEvent.rs",
        "user/Procedure.rs",
        "user/AuditEvent.rs",
        "user/Session.rs",
        "user/Session.cu",
    ]
)
"""What a demo user asks for by default: every user/ scope; the roles then decide."""
PATIENT_SCOPES = "openid launch/patient patient/*.rs"
"""A user launched in a patient's context (the demo realm pins Patient/demo-patient-1)."""
# Clients with a service account and a client secret: ``token()`` uses client credentials.
SERVICE_ACCOUNT_CLIENTS: tuple[str, ...] = ("ehr",)


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


@dataclass
class KeycloakSandbox:
    """One Keycloak (start-dev) on ``port`` serving the demo realm ``infusion-bridge``.

    Each port has its own data dir (``sandbox/keycloak/target/data-<port>``), so a test
    instance does not touch the dev one. ``started_here`` says whether we must stop it.
    """

    port: int
    extra_env: dict[str, str] = field(default_factory=dict)
    started_here: bool = False

    @property
    def base_url(self) -> str:
        """Root URL of the server, e.g. ``http://127.0.0.1:8180``."""
        return f"http://127.0.0.1:{self.port}"

    @property
    def issuer(self) -> str:
        """The realm's issuer: the ``iss`` of every token it signs."""
        return f"{self.base_url}/realms/{REALM}"

    @property
    def token_endpoint(self) -> str:
        """The realm's OAuth 2.0 token endpoint."""
        return f"{self.issuer}/protocol/openid-connect/token"

    @property
    def jwks_uri(self) -> str:
        """The realm's JWKS (public signing keys)."""
        return f"{self.issuer}/protocol/openid-connect/certs"

    @property
    def data_dir(self) -> Path:
        """H2 database and transaction logs of this instance."""
        return KEYCLOAK_DIR / "target" / f"data-{self.port}"

    @property
    def pid(self) -> int | None:
        """Pid from the script's pid file (the process group leader), if any."""
        pid_file = KEYCLOAK_DIR / "target" / f"keycloak-{self.port}.pid"
        try:
            return int(pid_file.read_text().strip())
        except (OSError, ValueError):
            return None

    def _env(self) -> dict[str, str]:
        return {**os.environ, "KEYCLOAK_PORT": str(self.port), **self.extra_env}

    def _run(self, command: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            ["bash", str(SCRIPT), command],
            env=self._env(),
            capture_output=True,
            text=True,
            check=False,
        )

    def is_up(self) -> bool:
        """True when the realm's discovery document answers with this issuer."""
        try:
            r = httpx.get(f"{self.issuer}/.well-known/openid-configuration", timeout=5)
        except httpx.HTTPError:
            return False
        return r.status_code == 200 and r.json().get("issuer") == self.issuer

    def start(self) -> None:
        """Fetch if needed, start and wait for the realm (``KEYCLOAK_START_TIMEOUT``, 180 s).

        Raises ``RuntimeError`` with the script's output (which ends with the server log's
        tail) when the server does not come up.
        """
        result = self._run("start")
        if result.returncode != 0:
            raise RuntimeError(
                f"Keycloak sandbox failed to start on port {self.port}:\n"
                f"{result.stdout[-4000:]}\n{result.stderr[-6000:]}"
            )

    def stop(self) -> None:
        """Stop the server if this script started it (SIGTERM, then SIGKILL)."""
        result = self._run("stop")
        if result.returncode != 0:
            raise RuntimeError(f"Keycloak sandbox failed to stop:\n{result.stderr[-4000:]}")

    def wipe(self) -> None:
        """Forget this port's data (only while stopped); the next start re-imports the realm."""
        pid = self.pid
        if pid is not None and _alive(pid):
            raise RuntimeError(f"Keycloak on port {self.port} is running; stop it before wipe()")
        shutil.rmtree(self.data_dir, ignore_errors=True)

    def token_response(
        self,
        as_: str,
        *,
        scope: str | None = None,
        client_id: str = CLI_CLIENT_ID,
        realm: str = REALM,
    ) -> dict[str, object]:
        """The token endpoint's JSON answer for ``as_`` (see ``token``)."""
        form: dict[str, str]
        if as_ in SERVICE_ACCOUNT_CLIENTS:
            form = {
                "grant_type": "client_credentials",
                "client_id": as_,
                "client_secret": DEMO_CLIENT_SECRETS[as_],
            }
        else:
            # Password grant: demo realm only (users' passwords equal their usernames).
            form = {
                "grant_type": "password",
                "client_id": client_id,
                "username": as_,
                "password": as_,
            }
        if scope is not None:
            form["scope"] = scope
        endpoint = f"{self.base_url}/realms/{realm}/protocol/openid-connect/token"
        r = httpx.post(endpoint, data=form, timeout=30)
        if r.status_code != 200:
            raise RuntimeError(
                f"token request as {as_!r} failed: HTTP {r.status_code} {r.text[:500]}"
            )
        body: dict[str, object] = r.json()
        return body

    def token(
        self,
        as_: str,
        *,
        scope: str | None = None,
        client_id: str = CLI_CLIENT_ID,
        realm: str = REALM,
    ) -> str:
        """An access token for a demo user or a confidential client.

        ``as_`` is a demo user (``nurse``, ``clinician``, ``admin``, ``security-officer``;
        password grant through the public ``infusion-bridge-cli`` client) or a client with a
        service account and a demo secret (``ehr``; client credentials grant). ``scope`` is
        sent as is (space-separated), e.g. ``"openid user/Session.rs"``; optional scopes only
        appear in the token's ``scope`` claim when asked for.
        """
        if scope is None and as_ not in SERVICE_ACCOUNT_CLIENTS:
            scope = STAFF_SCOPES
        answer = self.token_response(as_, scope=scope, client_id=client_id, realm=realm)
        access_token = answer["access_token"]
        if not isinstance(access_token, str):
            raise RuntimeError(f"token response as {as_!r} has no access_token")
        return access_token
