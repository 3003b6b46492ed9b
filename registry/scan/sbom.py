"""A scan result as an SPDX 2.3 JSON document (`application/spdx+json`): one SPDX
package for the image (the scanned manifest, its package URL `pkg:oci/...`) that
DESCRIBES the document and CONTAINS one package per package found, each with its
package URL as a PACKAGE-MANAGER external reference.

The document is a function of the stored result alone: the same result gives the
same bytes (and so the same referrer digest); its namespace and creation time come
from the manifest digest and the scan's time, so a re-scan is a new document.
"""

from __future__ import annotations

import json
import re
import time
from typing import Any

from packageurl import PackageURL

from registry import __version__

MEDIA_TYPE = "application/spdx+json"
# Where namespaces point: a name of ours, not a URL anyone must be able to fetch
# (SPDX asks only for a unique URI); `.invalid` is reserved never to resolve.
NAMESPACE_BASE = "https://registry.invalid/spdx"
TOOL = f"Tool: registry-{__version__}"
IMAGE_ID = "SPDXRef-Image"
NOASSERTION = "NOASSERTION"


def _created(scanned_at: Any) -> str:
    when = scanned_at if isinstance(scanned_at, int | float) else 0
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(when))


def _image_purl(repo: str, digest: str) -> str:
    # The purl spec's `oci` type: the last path component is the name, the digest
    # the version, the full repository a qualifier (there is no host to name).
    name = repo.rsplit("/", 1)[-1]
    return PackageURL(type="oci", name=name, version=digest,
                      qualifiers={"repository_url": repo}).to_string()


def _spdx_text(value: Any) -> str:
    # Names and versions come from the image's own databases: kept to one line.
    return re.sub(r"[\x00-\x1f\x7f]", " ", str(value))[:1000]


def _package(index: int, found: dict[str, Any]) -> dict[str, Any]:
    pkg: dict[str, Any] = {
        "SPDXID": f"SPDXRef-Package-{index}",
        "name": _spdx_text(found.get("name") or "unknown"),
        "downloadLocation": NOASSERTION,
        "filesAnalyzed": False,
    }
    if found.get("version"):
        pkg["versionInfo"] = _spdx_text(found["version"])
    if found.get("purl"):
        pkg["externalRefs"] = [{"referenceCategory": "PACKAGE-MANAGER",
                                "referenceType": "purl",
                                "referenceLocator": str(found["purl"])}]
    where = [f"{k} {found[k]}" for k in ("ecosystem", "path", "layer") if found.get(k)]
    if where:
        pkg["sourceInfo"] = _spdx_text("; ".join(where))
    return pkg


def document(result: dict[str, Any], repo: str) -> dict[str, Any]:
    """The SPDX 2.3 document of `result` (a stored scan result, registry/scan/results.py)
    of the manifest it names, pushed to `repo`."""
    digest = str(result["digest"])
    alg, _, hex_ = digest.partition(":")
    stamp = int(float(result.get("scanned_at") or 0) * 1000)
    packages = [_package(i, p) for i, p in
                enumerate((p for p in result.get("packages") or [] if isinstance(p, dict)), 1)]
    image = {"SPDXID": IMAGE_ID, "name": repo, "versionInfo": digest,
             "downloadLocation": NOASSERTION, "filesAnalyzed": False,
             "primaryPackagePurpose": "CONTAINER",
             "externalRefs": [{"referenceCategory": "PACKAGE-MANAGER",
                               "referenceType": "purl",
                               "referenceLocator": _image_purl(repo, digest)}]}
    relationships = [{"spdxElementId": "SPDXRef-DOCUMENT", "relationshipType": "DESCRIBES",
                      "relatedSpdxElement": IMAGE_ID}]
    relationships += [{"spdxElementId": IMAGE_ID, "relationshipType": "CONTAINS",
                       "relatedSpdxElement": p["SPDXID"]} for p in packages]
    return {
        "spdxVersion": "SPDX-2.3",
        "dataLicense": "CC0-1.0",
        "SPDXID": "SPDXRef-DOCUMENT",
        "name": f"{repo}@{digest}",
        "documentNamespace": f"{NAMESPACE_BASE}/{alg}/{hex_}/{stamp}",
        "creationInfo": {"creators": [TOOL], "created": _created(result.get("scanned_at"))},
        "packages": [image, *packages],
        "relationships": relationships,
    }


def encode(doc: dict[str, Any]) -> bytes:
    """The document's bytes: the same document, the same bytes."""
    return json.dumps(doc, sort_keys=True, separators=(",", ":")).encode()
