"""The API's settings (``HYDRA_*`` environment variables)."""

from __future__ import annotations

import secrets
from typing import Literal

from pydantic import Field, field_validator, model_validator

from hydra_api.probes import parse_targets
from hydra_common.beam import BeamSettings
from hydra_common.settings import PositiveDuration

# Values people paste from examples; a production deployment must not run with them.
PLACEHOLDER_SECRETS = frozenset(
    {"", "changeme", "change-me", "changethis", "secret", "dev", "development", "hydra", "test"}
)
MIN_SECRET_LENGTH = 32


class ApiSettings(BeamSettings):
    """Settings of the REST API, its sessions, and how it starts training runs (and the
    beam settings it shares with the keeper, for the Run page)."""

    api_host: str = Field("0.0.0.0", description="Address the API's HTTP server binds.")
    api_port: int = Field(8080, description="Port of the API (REST, SSE, `/metrics`, front end).")
    max_body_bytes: int = Field(
        1_000_000, ge=1024, description="Largest request body accepted; larger gets 413."
    )
    secret_key: str = Field(
        "",
        description=(
            "Key that signs session cookies and CSRF tokens. Required in production (at least "
            "32 characters, no placeholder); in development an empty key is replaced by a "
            "random one per process, so sessions end when the API restarts."
        ),
    )
    trusted_user_header: str = Field(
        "",
        description=(
            "Header set by an authenticating reverse proxy that names the user (single "
            "sign-on); empty = off. Believed only from `HYDRA_TRUSTED_PROXIES`. Users first "
            "seen this way are created as viewers (or by `HYDRA_SSO_GROUP_ROLES`)."
        ),
    )
    trusted_proxies: str = Field(
        "",
        description=(
            "Addresses or CIDRs of the reverse proxies (comma-separated) whose SSO and "
            "`X-Forwarded-*` headers are believed; empty = nobody's."
        ),
    )
    trusted_groups_header: str = Field(
        "", description="Header in which the proxy lists the user's groups (optional)."
    )
    sso_group_roles: str = Field(
        "",
        description=(
            "`group=role,...`: the role of an SSO user from the proxy's groups (highest wins,"
            " kept up to date on every request); empty = new SSO users are viewers."
        ),
    )
    sso_local_accounts: bool = Field(
        False,
        description="Let the SSO header log in as an account that has a local password.",
    )
    admin_password: str = Field(
        "",
        description="Creates the user `admin` with this password at start-up if no admin exists.",
    )
    session_hours: PositiveDuration = Field(12.0, description="Lifetime of a login session.")
    cookie_secure: bool | None = Field(
        None,
        description=(
            "Mark cookies Secure; empty = automatic (when the request came over https, "
            "directly or as told by `X-Forwarded-Proto`)."
        ),
    )
    public_read: bool = Field(
        True,
        description=(
            "Let anonymous visitors read the live views (Run, Log, Status, News, images); "
            "labelling and every change always need a login."
        ),
    )
    service_token: str = Field(
        "",
        description=(
            "Bearer token with which hall scripts may record run conditions "
            "(`Authorization: Bearer ...`); empty = off."
        ),
    )
    login_failures_per_minute: int = Field(
        5,
        ge=1,
        description=(
            "Failed logins per username and client address before HTTP 429 (a username gets"
            " 4 times that from all addresses together, the whole API 50 times that)."
        ),
    )
    stale_minutes: PositiveDuration = Field(
        10.0, description="A Run-page card with no update for this long is marked stale."
    )
    sse_poll_seconds: PositiveDuration = Field(
        5.0,
        description=(
            "How often the API reads Run-page updates without a commit notice from the "
            "keeper (a fallback: a notice makes it read at once; one query)."
        ),
    )
    keeper_address: str = Field(
        "127.0.0.1:50052",
        description=(
            "gRPC address of the keeper (`KeeperService`); the API subscribes to its commit "
            "notices, which push Run-page updates (empty: poll only)."
        ),
    )
    sse_heartbeat_seconds: PositiveDuration = Field(
        15.0, description="Interval of keep-alive comments on event streams."
    )
    status_targets: str = Field(
        "",
        description=(
            "Services whose live figures the Status page shows (the balancer's queue depth,"
            " the feeder's pending orders, ...): comma-separated `service=URL` of their"
            " Prometheus `/metrics`, e.g. `balancer=http://hydra-balancer:9102/metrics`."
            " `hydra up` and the Helm chart fill it in."
        ),
    )
    status_probe_timeout: PositiveDuration = Field(
        1.0, le=30, description="Seconds the Status page waits for a service's `/metrics`."
    )
    static_dir: str = Field(
        "", description="Built front end to serve; empty = the package's `static/` folder."
    )
    training_backend: Literal["local", "kubernetes"] = Field(
        "local",
        description="`local`: `hydra train` as a child process; `kubernetes`: a Job per run.",
    )
    training_command: str = Field(
        "",
        description=(
            "Command that starts a local training run (split on spaces, followed by "
            "`PLOT_TYPE --run-id N --arch A --sampling S [--epochs E] --init I`); empty = this "
            "Python's `hydra train`."
        ),
    )
    training_job_template: str = Field(
        "",
        description=(
            "File holding the chart's training Job (its `<release>-training-job` ConfigMap); "
            "empty = the API's own minimal Job."
        ),
    )
    kubernetes_host: str = Field(
        "", description="Kubernetes API server URL; empty = the in-cluster configuration."
    )
    training_namespace: str = Field(
        "", description="Namespace of training Jobs; empty = the API pod's own namespace."
    )
    training_image: str = Field("", description="Container image of training Jobs.")
    training_gpus: int = Field(1, ge=0, description="`nvidia.com/gpu` each training Job asks for.")
    training_service_account: str = Field("", description="Service account of training Jobs.")
    training_env_secret: str = Field(
        "", description="Secret whose keys become the training Job's environment (database URL)."
    )
    training_env_configmap: str = Field(
        "", description="ConfigMap whose keys become the training Job's environment."
    )
    training_models_claim: str = Field(
        "", description="PersistentVolumeClaim of the model repository, mounted in training Jobs."
    )
    training_storage_claim: str = Field(
        "", description="PersistentVolumeClaim of the image storage, mounted in training Jobs."
    )
    training_node_selector: dict[str, str] = Field(
        default_factory=dict, description="Node selector of training Jobs (JSON object)."
    )

    @field_validator("status_targets")
    @classmethod
    def _check_targets(cls, value: str) -> str:
        parse_targets(value)  # a clear error at start-up, not a broken Status page later
        return value

    @field_validator("trusted_proxies")
    @classmethod
    def _check_proxies(cls, value: str) -> str:
        from hydra_api.sso import parse_proxies

        parse_proxies(value)  # a malformed CIDR fails at start-up, not at every request
        return value

    @field_validator("sso_group_roles")
    @classmethod
    def _check_group_roles(cls, value: str) -> str:
        from hydra_api.sso import parse_group_roles

        parse_group_roles(value)
        return value

    @model_validator(mode="after")
    def _check_secret(self) -> ApiSettings:
        weak = (
            self.secret_key.strip().lower() in PLACEHOLDER_SECRETS
            or len(self.secret_key) < MIN_SECRET_LENGTH
        )
        if self.environment == "production":
            if weak:
                raise ValueError(
                    "HYDRA_SECRET_KEY must be set to a random value of at least "
                    f"{MIN_SECRET_LENGTH} characters in production"
                )
            if self.admin_password and self.admin_password.lower() in PLACEHOLDER_SECRETS:
                raise ValueError("HYDRA_ADMIN_PASSWORD is a placeholder; choose a real one")
        elif not self.secret_key:
            self.secret_key = secrets.token_urlsafe(48)
        return self
