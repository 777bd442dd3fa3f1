"""`make bench`: every benchmark, each in its own process (each builds a fresh database).

python -m bench            all of them, full size
python -m bench ingest     one of them; extra arguments go to it
"""

from __future__ import annotations

import subprocess
import sys

BENCHES = ["ingest", "claim", "audit", "report", "learning"]


def main() -> int:
    names = sys.argv[1:2] or BENCHES
    extra = sys.argv[2:]
    failed = 0
    for name in names:
        print(f"\n=== bench/{name}.py", flush=True)
        failed |= subprocess.call([sys.executable, "-m", f"bench.{name}", *extra])
    return failed


if __name__ == "__main__":
    sys.exit(main())
