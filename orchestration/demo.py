"""The demo's operational systems: the CRM database (SQLite) and the helpdesk REST API
(127.0.0.1), built from what the generator wrote under <data>/source_systems/. Real
deployments point the catalog's url/base_url settings at their own systems instead."""

from __future__ import annotations

import os
import secrets
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator

from orchestration.settings import Settings
from orchestration.sources import helpdesk_api
from orchestration.sources.demo_crm_db import build_crm_database

HELPDESK_URL_ENV = "CDP_HELPDESK_URL"
HELPDESK_TOKEN_ENV = "CDP_HELPDESK_TOKEN"


def crm_url(settings: Settings) -> str:
    return f"sqlite:///{settings.data_dir / 'source_systems' / 'crm.sqlite'}"


@contextmanager
def demo_source_systems(settings: Settings) -> Iterator[str]:
    """Build the CRM database and serve the helpdesk API while the block runs; yields the API URL.
    Sets CDP_HELPDESK_URL / CDP_HELPDESK_TOKEN for the pipeline (a random token unless one is set)."""
    systems = settings.data_dir / "source_systems"
    build_crm_database(systems / "crm", crm_url(settings))
    token = os.environ.setdefault(HELPDESK_TOKEN_ENV, secrets.token_urlsafe(16))
    previous_url = os.environ.get(HELPDESK_URL_ENV)
    with helpdesk_api.serve(systems / "helpdesk", token=token) as base_url:
        os.environ[HELPDESK_URL_ENV] = base_url
        try:
            yield base_url
        finally:
            if previous_url is None:
                os.environ.pop(HELPDESK_URL_ENV, None)
            else:
                os.environ[HELPDESK_URL_ENV] = previous_url


def has_demo_systems(settings: Settings) -> bool:
    return (settings.data_dir / "source_systems" / "helpdesk").is_dir() and Path(
        settings.data_dir / "source_systems" / "crm"
    ).is_dir()
