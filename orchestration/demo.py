"""The demo's operational systems: the CRM database (SQLite) and the helpdesk REST API
(127.0.0.1), built from what the generator wrote under <data>/source_systems/. Real
deployments point the catalog's url/base_url settings at their own systems instead."""

from __future__ import annotations

import os
import secrets
from contextlib import ExitStack, contextmanager
from typing import Iterator

from orchestration.settings import Settings
from orchestration.sources import helpdesk_api
from orchestration.sources.catalog import load_catalog
from orchestration.sources.demo_crm_db import build_crm_database

CRM_URL_ENV = "CDP_CRM_DATABASE_URL"
HELPDESK_URL_ENV = "CDP_HELPDESK_URL"
HELPDESK_TOKEN_ENV = "CDP_HELPDESK_TOKEN"


def crm_url(settings: Settings) -> str:
    return f"sqlite:///{settings.data_dir / 'source_systems' / 'crm.sqlite'}"


@contextmanager
def _pointed_at(env: str, value: str) -> Iterator[str]:
    """`env` set to `value` while the block runs, then as it was."""
    previous = os.environ.get(env)
    os.environ[env] = value
    try:
        yield value
    finally:
        if previous is None:
            os.environ.pop(env, None)
        else:
            os.environ[env] = previous


@contextmanager
def _demo_crm(settings: Settings) -> Iterator[str]:
    """The demo CRM database, (re)built, with CDP_CRM_DATABASE_URL pointing at it; yields its URL."""
    build_crm_database(settings.data_dir / "source_systems" / "crm", crm_url(settings))
    with _pointed_at(CRM_URL_ENV, crm_url(settings)) as url:
        yield url


@contextmanager
def _demo_helpdesk(settings: Settings) -> Iterator[str]:
    """The demo helpdesk API served while the block runs, with CDP_HELPDESK_URL pointing at it and
    CDP_HELPDESK_TOKEN set (a random token unless one is set); yields its URL."""
    token = os.environ.setdefault(HELPDESK_TOKEN_ENV, secrets.token_urlsafe(16))
    with helpdesk_api.serve(settings.data_dir / "source_systems" / "helpdesk", token=token) as base_url:
        with _pointed_at(HELPDESK_URL_ENV, base_url):
            yield base_url


@contextmanager
def demo_source_systems(settings: Settings) -> Iterator[str]:
    """The demo CRM database and helpdesk API, whatever the environment points at (demo data is
    read from the demo's systems: the demo run, the tests, the benchmark); yields the API URL."""
    with _demo_crm(settings), _demo_helpdesk(settings) as base_url:
        yield base_url


@contextmanager
def run_source_systems(settings: Settings, *, own: bool) -> Iterator[list[str]]:
    """The CRM database and helpdesk API a run reads; yields one line per system saying which.
    With `own`, the user's where CDP_CRM_DATABASE_URL / CDP_HELPDESK_URL point at them and the
    demo's, when this data folder has them, for the others; a system with neither is named (its
    channel's loads will fail). Without `own` (demo data), the demo's."""
    if not own:
        with demo_source_systems(settings) as base_url:
            yield [f"demo CRM database: {crm_url(settings)}", f"demo helpdesk API: {base_url}"]
        return
    demo, needed = has_demo_systems(settings), source_system_variables()
    with ExitStack() as stack:
        lines = []
        for env, name, start in ((CRM_URL_ENV, "CRM database", _demo_crm), (HELPDESK_URL_ENV, "helpdesk API", _demo_helpdesk)):
            if env not in needed:
                lines.append(f"{name}: not read (its channels are disabled in the catalog)")
            elif os.environ.get(env):
                lines.append(f"{name}: yours, from {env}")
            elif demo:
                lines.append(f"demo {name}: {stack.enter_context(start(settings))}")
            else:
                lines.append(f"{name}: none ({env} is not set and {settings.data_dir} has no demo systems)")
        yield lines


def unset_source_systems(settings: Settings) -> list[str]:
    """The variables a run on this data folder's files needs set: those of the source systems the
    environment does not point at, when the folder has no demo systems to stand in."""
    if has_demo_systems(settings):
        return []
    needed = source_system_variables()
    return [env for env in (CRM_URL_ENV, HELPDESK_URL_ENV) if env in needed and not os.environ.get(env)]


def missing_api_tokens() -> list[str]:
    """The token variables of the APIs the environment points at (yours, not the demo's, which
    sets its own) that are unset: found before a run, not after the other channels loaded."""
    return sorted({channel.options["token_env"] for channel in load_catalog().values()
                   if channel.enabled and channel.connector == "rest" and channel.options.get("token_env")
                   and os.environ.get(channel.options.get("base_url_env") or "")
                   and not os.environ.get(channel.options["token_env"])})


def source_system_variables() -> set[str]:
    """The variables naming the source systems the catalog's enabled channels read."""
    return {channel.options.get("url_env" if channel.connector == "sql" else "base_url_env")
            for channel in load_catalog().values() if channel.enabled and channel.connector in ("sql", "rest")}


def has_demo_systems(settings: Settings) -> bool:
    systems = settings.data_dir / "source_systems"
    return (systems / "helpdesk").is_dir() and (systems / "crm").is_dir()
