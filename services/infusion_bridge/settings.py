"""Service settings, read from the environment (see README, "Settings")."""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path
from typing import Literal

from pydantic import AliasChoices, Field, SecretStr
from pydantic_settings import BaseSettings, SettingsConfigDict

EHR_SCOPES = " ".join(
    [
        # the write-back Bundle (conditional creates)
        "system/Encounter.c",
        "system/MedicationAdministration.c",
        "system/Observation.c",
        "system/AdverseEvent.c",
        "system/Procedure.c",
        "system/Questionnaire.c",
        "system/QuestionnaireResponse.c",
        # orders in (pull sync, remote Medication), a patient's history (ehr_history)
        "system/MedicationRequest.rs",
        "system/Medication.r",
        "system/Patient.r",
        "system/MedicationAdministration.rs",
        "system/Observation.rs",
    ]
)
"""What the service does at the EHR, as SMART v2 system scopes."""


class Settings(BaseSettings):
    """Every setting has a safe local default: SQLite and the local HAPI sandbox."""

    model_config = SettingsConfigDict(env_prefix="INFUSION_", extra="ignore")

    database_url: str = Field(
        default="sqlite:///./var/infusion-bridge.db",
        validation_alias=AliasChoices("INFUSION_DATABASE_URL", "DATABASE_URL"),
        description="SQLAlchemy URL of the local store (SQLite or postgresql+psycopg://...).",
    )
    auto_migrate: bool = Field(default=True, description="Apply Alembic migrations at start-up.")
    catalog_path: Path | None = Field(
        default=None,
        description="Drug catalog JSON; default: contracts/drug-catalog.json of this checkout.",
    )
    ehr_base_url: str = Field(
        default="http://127.0.0.1:8080/fhir", description="FHIR R4 base URL of the EHR."
    )
    ehr_timeout_seconds: float = Field(default=10.0, gt=0)
    ehr_connect_timeout_seconds: float = Field(default=3.0, gt=0)
    ehr_max_connections: int = Field(default=20, ge=1)
    ehr_probe_interval_seconds: float = Field(
        default=5.0, gt=0, description="How often the background probe asks the EHR /metadata."
    )
    ehr_probe_timeout_seconds: float = Field(
        default=2.0, gt=0, le=30, description="The probe's whole deadline (its own connection)."
    )
    ehr_bearer_token: SecretStr | None = Field(
        default=None, description="Sent as 'Authorization: Bearer ...' to the EHR when set."
    )
    ehr_client_id: str | None = Field(
        default=None,
        description="SMART Backend Services client id at the EHR; set to get tokens with our key.",
    )
    ehr_private_key_path: Path | None = Field(
        default=None, description="PEM private key (RSA or EC P-384) signing the client assertion."
    )
    ehr_private_key: SecretStr | None = Field(
        default=None, description="The same PEM key given in the environment instead of a file."
    )
    ehr_token_url: str | None = Field(
        default=None, description="Token endpoint; default: the EHR's smart-configuration."
    )
    ehr_scopes: str = Field(
        default=EHR_SCOPES, description="The SMART system scopes requested from the EHR."
    )
    hook_secret: SecretStr | None = Field(
        default=None,
        description="Shared secret the rest-hook Subscription sends as X-Infusion-Hook-Secret.",
    )
    sync_interval_seconds: float = Field(
        default=300, ge=0, description="Pull changed orders from the EHR this often; 0 = off."
    )
    sync_page_size: int = Field(default=100, ge=1, le=1000)
    ehr_history_on_order: bool = Field(
        default=True,
        description="Pull the patient's history from the EHR when an infusion order arrives.",
    )
    identifier_system: str = Field(
        default="urn:infusion-bridge:resource",
        description="System of the business identifiers minted for resources sent to the EHR.",
    )
    delivery_enabled: bool = Field(default=True, description="Run the write-back worker.")
    delivery_concurrency: int = Field(default=4, ge=1, le=64)
    delivery_poll_seconds: float = Field(default=5.0, gt=0)
    delivery_lease_seconds: float = Field(default=60.0, gt=0)
    delivery_retry_base_seconds: float = Field(default=1.0, gt=0)
    delivery_retry_cap_seconds: float = Field(default=300.0, gt=0)
    delivery_retry_horizon_seconds: float = Field(
        default=96 * 3600,
        gt=0,
        description="Transient failures are retried this long, then the delivery is dead.",
    )
    delivery_warn_after_seconds: float = Field(
        default=15 * 60, gt=0, description="Warn (log + metric) about deliveries failing longer."
    )
    delivery_recovery_spread_seconds: float = Field(
        default=2.0,
        ge=0,
        description="When the EHR is back, waiting deliveries are retried within this (jitter).",
    )
    workers: int = Field(
        default=1,
        ge=1,
        le=64,
        description="Worker processes of `infusion-bridge serve` (more than 1: use PostgreSQL).",
    )
    auth_issuer: str = Field(
        default="http://127.0.0.1:8180/realms/infusion-bridge",
        description="OIDC issuer whose access tokens the service accepts (its JWKS signs them).",
    )
    auth_audience: str = Field(
        default="infusion-bridge", description="The 'aud' every access token must carry."
    )
    auth_jwks_url: str | None = Field(
        default=None, description="The issuer's JWKS; default: from its OIDC discovery document."
    )
    auth_leeway_seconds: float = Field(default=30, ge=0, le=300)
    auth_disabled: bool = Field(
        default=False,
        description="Local experiments only: no sign-in checks. Refused on a non-loopback host.",
    )
    web_client_id: str = Field(
        default="infusion-bridge-web", description="OIDC client of the web pages (code + PKCE)."
    )
    web_client_secret: SecretStr | None = Field(
        default=None, description="That client's secret, if it is a confidential client."
    )
    web_session_hours: float = Field(default=8, gt=0, le=24)
    web_scopes: str = Field(
        default=(
            "openid user/Session.rs user/MedicationRequest.rs user/MedicationAdministration.rs "
            "user/Observation.rs user/Encounter.rs user/AdverseEvent.rs user/Procedure.rs"
        ),
        description="What the web pages ask the identity provider for at sign-in.",
    )
    host: str = "127.0.0.1"
    port: int = Field(default=8000, ge=1, le=65535)
    log_level: Literal["DEBUG", "INFO", "WARNING", "ERROR"] = "INFO"
    log_format: Literal["json", "console"] = "json"
    max_body_bytes: int = Field(
        default=5 * 1024 * 1024, ge=1024, description="Largest request body accepted."
    )


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    """The process-wide settings (tests build their own `Settings` instead)."""
    return Settings()
