"""The text package databases of the operating systems: dpkg's status file (and
distroless `status.d/` files) and apk's `installed`, and `os-release`."""

from __future__ import annotations

from collections.abc import Iterator

from registry.scan.inventory import APK, DEB, Distro, Package


def _paragraphs(text: str) -> Iterator[dict[str, str]]:
    """RFC 822-style stanzas separated by blank lines (continuations dropped)."""
    fields: dict[str, str] = {}
    for line in text.splitlines():
        if not line.strip():
            if fields:
                yield fields
            fields = {}
        elif not line[0].isspace() and ":" in line:
            key, _, value = line.partition(":")
            fields[key.strip()] = value.strip()
    if fields:
        yield fields


def dpkg(data: bytes) -> list[Package]:
    """The installed packages of a dpkg status file (`Status: ... installed`; a
    `status.d/` stanza has no Status and is installed by being there)."""
    out = []
    for p in _paragraphs(data.decode("utf-8", "replace")):
        if "Package" not in p or "Version" not in p:
            continue
        status = p.get("Status")
        if status is not None and status.split()[-1:] != ["installed"]:
            continue
        source = p.get("Source", "").split(" ")[0]
        out.append(Package(DEB, p["Package"], p["Version"], source or p["Package"],
                           p.get("Architecture", "")))
    return out


def apk(data: bytes) -> list[Package]:
    """The packages of apk's `lib/apk/db/installed` (P: name, V: version, A: arch,
    o: origin, the source package)."""
    out = []
    fields: dict[str, str] = {}
    for line in [*data.decode("utf-8", "replace").splitlines(), ""]:
        if not line:
            if "P" in fields and "V" in fields:
                out.append(Package(APK, fields["P"], fields["V"],
                                   fields.get("o", fields["P"]), fields.get("A", "")))
            fields = {}
        elif len(line) > 1 and line[1] == ":":
            fields.setdefault(line[0], line[2:])
    return out


def os_release(data: bytes) -> Distro | None:
    """The distribution `os-release` names (None without an ID)."""
    values: dict[str, str] = {}
    for line in data.decode("utf-8", "replace").splitlines():
        key, eq, value = line.strip().partition("=")
        if eq and key.isidentifier():
            values[key] = value.strip().strip("\"'")
    if not values.get("ID"):
        return None
    return Distro(values["ID"], values.get("VERSION_ID", ""), values.get("PRETTY_NAME", ""),
                  values.get("VERSION_CODENAME", ""))
