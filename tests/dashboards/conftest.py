"""A filled county database shared by the panel tests of one module (read-only for them)."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from datetime import UTC, datetime

import pytest

from tests.conftest import ADMIN_URL, create_database, drop_database
from tests.dashboards.county import fill


@pytest.fixture(scope="module")
def county_now() -> datetime:
    """The moment the county's data ends: now, on a quarter hour."""
    now = datetime.now(UTC).replace(second=0, microsecond=0)
    return now.replace(minute=now.minute - now.minute % 15)


@pytest.fixture(scope="module")
def county_url(migrated_template: str, county_now: datetime) -> Iterator[str]:
    """A migrated database of this module's own, filled with the test county."""
    name = f"village_county_{uuid.uuid4().hex[:12]}"
    url = create_database(ADMIN_URL, name, template=migrated_template)
    fill(url, county_now)
    yield url
    drop_database(ADMIN_URL, name)
