"""`opsseer eval SUITE`: run evaluation suites on the public corpus and write JSON, Markdown and plots."""

import logging
import os
import tempfile
import time
import traceback
from pathlib import Path

import click

from eval.errors import CorpusError, SuiteUnavailable
from eval.report import SuiteResult, build_report, environment, write_result
from eval.settings import EvalSettings
from eval.suites import SUITES, EvalContext, suite_module

logger = logging.getLogger(__name__)

# The suites drive the trigger and the stack hard on purpose (rejected bodies, truncated groups, component
# start-up), so these loggers' routine lines are hidden unless --verbose is given; errors still show.
QUIET_LOGGERS = (
    "functions.correlation", "functions.triggers", "opsseer.supervisor", "opsseer.postgres", "alembic",
    "alerting.render", "toyprod.load", "httpx",
)


def run_suite(name: str, context: EvalContext) -> SuiteResult:
    """Run one suite, record the machine it ran on, and write its JSON; a suite that cannot run is recorded so."""
    module = suite_module(name)
    started = time.monotonic()
    try:
        result = module.run(context)
    except SuiteUnavailable as exc:
        logger.warning("suite %s not run: %s", name, exc)
        result = SuiteResult(suite=name, title=module.TITLE, status=f"unavailable: {exc}", options=context.options())
    result.elapsed_seconds = round(time.monotonic() - started, 2)
    result.environment = environment()
    write_result(result, context.out_dir)
    return result


def rebuild_report(out_dir: Path) -> Path:
    # Suite modules are imported only for the sections present, so a report never needs torch for correlation.
    renderers = {name: (lambda result, name=name: suite_module(name).render(result)) for name in SUITES}
    return build_report(out_dir, renderers)


@click.command("eval")
@click.argument("suite", type=click.Choice([*SUITES, "all"]))
@click.option(
    "--corpus",
    "corpus_dir",
    type=click.Path(file_okay=False, path_type=Path),
    default=None,
    help="Folder of the public evaluation corpus [default: $OPSSEER_CORPUS_DIR].",
)
@click.option(
    "--out",
    "out_dir",
    type=click.Path(file_okay=False, path_type=Path),
    default=None,
    help="Results folder for the JSON files, report.md and plots/ [default: eval/results].",
)
@click.option("--limit", type=click.IntRange(1), default=None, help="Use at most N items per suite (series, questions, clips, cases).")
@click.option("--quick", is_flag=True, help="Shrink each suite's work (fewer forecast origins and horizons) for a fast check.")
@click.option("--no-progress", is_flag=True, help="Hide the progress bars.")
@click.option("--verbose", is_flag=True, help="Show the log lines of the trigger and the stack components too.")
@click.option("--work-dir", type=click.Path(file_okay=False, path_type=Path), default=None,
              help="Folder for the stacks and service logs the suites start [default: a temporary folder].")
def eval_command(
    suite: str, corpus_dir: Path | None, out_dir: Path | None, limit: int | None, quick: bool, no_progress: bool,
    work_dir: Path | None, verbose: bool,
) -> None:
    """Measure OpsSeer on public data: forecast, docqa, asr, correlation, pipeline, or all of them."""
    if not verbose:
        for name in QUIET_LOGGERS:
            logging.getLogger(name).setLevel(logging.ERROR)
    settings = EvalSettings()
    corpus_dir = corpus_dir or settings.corpus_dir
    out_dir = (out_dir or settings.eval_results_dir).resolve()
    names = list(SUITES) if suite == "all" else [suite]

    with tempfile.TemporaryDirectory(prefix="opsseer-eval-") as temporary:
        context = EvalContext(
            corpus_root=corpus_dir,
            out_dir=out_dir,
            work_dir=(work_dir or Path(temporary)).resolve(),
            limit=limit,
            quick=quick,
            show_progress=not no_progress,
        )
        failed = []
        for name in names:
            context.console.print(f"[bold]suite {name}[/bold]")
            try:
                result = run_suite(name, context)
            except CorpusError as exc:
                raise click.ClickException(str(exc)) from None
            except Exception as exc:
                # One broken suite must not hide the others' results; the traceback goes to the log.
                logger.error("suite %s failed: %s\n%s", name, exc, traceback.format_exc())
                failed.append(f"{name}: {type(exc).__name__}: {exc}")
                continue
            headline = result.summary.get("headline") or result.status
            context.console.print(f"suite {name}: {headline} ({result.elapsed_seconds:.1f} s)")

    report = rebuild_report(out_dir)
    click.echo(f"report: {os.path.relpath(report)}")
    if failed:
        raise click.ClickException("suites failed: " + "; ".join(failed))
