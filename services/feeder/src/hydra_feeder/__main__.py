"""``python -m hydra_feeder``: run the feeder with settings from the environment."""

import asyncio

from hydra_feeder.service import main
from hydra_feeder.settings import FeederSettings

if __name__ == "__main__":
    asyncio.run(main(FeederSettings()))
