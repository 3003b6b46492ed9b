"""The domain: repositories, blobs, uploads, manifests, tags, referrers.

Nothing here imports aiohttp, knows a storage path or speaks SQL.
"""
