import pytest

from registry.core.errors import BlobUploadInvalid
from registry.core.ranges import ByteRange, Unsatisfiable, parse_content_range, parse_range


@pytest.mark.parametrize("value,expected", [
    ("0-0", (0, 0)), ("0-21", (0, 21)), ("22-41", (22, 41)), ("bytes 0-9/10", (0, 9)),
    ("bytes=5-9", (5, 9)), ("3-4/*", (3, 4)),
])
def test_content_range(value, expected):
    assert parse_content_range(value) == expected


@pytest.mark.parametrize("value", ["", "5", "-5", "5-", "9-3", "a-b", "0-1-2", "0 - 1",
                                   "1" * 25 + "-2"])
def test_bad_content_range(value):
    with pytest.raises(BlobUploadInvalid):
        parse_content_range(value)


@pytest.mark.parametrize("header,size,expected", [
    (None, 10, None), ("bytes=0-4", 10, ByteRange(0, 4)), ("bytes=5-", 10, ByteRange(5, 9)),
    ("bytes=-3", 10, ByteRange(7, 9)), ("bytes=-30", 10, ByteRange(0, 9)),
    ("bytes=8-100", 10, ByteRange(8, 9)), ("bytes=0-1,3-4", 10, None), ("items=0-1", 10, None),
    ("bytes=5-2", 10, None), ("bytes=-", 10, None),
])
def test_range(header, size, expected):
    assert parse_range(header, size) == expected


@pytest.mark.parametrize("header,size", [("bytes=10-", 10), ("bytes=10-20", 10),
                                         ("bytes=-0", 10), ("bytes=0-", 0)])
def test_unsatisfiable(header, size):
    with pytest.raises(Unsatisfiable):
        parse_range(header, size)
