"""``python -m hydra_api``: run the API with settings from the environment."""

import asyncio

from hydra_api.main import main
from hydra_api.settings import ApiSettings

if __name__ == "__main__":
    asyncio.run(main(ApiSettings()))
