"""``python utils/gpusim ...`` or ``python -m gpusim ...`` (with utils/ on the path): see :mod:`gpusim.cli`."""

import sys
from pathlib import Path

if not __package__:  # run as a directory: make the package importable
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from gpusim.cli import main  # noqa: E402

if __name__ == "__main__":
    sys.exit(main())
