"""The derived SQLite index (search, platforms, usage); rebuildable from storage."""
