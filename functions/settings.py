"""Typed settings for the trigger, the portal and the Celery workers, read once from OPSSEER_* variables."""

import re
from functools import lru_cache
from typing import Annotated, Literal

from pydantic import Field, SecretStr, ValidationError, field_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

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
    # GitHub issues. Without both the token and the repository the GitHub steps record "not configured".
    github_token: SecretStr | None = Field(None, description="GitHub token with write access to the repository's issues.")
    github_repository: str | None = Field(None, description="Repository for incident issues, as owner/name.")
    github_api_url: str = Field("https://api.github.com", description="REST API base URL; GitHub Enterprise uses https://HOST/api/v3.")
    github_labels: Annotated[list[str], NoDecode] = Field(["incident"], description="Comma-separated labels of new issues.")
    github_assignees: Annotated[list[str], NoDecode] = Field([], description="Comma-separated logins assigned to new issues.")
    github_refire: Literal["reopen", "new"] = Field("reopen", description="What a new episode of an incident does with its last issue.")
    github_timeout_seconds: int = Field(10, gt=0, description="Timeout of each GitHub API request.")
    github_seconds_between_requests: float = Field(0.25, ge=0, description="Minimum pause between two requests of one worker process.")
    github_seconds_between_writes: float = Field(1.0, ge=0, description="Minimum pause between two writes of one worker process.")
    github_rate_limit_max_wait_seconds: float = Field(900.0, gt=0, description="Upper bound of the wait before retrying a rate-limited call.")
    github_rate_limit_max_retries: int = Field(10, ge=0, description="Retries of a rate-limited step before it records a failure.")
    github_comment_sweep_interval_seconds: float = Field(30.0, gt=0, description="How often beat posts new timeline entries as comments.")

    @field_validator("github_labels", "github_assignees", mode="before")
    @classmethod
    def _split_comma_separated(cls, value: object) -> object:
        if isinstance(value, str):
            return [item.strip() for item in value.split(",") if item.strip()]
        return value

    @field_validator("github_repository")
    @classmethod
    def _check_repository(cls, value: str | None) -> str | None:
        if value is not None and not re.fullmatch(r"[A-Za-z0-9_.-]+/[A-Za-z0-9_.-]+", value):
            raise ValueError(f"{value!r} is not a repository name: use owner/name, such as acme/incidents")
        return value or None

    @property
    def github_configured(self) -> bool:
        return bool(self.github_token and self.github_token.get_secret_value() and self.github_repository)


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
