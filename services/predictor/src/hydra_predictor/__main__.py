"""``python -m hydra_predictor``: run a predictor replica."""

from __future__ import annotations

import asyncio

from hydra_predictor.service import main

if __name__ == "__main__":
    asyncio.run(main())
