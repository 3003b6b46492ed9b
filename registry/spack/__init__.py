"""Spack build caches: the server-kept index of each cache, the classic mirror
views (layouts v2 and v3) and the bridges between OCI and S3 pushes.

A *cache* is named like an OCI repository: the cache pushed to
`oci://HOST/<repo>` is also `https://HOST/spack/<repo>/` and, for a repository
whose name is a valid bucket (plus an optional prefix), `s3://<bucket>/<prefix>`
through the S3-compatible endpoint. Every spec a cache holds is one record
(`specs.SpecRecord`), kept by the journal in storage (`journal.py`).
"""
