"""S3's XML: request bodies parsed safely, response documents built in its namespace.

Request bodies are read whole but bounded (the caller passes the limit), and a
document with a DTD is refused before parsing: entity declarations are how XML
bombs and external entities get in, and no S3 request has one. Elements are
matched by local name, with or without S3's namespace (clients differ).
"""

from __future__ import annotations

import re
import xml.etree.ElementTree as ET
from datetime import UTC, datetime
from email.utils import formatdate
from urllib.parse import quote

from registry.core.errors import ObjectError

NS = "http://s3.amazonaws.com/doc/2006-03-01/"
_DTD = re.compile(rb"<!(?:DOCTYPE|ENTITY)", re.IGNORECASE)
# XML 1.0 cannot carry these characters at all, even escaped.
_NOT_XML = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\ud800-\udfff\ufffe\uffff]")


def malformed(message: str = "the XML you provided was not well-formed") -> ObjectError:
    return ObjectError("MalformedXML", message)


def parse(body: bytes) -> ET.Element:
    """The root of a request document; MalformedXML for anything else."""
    if _DTD.search(body):
        raise malformed("document type declarations are not allowed")
    try:
        return ET.fromstring(body)
    except ET.ParseError:
        raise malformed() from None


def local(tag: str) -> str:
    return tag.rpartition("}")[2]


def children(elem: ET.Element, name: str) -> list[ET.Element]:
    return [c for c in elem if local(c.tag) == name]


def text_of(elem: ET.Element, name: str) -> str | None:
    found = children(elem, name)
    return (found[0].text or "") if found else None


def http_date(ts: float) -> str:
    return formatdate(ts, usegmt=True)


def iso_date(ts: float) -> str:
    return datetime.fromtimestamp(ts, UTC).strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z"


def encode_name(value: str, url: bool) -> str:
    """A key or prefix as a listing writes it: percent-encoded with
    `encoding-type=url` (every byte but unreserved characters and `/`), else as
    is, with characters XML cannot carry replaced by their percent-encoding."""
    if url:
        return quote(value, safe="/")
    return _NOT_XML.sub(lambda m: quote(m.group(0), safe=""), value)


class Doc:
    """A response document: an element tree in S3's namespace, serialised once."""

    def __init__(self, root: str) -> None:
        self.root = ET.Element(root, xmlns=NS)

    def add(self, parent: ET.Element | None, name: str, text: object = None) -> ET.Element:
        elem = ET.SubElement(self.root if parent is None else parent, name)
        if text is not None:
            elem.text = text if isinstance(text, str) else str(text)
        return elem

    def bytes(self) -> bytes:
        return ET.tostring(self.root, encoding="utf-8", xml_declaration=True)
