"""What every bench script shares: the machine facts its RESULT records and the RESULT line itself.

Bench scripts run as ``python bench/<name>.py`` (the folder is then on ``sys.path``), so they import this
module as ``from _common import machine, print_result``.
"""

from __future__ import annotations

import json
import os
import platform
from collections.abc import Mapping
from typing import Any


def machine() -> dict[str, Any]:
    """CPU count, architecture and the 1-minute load average when the script measured (bench/RESULTS.md
    records them beside every number: a loaded machine's timings are not an idle machine's)."""
    return {"cpus": os.cpu_count(), "machine": platform.machine(), "load_avg_1m": round(os.getloadavg()[0], 2)}


def print_result(result: Mapping[str, Any], hide: tuple[str, ...] = ()) -> Mapping[str, Any]:
    """Print ``result`` as aligned ``key: value`` lines (without the keys in ``hide``), then the one
    ``RESULT {json}`` line that ends every bench script; return ``result``."""
    shown = [key for key in result if key not in hide]
    width = max((len(key) for key in shown), default=0)
    for key in shown:
        print(f"{key:>{width}}: {result[key]}")
    print("RESULT " + json.dumps(result))
    return result
