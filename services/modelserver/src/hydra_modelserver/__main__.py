"""``python -m hydra_modelserver``: run the bundled model server."""

from __future__ import annotations

import asyncio

from hydra_modelserver.lean import without_keras

without_keras()  # before TensorFlow is imported: a restart several seconds shorter

from hydra_modelserver.service import main  # noqa: E402

if __name__ == "__main__":
    asyncio.run(main())
