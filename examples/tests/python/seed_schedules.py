"""The seed's Schedule pattern, in Python, against the server at argv[1].

Creates the interval, cron and mixed schedules, triggers, backfills, pauses, unpauses and
updates them through the real Temporal Python SDK, describes them, prints what it saw as
JSON and deletes them. Usage: seed_schedules.py ADDRESS TASK_QUEUE PREFIX
"""

import asyncio
import json
import sys
from datetime import datetime, timedelta, timezone

from temporalio import workflow
from temporalio.client import (
    Client,
    Schedule,
    ScheduleActionStartWorkflow,
    ScheduleBackfill,
    ScheduleIntervalSpec,
    ScheduleOverlapPolicy,
    ScheduleSpec,
    ScheduleState,
    ScheduleUpdate,
)


@workflow.defn
class ScheduledWorkflow:
    @workflow.run
    async def run(self, data: str) -> str:
        return f"Processed: {data}"


def action(data: str, workflow_id: str, task_queue: str) -> ScheduleActionStartWorkflow:
    return ScheduleActionStartWorkflow(
        ScheduledWorkflow.run, data, id=workflow_id, task_queue=task_queue
    )


async def main(address: str, task_queue: str, prefix: str) -> None:
    client = await Client.connect(address)
    interval = await client.create_schedule(
        f"{prefix}-interval",
        Schedule(
            action=action("scheduled data", f"{prefix}-scheduled-workflow", task_queue),
            spec=ScheduleSpec(intervals=[ScheduleIntervalSpec(every=timedelta(minutes=2))]),
            state=ScheduleState(note="Runs every 2 minutes", paused=False),
        ),
    )
    cron = await client.create_schedule(
        f"{prefix}-cron",
        Schedule(
            action=action("daily report", f"{prefix}-daily-report", task_queue),
            spec=ScheduleSpec(cron_expressions=["0 9 * * MON-FRI"]),
            state=ScheduleState(note="Daily report generation"),
        ),
    )
    await interval.trigger()
    now = datetime.now(timezone.utc)
    await interval.backfill(
        ScheduleBackfill(
            start_at=now - timedelta(hours=2),
            end_at=now - timedelta(minutes=5),
            overlap=ScheduleOverlapPolicy.ALLOW_ALL,
        )
    )
    mixed = await client.create_schedule(
        f"{prefix}-complex",
        Schedule(
            action=action("complex data", f"{prefix}-complex-workflow", task_queue),
            spec=ScheduleSpec(
                intervals=[ScheduleIntervalSpec(every=timedelta(minutes=30))],
                cron_expressions=["0 0 * * SUN"],
            ),
            state=ScheduleState(note="Mixed interval and cron schedule", paused=False),
        ),
    )
    await mixed.pause(note="Pausing for maintenance")
    paused = (await mixed.describe()).schedule.state.paused
    await mixed.unpause(note="Maintenance complete")

    async def updater(update_input):
        schedule = update_input.description.schedule
        schedule.state.note = "Updated schedule"
        return ScheduleUpdate(schedule=schedule)

    await mixed.update(updater)

    interval_seen = await interval.describe()
    cron_seen = await cron.describe()
    mixed_seen = await mixed.describe()
    listed = sorted([s.id async for s in await client.list_schedules()])
    print(
        json.dumps(
            {
                "now": now.timestamp(),
                "interval_note": interval_seen.schedule.state.note,
                "interval_every": interval_seen.schedule.spec.intervals[0].every.total_seconds(),
                "interval_actions": interval_seen.info.num_actions,
                "recent_workflow_ids": [
                    a.action.workflow_id for a in interval_seen.info.recent_actions
                ],
                "cron_next": [t.timestamp() for t in cron_seen.info.next_action_times],
                "cron_calendars": len(cron_seen.schedule.spec.calendars),
                "mixed_paused_by_pause": paused,
                "mixed_paused": mixed_seen.schedule.state.paused,
                "mixed_note": mixed_seen.schedule.state.note,
                "listed": listed,
            }
        )
    )
    for handle in (interval, cron, mixed):
        await handle.delete()


if __name__ == "__main__":
    asyncio.run(main(*sys.argv[1:4]))
