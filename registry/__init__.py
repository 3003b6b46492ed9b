"""registry: an OCI Distribution Spec v1.1 registry that doubles as a Spack build cache."""

__version__ = "0.1.0"
