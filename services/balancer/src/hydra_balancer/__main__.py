"""``python -m hydra_balancer``: run the balancer with settings from the environment."""

import asyncio

from hydra_balancer.service import main
from hydra_balancer.settings import BalancerSettings

if __name__ == "__main__":
    asyncio.run(main(BalancerSettings()))
