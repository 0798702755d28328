"""The Celery application: Redis broker and result backend, late acknowledgement, routes and beat schedule.

Connection settings are read from OPSSEER_* variables when the configuration is first used, not at import,
so importing this module needs no environment.
"""

from datetime import timedelta

from celery import Celery

from functions.settings import get_settings

TASK_MODULES = [
    "functions.tasks.pipelines",
    "functions.tasks.snapshot",
    "functions.tasks.enrichment",
    "functions.tasks.slack",
    "functions.tasks.slack_bot",
    "functions.tasks.summary",
    "functions.tasks.stale",
    "functions.tasks.transcribe",
    "functions.tasks.github",
]

app = Celery("opsseer", include=TASK_MODULES)
app.conf.update(
    task_acks_late=True,
    task_reject_on_worker_lost=True,
    worker_prefetch_multiplier=1,
    task_serializer="json",
    result_serializer="json",
    accept_content=["json"],
    result_expires=timedelta(days=1),
    broker_connection_retry_on_startup=True,
    # A short connect timeout keeps the trigger fast to fail over to the pipeline sweep when Redis is down.
    broker_transport_options={"socket_connect_timeout": 2, "socket_timeout": 5},
    redis_socket_connect_timeout=2,
    task_default_queue="opsseer",
    worker_hijack_root_logger=True,
    worker_log_format="%(asctime)s %(levelname)s %(processName)s: %(message)s",
    worker_task_log_format="%(asctime)s %(levelname)s %(task_name)s[%(task_id)s]: %(message)s",
)


def _settings_defaults() -> dict:
    settings = get_settings()
    return {
        "broker_url": settings.broker_url,
        "result_backend": settings.broker_url,
        "beat_schedule": {
            "mark-stale-incidents": {
                "task": "opsseer.mark_stale_incidents",
                "schedule": settings.stale_check_interval_seconds,
            },
            "sweep-pending-pipelines": {
                "task": "opsseer.sweep_pending_pipelines",
                "schedule": settings.pipeline_sweep_interval_seconds,
            },
            "sync-slack-threads": {
                "task": "opsseer.sync_slack_threads",
                "schedule": settings.slack_thread_sync_interval_seconds,
            },
            "sync-github-comments": {
                "task": "opsseer.sync_github_comments",
                "schedule": settings.github_comment_sweep_interval_seconds,
            },
        },
    }


app.add_defaults(_settings_defaults)
