"""``python -m hydra_modelserver``: run the bundled model server."""

from __future__ import annotations

import asyncio

from hydra_modelserver.service import main

if __name__ == "__main__":
    asyncio.run(main())
