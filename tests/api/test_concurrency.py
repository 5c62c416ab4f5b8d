"""Many clients writing at once: no 5xx, and every acknowledged write is there."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor

import pytest

from tests.api.helpers import stored_session

# Also run through PgBouncer, in transaction and in session mode, by `tox -e pgbouncer`.
pytestmark = pytest.mark.pooler


def test_concurrent_creates_patches_and_deletes_all_succeed(client, database):
    def create(n: int) -> int:
        return client.post("/sessions", json={"session_id": f"s{n}", "session_name": f"S{n}"}).status_code

    def patch(n: int) -> int:
        return client.patch(f"/sessions/s{n % 8}", json={"metadata": {"writer": n}}).status_code

    def delete(n: int) -> int:
        return client.delete(f"/sessions/s{n}").status_code

    with ThreadPoolExecutor(max_workers=16) as pool:
        assert list(pool.map(create, range(64))) == [201] * 64
        assert list(pool.map(patch, range(64))) == [200] * 64
        assert list(pool.map(delete, range(8, 64))) == [204] * 56

    listed = client.get("/sessions", params={"limit": 100, "sort_by": "session_id", "sort_order": "asc"}).json()
    assert [s["session_id"] for s in listed["data"]] == [f"s{n}" for n in range(8)]
    for n in range(8):
        assert stored_session(database, f"s{n}").metadata_["writer"] % 8 == n
