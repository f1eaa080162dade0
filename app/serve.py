"""``python -m app.serve``: the HTTP service under uvicorn (the container's command).

HOST/PORT/MODEL_DIR/LOG_LEVEL/GIT_SHA come from the environment (see ``app.settings``); the
image sets HOST=0.0.0.0, a local run listens on 127.0.0.1:8080.
"""

from __future__ import annotations

import uvicorn

from app.settings import Settings


def main() -> None:
    settings = Settings.from_env()
    uvicorn.run(
        "app.service:app_from_env",
        factory=True,
        host=settings.host,
        port=settings.port,
        log_config=None,  # app.logs configures JSON logging in the factory
        access_log=False,
        proxy_headers=True,
        timeout_graceful_shutdown=20,
    )


if __name__ == "__main__":
    main()
