"""A repository whose only upload was cancelled does not exist: it is not in the
catalog and its tag list is NAME_UNKNOWN, on every driver (the filesystem driver
used to keep the emptied directories, and with them the repository)."""

from __future__ import annotations

from .helpers import assert_error, call, start_upload, upload_url


def catalog(reg) -> list[str]:
    r = call(reg, "GET", "/v2/_catalog")
    assert r.status_code == 200, r.text
    return r.json()["repositories"]


def test_cancelled_only_upload_leaves_no_repository(registry):
    repo = registry.repo("emptyrepo")
    location = start_upload(registry, repo)
    assert repo in catalog(registry)  # an upload in progress makes the repository exist
    r = call(registry, "DELETE", upload_url(location))
    assert r.status_code == 204, r.text
    assert repo not in catalog(registry)
    assert_error(call(registry, "GET", f"/v2/{repo}/tags/list"), 404, "NAME_UNKNOWN")


def test_cancel_keeps_a_sibling_repository(registry):
    """Pruning stops at the first directory that still holds something."""
    parent = registry.repo("emptyrepo")
    child = f"{parent}/child"
    kept = start_upload(registry, parent)
    location = start_upload(registry, child)
    assert call(registry, "DELETE", upload_url(location)).status_code == 204
    names = catalog(registry)
    assert parent in names and child not in names
    assert call(registry, "DELETE", upload_url(kept)).status_code == 204
    assert parent not in catalog(registry)
