"""What the tests share: builders of inputs with known truth (synthetic videos and
tables, bad files, tiny shards and params), the hand-checked real truth, a local HTTP
server, and workers that misbehave on purpose. No test module imports another.

Imported as ``support`` (pytest puts ``tests/`` on the path: ``pythonpath`` in
pyproject.toml); the test folders have no ``__init__.py``, so no package named ``tests``
exists to collide with one a wheel installs.
"""

from pathlib import Path

REPO = Path(__file__).resolve().parents[2]  # the repository's root
