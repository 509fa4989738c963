"""Summaries and details (user metadata) the Python SDK sets on a workflow, its timer, its
activity and its child, read back from describe and the history:
python user_metadata.py ADDR QUEUE PREFIX. Prints what was read, as JSON."""
import asyncio
import json
import sys
from datetime import timedelta

from temporalio import activity, workflow
from temporalio.client import Client
from temporalio.worker import Worker


@activity.defn
async def greet(name: str) -> str:
    return f"hello {name}"


@workflow.defn
class Child:
    @workflow.run
    async def run(self) -> str:
        return "child done"


@workflow.defn
class Described:
    @workflow.run
    async def run(self, prefix: str) -> str:
        await workflow.sleep(timedelta(milliseconds=10), summary="a short nap")
        greeting = await workflow.execute_activity(
            greet, "metadata", start_to_close_timeout=timedelta(seconds=30), summary="greets"
        )
        await workflow.execute_child_workflow(
            Child.run, id=f"{prefix}-child", static_summary="the child"
        )
        return greeting


def summary_of(event) -> str | None:
    """The JSON string of an event's user metadata summary."""
    if not event.HasField("user_metadata") or not event.user_metadata.HasField("summary"):
        return None
    return json.loads(event.user_metadata.summary.data)


async def main() -> None:
    address, queue, prefix = sys.argv[1:4]
    client = await Client.connect(address)
    seen = {}
    async with Worker(
        client, task_queue=queue, workflows=[Described, Child], activities=[greet]
    ):
        handle = await client.start_workflow(
            Described.run,
            prefix,
            id=f"{prefix}-described",
            task_queue=queue,
            static_summary="the run",
            static_details="all of it",
        )
        seen["result"] = await handle.result()
    description = await handle.describe()
    seen["summary"] = await description.static_summary()
    seen["details"] = await description.static_details()
    child = await client.get_workflow_handle(f"{prefix}-child").describe()
    seen["child_summary"] = await child.static_summary()
    events = {}
    async for event in handle.fetch_history_events():
        kind = event.WhichOneof("attributes")
        if kind in (
            "timer_started_event_attributes",
            "activity_task_scheduled_event_attributes",
            "start_child_workflow_execution_initiated_event_attributes",
        ):
            events[kind.removesuffix("_event_attributes")] = summary_of(event)
    seen["events"] = events
    print(json.dumps(seen))


if __name__ == "__main__":
    asyncio.run(main())
