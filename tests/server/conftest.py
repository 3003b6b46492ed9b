import sys
from pathlib import Path

# tests/ holds small shared helpers (tlsutil) importable by every test folder.
sys.path.insert(0, str(Path(__file__).parents[1]))
