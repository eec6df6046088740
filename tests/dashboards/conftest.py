"""A filled county database shared by the panel tests of one module (read-only for them)."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from datetime import UTC, datetime

import pytest

from tests.clock import SHIFTED_CLOCKS
from tests.conftest import ADMIN_URL, create_database, drop_database
from tests.dashboards.county import fill


@pytest.fixture(scope="module", params=list(SHIFTED_CLOCKS.values()), ids=list(SHIFTED_CLOCKS))
def county_now(request: pytest.FixtureRequest) -> datetime:
    """The moment the county's data ends: each pinned instant in turn, on a quarter hour."""
    now: datetime = request.param.astimezone(UTC)
    assert now.minute % 15 == 0
    return now


@pytest.fixture(scope="module")
def county_url(migrated_template: str, county_now: datetime) -> Iterator[str]:
    """A migrated database of this module's own, filled with the test county."""
    name = f"village_county_{uuid.uuid4().hex[:12]}"
    url = create_database(ADMIN_URL, name, template=migrated_template)
    fill(url, county_now)
    yield url
    drop_database(ADMIN_URL, name)
