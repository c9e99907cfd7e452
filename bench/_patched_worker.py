"""`flask --app wsgi worker` with one of profile_ingest.py's proposed changes patched
in (for ingest_throughput.py --variant); the code under chargers/ is not touched.

    python bench/_patched_worker.py VARIANT
"""

from __future__ import annotations

import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
sys.path.insert(0, str(HERE.parent))

if __name__ == "__main__":
    import profile_ingest
    from flask.cli import main as flask_main

    profile_ingest.VARIANTS[sys.argv[1]]()
    sys.argv = ["flask", "--app", "wsgi", "worker"]
    flask_main()
