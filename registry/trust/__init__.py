"""Trust: the registry's signing keys, signatures in the formats clients use (cosign,
sigstore bundles, Notation), their verification, and the pull-time policy built on them."""
