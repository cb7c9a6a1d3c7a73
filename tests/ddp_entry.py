"""``torchrun`` target for the two-process test: ``wavemixer.cli`` with a check at process-group teardown.

Each rank reports how many DDP modules are still alive when the process group is destroyed. One that is
alive keeps the gloo backend referenced past ``destroy_process_group``, and its threads are then torn
down during interpreter finalisation, which intermittently aborts a finished run (SIGABRT).
"""

from __future__ import annotations

import gc
import sys

from torch.nn.parallel import DistributedDataParallel

import wavemixer.train.engine as engine
from wavemixer.cli import main

_cleanup = engine.cleanup_distributed


def _checked_cleanup() -> None:
    gc.collect()
    alive = sum(1 for obj in gc.get_objects() if type(obj) is DistributedDataParallel)
    print(f"DDP modules alive at process-group teardown: {alive}", file=sys.stderr, flush=True)
    _cleanup()


engine.cleanup_distributed = _checked_cleanup

if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
