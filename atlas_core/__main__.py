"""``python -m atlas_core``: the atlas CLI, also under ``torchrun`` for data-parallel runs.

``torchrun --nproc-per-node 2 -m atlas_core run --data DIR ...`` trains one run on two
ranks (see ``atlas_core.distributed``); only rank 0 prints and writes the run folder.
"""

from __future__ import annotations

import os
import sys

from atlas_core.cli import main
from atlas_core.engine import distributed

__all__ = ["run"]


def run(argv: list[str] | None = None) -> int:
    """Run the CLI; ranks other than 0 keep quiet, and after success all leave together.

    After a failure the rank exits at once: torchrun then stops the other ranks.
    """
    if distributed.requested() and os.environ.get("RANK", "0") != "0":
        sys.stdout = open(os.devnull, "w")  # noqa: SIM115 - lives as long as the process
    code = main(argv)
    if code == 0:
        distributed.finish(distributed.current())
    return code


if __name__ == "__main__":
    sys.exit(run())
