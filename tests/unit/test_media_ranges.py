"""Byte ranges and content headers of the media a session's runs name: the one range a ``Range``
header asks for (RFC 9110 section 14), where it falls in an object of a given size, and the
headers that keep a stored type from running on the API's origin."""

from __future__ import annotations

import pytest

from agentos_sessions.handlers.media import _byte_range, _headers
from agentos_sessions.persistence.media import ByteRange, RangeNotSatisfiable

HASH = "9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08"
TAG = f'"{HASH}"'
KEY = "agno/media/object"

# --- where a range falls in an object -------------------------------------------------------


@pytest.mark.parametrize(
    ("byte_range", "size", "first_and_last"),
    [
        (ByteRange(first=0, last=9), 100, (0, 9)),
        (ByteRange(first=10, last=10), 100, (10, 10)),
        (ByteRange(first=90, last=99), 100, (90, 99)),
        (ByteRange(first=90, last=500), 100, (90, 99)),
        (ByteRange(first=10), 100, (10, 99)),
        (ByteRange(first=99), 100, (99, 99)),
        (ByteRange(first=0), 1, (0, 0)),
        (ByteRange(suffix=10), 100, (90, 99)),
        (ByteRange(suffix=100), 100, (0, 99)),
        (ByteRange(suffix=500), 100, (0, 99)),
        (ByteRange(suffix=1), 1, (0, 0)),
    ],
)
def test_a_range_is_the_bytes_it_names_within_the_object(byte_range, size, first_and_last):
    assert byte_range.within(size) == first_and_last


@pytest.mark.parametrize(
    ("byte_range", "size"),
    [
        (ByteRange(first=100, last=200), 100),
        (ByteRange(first=100), 100),
        (ByteRange(first=5000), 100),
        (ByteRange(suffix=0), 100),
        (ByteRange(first=0), 0),
        (ByteRange(first=0, last=0), 0),
        (ByteRange(suffix=5), 0),
    ],
)
def test_a_range_starting_past_the_end_is_not_satisfiable_and_says_the_size(byte_range, size):
    with pytest.raises(RangeNotSatisfiable) as refused:
        byte_range.within(size)
    assert (refused.value.size, str(refused.value)) == (size, f"the object has {size} bytes")


@pytest.mark.parametrize(
    ("byte_range", "header"),
    [
        (ByteRange(first=0, last=9), "bytes=0-9"),
        (ByteRange(first=10), "bytes=10-"),
        (ByteRange(suffix=20), "bytes=-20"),
    ],
)
def test_a_range_is_written_back_as_a_range_header(byte_range, header):
    assert byte_range.header() == header


# --- the range a request asks for -----------------------------------------------------------


@pytest.mark.parametrize(
    ("header", "byte_range"),
    [
        ("bytes=0-99", ByteRange(first=0, last=99)),
        ("bytes=0-0", ByteRange(first=0, last=0)),
        ("bytes=5-5", ByteRange(first=5, last=5)),
        ("bytes=100-", ByteRange(first=100)),
        ("bytes=-20", ByteRange(suffix=20)),
        ("bytes=007-010", ByteRange(first=7, last=10)),
        (" bytes = 1 - 2 ", ByteRange(first=1, last=2)),
        ("bytes=\t3-\t", ByteRange(first=3)),
        ("bytes= - 4", ByteRange(suffix=4)),
        ("Bytes=1-2", ByteRange(first=1, last=2)),
        ("BYTES=-3", ByteRange(suffix=3)),
        ("bytes=0-999999999999999999", ByteRange(first=0, last=999999999999999999)),
    ],
)
def test_one_range_is_parsed(header, byte_range):
    assert _byte_range(header, None, None) == byte_range


@pytest.mark.parametrize(
    "header",
    [
        None,
        "",
        "bytes=0-1,5-6",
        "bytes=0-1, 5-6",
        "bytes=-1,-2",
        "bytes=5-4",
        "bytes=10-9",
        "bytes=",
        "bytes=-",
        "bytes=a-b",
        "bytes=0x1-2",
        "bytes=1.5-2",
        "bytes=-0-1",
        "bytes 0-1",
        "bytes:0-1",
        "items=0-1",
        "0-1",
        "bytes=0-1;",
        "bytes=0-9999999999999999999",
        "bytes=9999999999999999999-",
    ],
)
def test_no_several_reversed_or_unreadable_ranges_ask_for_the_whole_object(header):
    assert _byte_range(header, None, TAG) is None


@pytest.mark.parametrize("if_range", [TAG, f" {TAG} "])
def test_an_if_range_naming_the_etag_keeps_the_range(if_range):
    assert _byte_range("bytes=0-9", if_range, TAG) == ByteRange(first=0, last=9)


@pytest.mark.parametrize(
    ("if_range", "tag"),
    [
        ('"another"', TAG),
        (f"W/{TAG}", TAG),
        (HASH, TAG),
        ("Wed, 21 Oct 2015 07:28:00 GMT", TAG),
        ("", TAG),
        (TAG, None),
    ],
    ids=["another-etag", "weak-etag", "unquoted", "a-date", "empty", "no-etag"],
)
def test_an_if_range_not_naming_the_current_etag_asks_for_the_whole_object(if_range, tag):
    assert _byte_range("bytes=0-9", if_range, tag) is None


def test_without_if_range_the_etag_does_not_matter():
    assert [_byte_range("bytes=-5", None, TAG), _byte_range("bytes=-5", None, None)] == [
        ByteRange(suffix=5),
        ByteRange(suffix=5),
    ]


# --- content headers ------------------------------------------------------------------------

PLAIN = {"X-Content-Type-Options": "nosniff", "Accept-Ranges": "bytes"}
ATTACHMENT = {
    "Content-Type": "application/octet-stream",
    "X-Content-Type-Options": "nosniff",
    "Accept-Ranges": "bytes",
    "Content-Disposition": "attachment",
}


@pytest.mark.parametrize(
    ("mime_type", "content_type"),
    [
        ("image/png", "image/png"),
        ("audio/mpeg", "audio/mpeg"),
        ("application/pdf", "application/pdf"),
        (
            "application/vnd.openxmlformats-officedocument.wordprocessingml.document",
            "application/vnd.openxmlformats-officedocument.wordprocessingml.document",
        ),
        ("Image/PNG", "image/png"),
        ("text/plain; charset=utf-8", "text/plain"),
        ("  Audio/Wav ;codecs=1", "audio/wav"),
    ],
)
def test_the_stored_type_is_kept_bare_and_lower_case(mime_type, content_type):
    assert _headers({"mime_type": mime_type}, "agno/media/object.bin") == {"Content-Type": content_type, **PLAIN}


@pytest.mark.parametrize(
    "mime_type",
    ["png", "image", "image/", "/png", "image/png/x", "image /png", "text/html,image/png", "image/p\u00e9ng", "a/b c"],
)
def test_an_invalid_stored_type_is_an_octet_stream(mime_type):
    assert _headers({"mime_type": mime_type}, "agno/media/object.png") == {
        "Content-Type": "application/octet-stream",
        **PLAIN,
    }


@pytest.mark.parametrize(
    "mime_type",
    [
        "text/html",
        "image/svg+xml",
        "application/xhtml+xml",
        "text/javascript",
        "application/javascript",
        "application/x-javascript",
        "text/xml",
        "application/xml",
        "TEXT/HTML; charset=utf-8",
        "Image/SVG+XML",
        # Beyond AgentOS's list: every XML document type, XSL, multipart.
        "application/rss+xml",
        "application/atom+xml",
        "application/mathml+xml",
        "application/vnd.example+xml",
        "text/xsl",
        "multipart/related",
    ],
)
def test_a_type_a_browser_would_run_is_an_octet_stream_attachment(mime_type):
    assert _headers({"mime_type": mime_type}, "agno/media/object.png") == ATTACHMENT


@pytest.mark.parametrize(
    ("reference", "key", "content_type"),
    [
        ({}, "agno/media/picture.png", "image/png"),
        ({"mime_type": None}, "agno/media/report.pdf", "application/pdf"),
        ({"mime_type": ""}, "agno/media/picture.PNG", "image/png"),
        ({"mime_type": 42}, "agno/media/picture.png", "image/png"),
        ({}, "agno/media/no-extension", "application/octet-stream"),
        ({}, "agno/media/unknown.extension-nobody-has", "application/octet-stream"),
        # Compressed bytes are not what the inner extension says.
        ({}, "agno/media/picture.png.gz", "application/octet-stream"),
        ({}, "agno/media/report.pdf.bz2", "application/octet-stream"),
    ],
)
def test_a_missing_type_is_guessed_from_the_keys_extension(reference, key, content_type):
    assert _headers(reference, key) == {"Content-Type": content_type, **PLAIN}


@pytest.mark.parametrize("key", ["agno/media/page.html", "agno/media/drawing.svg", "agno/media/page.xhtml"])
def test_a_guessed_type_a_browser_would_run_is_an_octet_stream_attachment(key):
    assert _headers({}, key) == ATTACHMENT


def test_a_sha256_content_hash_is_the_etag():
    assert _headers({"mime_type": "image/png", "content_hash": HASH}, KEY) == {
        "Content-Type": "image/png",
        **PLAIN,
        "ETag": TAG,
    }


def test_an_active_type_with_a_content_hash_keeps_the_etag():
    assert _headers({"mime_type": "text/html", "content_hash": HASH}, KEY) == {**ATTACHMENT, "ETag": TAG}


@pytest.mark.parametrize(
    "content_hash",
    [
        HASH.upper(),
        HASH[:-1],
        HASH + "0",
        f'"{HASH}"',
        f"{HASH[:-1]}g",
        "",
        None,
        int(HASH, 16),
        f'{HASH[:32]}"\r\nSet-Cookie: a=b',
    ],
    ids=["upper-case", "63-digits", "65-digits", "quoted", "not-hex", "empty", "none", "a-number", "header-injection"],
)
def test_any_other_content_hash_gives_no_etag(content_hash):
    assert _headers({"mime_type": "image/png", "content_hash": content_hash}, KEY) == {
        "Content-Type": "image/png",
        **PLAIN,
    }
