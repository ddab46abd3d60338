"""Two clients changing the same user at once with the same ETag: exactly one wins, the other gets 412."""

from __future__ import annotations

import threading

from fastapi.testclient import TestClient

from occupant.kit.db import transaction
from occupant.staff import service as staff
from tests.factories import admin_actor, make_occupier, make_operator, make_user


def test_concurrent_writes_with_the_same_etag(committed, app):
    with transaction(committed) as db:
        operator = make_operator(db)
        user = make_user(db, make_occupier(db, operator))
        _key, token = staff.create_api_key(db, actor=admin_actor(operator), name="race")
        user_id = user.id
    headers = {"Authorization": f"Bearer {token}"}
    etag = TestClient(app).get(f"/api/v1/users/{user_id}", headers=headers).headers["etag"]

    start = threading.Barrier(4)
    results: list[tuple[int, str]] = []

    def write(title: str) -> None:
        client = TestClient(app)
        start.wait()
        response = client.patch(
            f"/api/v1/users/{user_id}", json={"job_title": title}, headers={**headers, "If-Match": etag}
        )
        results.append((response.status_code, title))

    threads = [threading.Thread(target=write, args=(f"Title {n}",)) for n in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)

    assert sorted(code for code, _ in results) == [200, 412, 412, 412]
    winner = next(title for code, title in results if code == 200)
    final = TestClient(app).get(f"/api/v1/users/{user_id}", headers=headers)
    assert final.json()["job_title"] == winner
    assert final.headers["etag"] != etag
