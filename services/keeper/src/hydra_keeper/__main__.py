"""``python -m hydra_keeper``: run the keeper with settings from the environment."""

from __future__ import annotations

import asyncio

from hydra_keeper.service import main
from hydra_keeper.settings import KeeperSettings

if __name__ == "__main__":
    asyncio.run(main(KeeperSettings()))
