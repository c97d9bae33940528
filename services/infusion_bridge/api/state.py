"""What the app holds for its lifetime: settings, engine, EHR client, drug catalog."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field

from fastapi import Request
from sqlalchemy.engine import Engine

from ..delivery.worker import DeliveryWorker
from ..domain.catalog import DrugCatalog
from ..ehr.client import EhrClient
from ..settings import Settings


@dataclass
class AppState:
    settings: Settings
    engine: Engine
    ehr: EhrClient
    catalog: DrugCatalog
    sync_lock: asyncio.Lock = field(default_factory=asyncio.Lock)
    sync_requested: bool = False
    worker: DeliveryWorker | None = None


def app_state(request: Request) -> AppState:
    state: AppState = request.app.state.infusion
    return state
