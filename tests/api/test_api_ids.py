"""Ids are never reused: a deleted deployment's or cluster's id never names a newer one.

A script holding an old id must not delete someone's newer deployment. The schema side (SQLite
AUTOINCREMENT, PostgreSQL sequences, the migration) is tested in tests/test_migrations.py;
this is the same promise through the API, on the database the suite runs on.
"""

from __future__ import annotations


def test_a_deleted_deployments_id_is_not_given_again(api, owner):
    cluster = api.put(
        "/cluster/", json={"cluster_name": "c", "resource": {"cpu": 4}}, token=owner.token
    ).get_json()
    body = {"cluster_id": cluster["id"], "image": "nginx:1.25", "resource": {"cpu": 1}}
    first = api.put("/deployment/", json=body, token=owner.token).get_json()["deployment"]["id"]
    newest = api.put("/deployment/", json=body, token=owner.token).get_json()["deployment"]["id"]
    assert api.delete(f"/deployment/{newest}/", token=owner.token).status_code == 204
    again = api.put("/deployment/", json=body, token=owner.token).get_json()["deployment"]["id"]
    assert again > newest > first
    # The old id stays gone: it names nothing, and deleting it again deletes nothing.
    assert api.delete(f"/deployment/{newest}/", token=owner.token).status_code == 404
    assert api.get(f"/deployment/{again}/", token=owner.token).status_code == 200


def test_a_deleted_clusters_id_is_not_given_again(api, owner):
    def create(name: str) -> int:
        body = {"cluster_name": name, "resource": {"cpu": 1}}
        return api.put("/cluster/", json=body, token=owner.token).get_json()["id"]

    create("a")
    newest = create("b")
    assert api.delete(f"/cluster/{newest}/", token=owner.token).status_code == 204
    assert create("c") > newest
