"""The DataScan sensor: discover new raw files and request the hour's ODS -> DWD -> ADS run."""

import os
import time
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field

import dagster as dg

from lakehouse.defs.jobs import hourly_lakehouse_job
from lakehouse.defs.ods.discovery import (
    RAW_PREFIX,
    HourFiles,
    ScanCursor,
    ScanResult,
    newest_hour,
    scan,
    start_after,
    window_start,
)
from lakehouse.defs.ods.failed_hours import RetryPolicy, failed_hour_retries, hour_request
from lakehouse.defs.ods.footer_state import READERS, FooterJudge, HourFooters, state_key
from lakehouse.defs.ods.intake import hour_dir
from lakehouse.defs.ods.scan_limits import TICK_ATTEMPTS, ScanSettings, TickBudget
from lakehouse.partitions import hourly_partitions
from lakehouse.resources.faults import StorageConfigError, describe, store_errors
from lakehouse.resources.listing import ListedObject, list_folders, list_pages
from lakehouse.resources.storage import LakehouseStorage
from lakehouse.resources.zones import Zone
from lakehouse.tables import ODS_TABLE

DEFAULT_INTERVAL_SECONDS = 30
MAX_LOGGED_SKIPS = 20
# Entries of the file list and flags shown per observation; the counts are always whole.
MAX_SHOWN_FILES = 100
# Hours whose footers hit a store fault before the tick stops reading: a struggling store is
# left alone until the next tick.
MAX_FAULTED_HOURS = 3


def _interval_seconds() -> int:
    """How often the daemon ticks; a deployment setting, so it is read when the code loads."""
    return int(os.environ.get("LAKEHOUSE_DATASCAN_INTERVAL_SECONDS", DEFAULT_INTERVAL_SECONDS))


@dg.sensor(
    name="ods_datascan",
    job=hourly_lakehouse_job,
    minimum_interval_seconds=_interval_seconds(),
    default_status=dg.DefaultSensorStatus.RUNNING,
    description="Find new raw files (Parquet/ORC) per arrival hour and run that hour's layers; "
    "late files re-run their hour; junk is skipped and counted; failed hours are retried.",
)
def ods_datascan(
    context: dg.SensorEvaluationContext, storage: LakehouseStorage
) -> dg.SensorResult | dg.SkipReason:
    """One DataScan tick: list from the lateness window onwards, within the tick's budget."""
    settings = ScanSettings.from_env()
    budget = TickBudget(settings)
    cursor = ScanCursor.parse(context.cursor)
    try:
        raw = storage.bounded(storage.raw(), TICK_ATTEMPTS, settings.request_timeout_seconds)
        listed = _list_window(raw, cursor, settings, budget)
        result = scan(
            listed.objects,
            cursor,
            settings.lateness_hours,
            hourly_partitions.has_partition_key,
            complete=listed.complete,
        )
        done = _judge_changed_hours(context, storage, raw, result, budget, settings)
    except StorageConfigError as error:
        context.log.error(f"DataScan cannot work with this storage: {error}")
        return dg.SkipReason(f"storage configuration error: {error}")
    except _ListingFailed as failed:
        context.log.warning(f"cannot list the raw zone, cursor kept: {failed}")
        return dg.SkipReason(f"cannot list the raw zone (store fault), will retry: {failed}")

    resume = _resume_point(context, listed, result, done)
    new_cursor = cursor.committing(done.committed, settings.lateness_hours, resume)
    retries = _failed_hour_retries(context, new_cursor, settings)
    _log_tick(context, listed, result, done, budget, resume)
    return dg.SensorResult(
        run_requests=done.requests + retries,
        cursor=new_cursor.serialize(),
        asset_events=done.observations,
    )


class _ListingFailed(Exception):
    """Not one page of the listing could be read: nothing to go on, the cursor stays."""


@dataclass
class _Listed:
    objects: list[ListedObject] = field(default_factory=list)
    complete: bool = False
    pages: int = 0
    start: str | None = None
    fault: str | None = None


def _list_window(
    raw: Zone, cursor: ScanCursor, settings: ScanSettings, budget: TickBudget
) -> _Listed:
    """List from the cursor's start (resume point or window start) until done or out of budget.

    A fault after some pages ends the listing there (the rest carries over); a fault before the
    first page raises :class:`_ListingFailed`.
    """
    listed = _Listed()
    try:
        listed.start = cursor.start_key(settings.lateness_hours)
        if listed.start is None and not cursor.hours:  # first tick: the window by folder names
            newest = newest_hour(
                lambda prefix: list_folders(raw, prefix), hourly_partitions.has_partition_key
            )
            listed.start = start_after(window_start(newest, settings.lateness_hours))
        pages = list_pages(raw, RAW_PREFIX, listed.start)
        while not listed.complete and budget.take_page():
            page = next(pages)
            listed.objects += page.objects
            listed.pages += 1
            listed.complete = page.last
    except store_errors() as fault:
        if not listed.pages:
            raise _ListingFailed(describe(fault)) from fault
        listed.fault = describe(fault)
    return listed


@dataclass
class _Done:
    """What the footer stage of a tick achieved."""

    requests: list[dg.RunRequest] = field(default_factory=list)
    observations: list[dg.AssetObservation] = field(default_factory=list)
    committed: dict[str, str] = field(default_factory=dict)
    deferred: list[HourFiles] = field(default_factory=list)  # store faults: a later tick
    stopped_at: HourFiles | None = None  # budget ran out: resume here
    footers_read: int = 0


def _judge_changed_hours(
    context: dg.SensorEvaluationContext,
    storage: LakehouseStorage,
    raw: Zone,
    result: ScanResult,
    budget: TickBudget,
    settings: ScanSettings,
) -> _Done:
    """Read the changed hours' footers (new files only) and request every hour judged whole."""
    done = _Done()
    if not result.changed:
        return done  # an idle tick touches nothing but the listing
    timeout = settings.request_timeout_seconds
    warehouse = storage.bounded(storage.warehouse(), TICK_ATTEMPTS, timeout)
    judge = FooterJudge(raw, warehouse, budget)
    junk = _skipped_by_hour(result)
    with ThreadPoolExecutor(READERS, thread_name_prefix="datascan-footer") as pool:
        for hour in result.changed:
            if budget.exhausted or len(done.deferred) >= MAX_FAULTED_HOURS:
                done.stopped_at = hour
                break
            footers = judge.hour(hour, pool)
            done.footers_read += footers.read
            if footers.store_fault:
                context.log.warning(
                    f"hour {hour.partition.key} waits for a later tick, store fault while "
                    f"reading footers (no file is flagged for it): {footers.store_fault}"
                )
                done.deferred.append(hour)
            elif not footers.complete:
                done.stopped_at = hour  # out of budget mid-hour; the verdicts so far are kept
                break
            else:
                key = hour.partition.key
                done.requests.append(hour_request(key, hour.digest, len(hour.files)))
                done.observations.append(_observation(raw, warehouse, hour, footers, junk))
                done.committed[key] = hour.digest
    for fault in judge.save_faults:
        context.log.warning(f"footer verdicts not saved (they are read again next time): {fault}")
    return done


def _resume_point(
    context: dg.SensorEvaluationContext, listed: _Listed, result: ScanResult, done: _Done
) -> str | None:
    """Where the next tick lists from: None (the window start) once a pass is complete."""
    carried = [] if done.stopped_at is None else [hour_dir(done.stopped_at.partition)]
    if result.relist_from is not None:
        carried.append(result.relist_from)
    if not carried:
        return None
    # Hours that met a store fault are due again as soon as the store has recovered.
    resume = min([*carried, *(hour_dir(hour.partition) for hour in done.deferred)])
    cut_by_budget = result.relist_from is not None and listed.fault is None
    if resume == listed.start and cut_by_budget and not done.committed and not done.stopped_at:
        # Not even the first hour could be listed whole: never request it on a partial view,
        # and do not stall the hours after it either (the next pass tries it again).
        context.log.error(
            f"{resume} holds more objects than this tick could list ({listed.pages} pages); "
            "DataScan skips it this pass (raise LAKEHOUSE_DATASCAN_MAX_LIST_PAGES or "
            "LAKEHOUSE_DATASCAN_BUDGET_SECONDS, or run the hour by hand)"
        )
        resume = resume + "0"  # sorts after every key in that folder ("/" < "0")
    return resume


def _failed_hour_retries(
    context: dg.SensorEvaluationContext, cursor: ScanCursor, settings: ScanSettings
) -> list[dg.RunRequest]:
    policy = RetryPolicy(settings.run_retries, settings.retry_cooldown_seconds)
    retries = failed_hour_retries(
        context.instance, hourly_lakehouse_job.name, cursor.hours, policy, time.time()
    )
    for retry in retries:
        context.log.info(f"failed hour {retry.partition_key}: {retry.note}")
    return [r.request for r in retries if r.request is not None]


def _log_tick(
    context: dg.SensorEvaluationContext,
    listed: _Listed,
    result: ScanResult,
    done: _Done,
    budget: TickBudget,
    resume: str | None,
) -> None:
    skipped_by_reason = Counter(reason for _, reason in result.skipped)
    carried = f"; carried over from {resume}" if resume else ""
    context.log.info(
        f"listed {result.files_seen} objects in {listed.pages} page(s) after "
        f"{listed.start or 'the start'}; "
        f"{len(result.changed)} hour(s) changed, {len(done.requests)} requested, "
        f"{len(done.deferred)} waiting on store faults; {done.footers_read} footer(s) read in "
        f"{budget.elapsed:.1f} s{carried}; skipped {dict(skipped_by_reason)}"
    )
    if listed.fault:
        context.log.warning(f"listing cut by a store fault, the rest carries over: {listed.fault}")
    for key, reason in result.skipped[:MAX_LOGGED_SKIPS]:
        context.log.debug(f"skipped {key}: {reason}")


def _skipped_by_hour(result: ScanResult) -> dict[str, list[dict[str, str]]]:
    skipped: dict[str, list[dict[str, str]]] = {}
    for key, reason in result.skipped:
        skipped.setdefault(key.rsplit("/", 1)[0], []).append({"key": key, "reason": reason})
    return skipped


def _observation(
    raw: Zone,
    warehouse: Zone,
    hour: HourFiles,
    footers: HourFooters,
    junk: dict[str, list[dict[str, str]]],
) -> dg.AssetObservation:
    """What discovery registered for the hour, visible on the ODS asset in the UI."""
    flagged = footers.flagged
    shown = sorted(hour.files, key=lambda f: f.key)[:MAX_SHOWN_FILES]
    return dg.AssetObservation(
        asset_key=ODS_TABLE,
        partition=hour.partition.key,
        metadata={
            "files": len(hour.files),
            "bytes": hour.bytes,
            "rows_in_footers": footers.rows,
            "file_set": hour.digest,
            "footers_read": footers.read,
            "file_list": dg.MetadataValue.json(
                [{"file": raw.display(raw.path(f.key)), "bytes": f.size} for f in shown]
            ),
            "files_flagged": len(flagged),
            "flagged_schema": dg.MetadataValue.json(dict(list(flagged.items())[:MAX_SHOWN_FILES])),
            "skipped": dg.MetadataValue.json(junk.get(hour_dir(hour.partition), [])),
            "footer_state": dg.MetadataValue.path(
                warehouse.display(warehouse.path(state_key(hour.partition)))
            ),
        },
    )
