import pytest

from registry.api.routes import Endpoint, Route, parse
from registry.core.errors import NotFound


@pytest.mark.parametrize("tail,route", [
    ("", Route(Endpoint.BASE)),
    ("_catalog", Route(Endpoint.CATALOG)),
    ("a/b/tags/list", Route(Endpoint.TAGS, "a/b")),
    ("a/manifests/latest", Route(Endpoint.MANIFEST, "a", "latest")),
    ("a/blobs/sha256:x", Route(Endpoint.BLOB, "a", "sha256:x")),
    ("a/b/blobs/uploads/", Route(Endpoint.UPLOADS, "a/b")),
    ("a/b/blobs/uploads", Route(Endpoint.UPLOADS, "a/b")),
    ("a/blobs/uploads/123", Route(Endpoint.UPLOAD, "a", "123")),
    ("a/referrers/sha256:x", Route(Endpoint.REFERRERS, "a", "sha256:x")),
    # Names may contain the endpoint words themselves.
    ("blobs/blobs/sha256:x", Route(Endpoint.BLOB, "blobs", "sha256:x")),
    ("manifests/tags/list", Route(Endpoint.TAGS, "manifests")),
    ("x/blobs/uploads/manifests/y", Route(Endpoint.MANIFEST, "x/blobs/uploads", "y")),
])
def test_parse(tail, route):
    assert parse(tail) == route


@pytest.mark.parametrize("tail", ["a", "a/manifests/", "tags/list", "a/unknown/x", "a/blobs/"])
def test_not_found(tail):
    with pytest.raises(NotFound):
        parse(tail)


def test_encoded_slash_never_splits_the_path():
    assert parse("a/blobs/uploads/..%2F..%2Fx") == Route(Endpoint.UPLOAD, "a", "../../x")
    assert parse("a/manifests/..%2Fx") == Route(Endpoint.MANIFEST, "a", "../x")


def test_encoded_slash_in_a_name_is_invalid():
    from registry.core.errors import NameInvalid

    with pytest.raises(NameInvalid):
        parse("a%2Fb/tags/list")
