"""The registry's trust material: the key store's public keys and Notation's trust store
(`[trust] notation_certs`), as `verify.TrustMaterial`."""

from __future__ import annotations

from pathlib import Path

from cryptography import x509

from registry.trust.checks import TrustedKey
from registry.trust.keys import KeyProblem, KeyStore
from registry.trust.notation import TrustStore, load_certificates
from registry.trust.verify import KeySource, TrustMaterial


def load_trust_store(entries: list[str]) -> TrustStore:
    """The certificates of `[trust] notation_certs` ("PATH" named after the file without
    its suffix, or "NAME=PATH"); ValueError naming the entry that cannot be read. Reads
    files: call it before serving, or on a thread."""
    store: list[tuple[str, x509.Certificate]] = []
    for entry in entries:
        name, _, path = entry.partition("=") if "=" in entry else ("", "", entry)
        name = name.strip() or Path(path).stem
        try:
            data = Path(path).read_bytes()
            if len(data) > 1 << 20:
                raise ValueError("larger than 1 MiB")
            store += [(name, cert) for cert in load_certificates(data)]
        except (OSError, ValueError) as exc:
            raise ValueError(f"[trust] notation_certs: {entry!r}: {exc}") from None
    return tuple(store)


def key_source(keys: KeyStore | None, store: TrustStore = ()) -> KeySource:
    """Trust material read afresh from the key store at each call."""
    async def material() -> TrustMaterial:
        trusted: list[TrustedKey] = []
        for k in await keys.list() if keys is not None else []:
            try:
                trusted.append(TrustedKey(k.name, k.public_key))
            except KeyProblem:
                continue  # a damaged key file verifies nothing
        return TrustMaterial(tuple(trusted), store)

    return material
