"""What the app holds for its lifetime: settings, the database engine, the EHR client."""

from __future__ import annotations

from dataclasses import dataclass

from fastapi import Request
from sqlalchemy.engine import Engine

from ..ehr.client import EhrClient
from ..settings import Settings


@dataclass
class AppState:
    settings: Settings
    engine: Engine
    ehr: EhrClient


def app_state(request: Request) -> AppState:
    state: AppState = request.app.state.infusion
    return state
