"""Who may do what: SMART App Launch v2 scopes plus roles, checked against a requirement (pure).

A scope is ``<context>/<resource>.<permissions>``: context ``patient``, ``user`` or ``system``;
resource a FHIR type, ``*``, or ``Session`` (this service's infusion sessions); permissions
any of ``c r u d s`` in that order, or the SMART v1 ``read`` (= ``rs``) / ``write`` (= ``cud``)
/ ``*`` (= all). A ``patient/`` scope reaches only the patient of the token's launch context.
"""

from __future__ import annotations

from dataclasses import dataclass, field

CONTEXTS = ("patient", "user", "system")
PERMISSIONS = "cruds"
V1 = {"read": "rs", "write": "cud", "*": PERMISSIONS}


@dataclass(frozen=True)
class Scope:
    context: str
    resource: str
    permissions: frozenset[str]

    @classmethod
    def parse(cls, text: str) -> Scope | None:
        """A SMART resource scope, or None for anything else (``openid``, ``launch/patient``)."""
        context, slash, rest = text.partition("/")
        resource, dot, perms = rest.rpartition(".")
        if not slash or not dot or context not in CONTEXTS or not resource:
            return None
        letters = V1.get(perms, perms)
        if not letters or any(c not in PERMISSIONS for c in letters):
            return None
        return cls(context, resource, frozenset(letters))

    def grants(self, resource: str, permissions: str) -> bool:
        return self.resource in ("*", resource) and set(permissions) <= self.permissions


@dataclass(frozen=True)
class Principal:
    """Who is calling, from a verified access token."""

    subject: str
    client_id: str | None
    roles: frozenset[str]
    scopes: tuple[Scope, ...]
    patient: str | None = None
    """``Patient/<id>`` of the SMART launch context (``patient/`` scopes reach only it)."""
    name: str | None = None
    raw_scope: str = ""

    @property
    def who(self) -> str:
        return self.name or self.subject


@dataclass(frozen=True)
class Requirement:
    """What a route needs: ``permissions`` on ``resource`` through a scope in one of
    ``contexts`` (no ``resource``: no scope needed), and — for people (``user/`` and
    ``patient/`` scopes) — one of ``roles``. Backend clients (``system/`` scopes) have no
    roles: their registration and scopes are what the EHR's administrators granted."""

    resource: str | None
    permissions: str = ""
    contexts: frozenset[str] = frozenset(CONTEXTS)
    roles: frozenset[str] = field(default_factory=frozenset)

    @property
    def scope_text(self) -> str:
        ctx = "|".join(c for c in CONTEXTS if c in self.contexts)
        return f"{ctx}/{self.resource}.{self.permissions}" if self.resource else ""

    @property
    def roles_text(self) -> str:
        return " or ".join(sorted(self.roles))


@dataclass(frozen=True)
class Decision:
    allowed: bool
    missing: str = ""
    """What is missing, for the 403 (a scope or a role)."""
    compartment: str | None = None
    """Set when access is limited to one patient's data (only ``patient/`` scopes grant it)."""


def decide(principal: Principal, need: Requirement) -> Decision:
    """May ``principal`` do what ``need`` describes, and limited to which patient?"""
    has_role = not need.roles or bool(need.roles & principal.roles)
    if need.resource is None:
        return Decision(True) if has_role else Decision(False, f"role {need.roles_text}")
    granting = [
        s
        for s in principal.scopes
        if s.context in need.contexts and s.grants(need.resource, need.permissions)
    ]
    if not granting:
        return Decision(False, f"scope {need.scope_text}")
    if any(s.context == "system" for s in granting):
        return Decision(True)
    if not has_role:
        return Decision(False, f"role {need.roles_text}")
    if all(s.context == "patient" for s in granting):
        if principal.patient is None:
            return Decision(False, "a patient launch context for the patient/ scope")
        return Decision(True, compartment=principal.patient)
    return Decision(True)


def parse_scopes(scope: str) -> tuple[Scope, ...]:
    return tuple(s for s in (Scope.parse(t) for t in scope.split()) if s is not None)
