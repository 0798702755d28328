"""Typed settings for the trigger, the portal and the Celery workers, read once from OPSSEER_* variables."""

from functools import lru_cache

from pydantic import Field, SecretStr, ValidationError
from pydantic_settings import BaseSettings, SettingsConfigDict

DEFAULT_MAX_BODY_BYTES = 4 * 1024 * 1024
DEFAULT_STALE_AFTER_SECONDS = 6 * 3600


class SettingsError(RuntimeError):
    """A required setting is missing or invalid; the message names the variable."""


class Settings(BaseSettings):
    """OpsSeer settings. Each field is read from OPSSEER_<FIELD NAME IN UPPER CASE>."""

    model_config = SettingsConfigDict(env_prefix="OPSSEER_", extra="ignore")

    # Both URLs may carry a password, so they are left out of the settings' repr (and so out of logs).
    database_url: str = Field(repr=False, description="SQLAlchemy URL of the PostgreSQL incident store (postgresql+psycopg://...).")
    broker_url: str = Field(repr=False, description="Redis URL of the Celery broker and result backend.")
    # Required by the trigger (checked when its app is created); workers do not need it.
    webhook_token: SecretStr | None = Field(None, description="Bearer token Alertmanager must send to the trigger.")

    prometheus_url: str = "http://127.0.0.1:19090"
    portal_url: str = Field("http://127.0.0.1:18080", description="Public base URL of the portal, used in links.")
    max_body_bytes: int = Field(DEFAULT_MAX_BODY_BYTES, gt=0)
    stale_after_seconds: int = Field(DEFAULT_STALE_AFTER_SECONDS, gt=0)
    stale_check_interval_seconds: float = Field(60.0, gt=0)
    pipeline_sweep_interval_seconds: float = Field(30.0, gt=0)
    snapshot_lookback_seconds: int = Field(1800, gt=0)
    prometheus_timeout_seconds: float = Field(10.0, gt=0)
    task_max_retries: int = Field(5, ge=0)
    task_retry_backoff_seconds: float = Field(2.0, gt=0)
    task_retry_backoff_max_seconds: float = Field(300.0, gt=0)

    # Model services. Without a gateway URL the forecast, runbook and transcription steps record
    # "not configured" and the pipeline goes on.
    models_url: str | None = Field(None, description="Base URL of the BentoML model gateway, such as http://127.0.0.1:13000.")
    models_timeout_seconds: float = Field(60.0, gt=0)
    forecast_lookback_seconds: int = Field(3600, gt=0, description="SLI history sent to the forecaster.")
    forecast_step_seconds: float = Field(15.0, gt=0)
    forecast_horizon_steps: int = Field(40, gt=0, le=64)

    # Slack integration. Without a bot token and a channel the Slack steps record "not configured".
    slack_bot_token: SecretStr | None = Field(None, description="Bot token (xoxb-...) that posts incident messages.")
    slack_channel: str | None = Field(None, description="Channel id (C...) or name that receives incident messages.")
    slack_signing_secret: SecretStr | None = Field(None, description="Signing secret that verifies requests from Slack.")
    slack_app_token: SecretStr | None = Field(None, description="App-level token (xapp-...) for Socket Mode.")
    slack_api_url: str = Field("https://slack.com/api/", description="Base URL of the Slack Web API.")
    slack_timeout_seconds: float = Field(10.0, gt=0, description="Timeout of each Slack Web API call.")
    # A claimed but unfinished post older than this is taken over by the next run, after a history check.
    slack_post_lease_seconds: float = Field(60.0, gt=0)
    slack_thread_sync_interval_seconds: float = Field(10.0, gt=0)

    # Incident-call recordings (upload and transcription). Keep the limit at or below the gateway's
    # OPSSEER_ASR_MAX_BYTES, or uploads between the two limits are stored but rejected by the gateway.
    recording_max_bytes: int = Field(25 * 1024 * 1024, gt=0, description="Recording uploads above this many bytes get 413.")


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    """Load the settings once, raising SettingsError that names every missing or invalid variable."""
    try:
        return Settings()
    except ValidationError as exc:
        problems = []
        for error in exc.errors():
            name = "OPSSEER_" + "_".join(str(part) for part in error["loc"]).upper()
            problems.append(f"{name}: {error['msg']}")
        raise SettingsError("invalid OpsSeer settings: " + "; ".join(problems)) from None
