"""What an operator does to running work, from the Python SDK:
python operator_controls.py ADDR QUEUE PREFIX.

1. An activity that heartbeats is paused (PauseActivity): the SDK tells the activity it
   was cancelled because it was paused. Unpaused with its attempts reset, it runs again
   from attempt 1 and completes.
2. A custom search attribute is registered (OperatorService AddSearchAttributes), a
   schedule starts a workflow with it, and a list query finds that run by it.

Prints what was seen, as JSON."""
import asyncio
import json
import sys
from datetime import timedelta

from temporalio import activity, workflow
from temporalio.api.enums.v1 import IndexedValueType
from temporalio.api.operatorservice.v1 import AddSearchAttributesRequest
from temporalio.api.workflowservice.v1 import PauseActivityRequest, UnpauseActivityRequest
from temporalio.client import (
    Client,
    Schedule,
    ScheduleActionStartWorkflow,
    ScheduleIntervalSpec,
    ScheduleSpec,
    ScheduleState,
)
from temporalio.common import (
    RetryPolicy,
    SearchAttributeKey,
    SearchAttributePair,
    TypedSearchAttributes,
)
from temporalio.worker import Worker

REGION = SearchAttributeKey.for_keyword("CapstanRegion")

# What the activity saw, attempt by attempt.
attempts = []


@activity.defn
async def watch_the_line() -> str:
    info = activity.info()
    attempts.append(info.attempt)
    if len(attempts) > 1:
        return f"done at attempt {info.attempt}"
    try:
        while True:
            activity.heartbeat("watching")
            await asyncio.sleep(0.1)
    except asyncio.CancelledError:
        details = activity.cancellation_details()
        attempts.append("paused" if details and details.paused else "cancelled")
        raise


@workflow.defn
class Watches:
    @workflow.run
    async def run(self) -> str:
        return await workflow.execute_activity(
            watch_the_line,
            activity_id="watch",
            start_to_close_timeout=timedelta(seconds=60),
            # The SDK sends heartbeats at most every 80% of this.
            heartbeat_timeout=timedelta(seconds=2),
            retry_policy=RetryPolicy(initial_interval=timedelta(seconds=1), maximum_attempts=5),
        )


@workflow.defn
class Regional:
    @workflow.run
    async def run(self, name: str) -> str:
        return f"hello {name}"


async def pending(client: Client, workflow_id: str, state: int) -> dict:
    """Waits until the activity `watch` is in `state`; answers what describe says of it."""
    handle = client.get_workflow_handle(workflow_id)
    for _ in range(400):
        description = await handle.describe()
        for p in description.raw_description.pending_activities:
            if p.activity_id == "watch" and p.state == state:
                return {"attempt": p.attempt, "paused": p.paused}
        await asyncio.sleep(0.05)
    raise RuntimeError(f"the activity never reached state {state}")


async def main() -> None:
    address, queue, prefix = sys.argv[1:4]
    client = await Client.connect(address)
    seen = {}
    async with Worker(
        client,
        task_queue=queue,
        workflows=[Watches, Regional],
        activities=[watch_the_line],
    ):
        # 1. Pause and unpause.
        workflow_id = f"{prefix}-watches"
        handle = await client.start_workflow(Watches.run, id=workflow_id, task_queue=queue)
        # PENDING_ACTIVITY_STATE_STARTED = 2, PAUSED = 4 (once the running attempt
        # heard of the pause from a heartbeat's answer and failed).
        await pending(client, workflow_id, 2)
        execution = {"workflow_id": workflow_id}
        from temporalio.api.common.v1 import WorkflowExecution

        await client.workflow_service.pause_activity(
            PauseActivityRequest(
                namespace=client.namespace,
                execution=WorkflowExecution(**execution),
                id="watch",
                identity="operator",
                reason="maintenance",
            )
        )
        seen["paused"] = await pending(client, workflow_id, 4)
        await client.workflow_service.unpause_activity(
            UnpauseActivityRequest(
                namespace=client.namespace,
                execution=WorkflowExecution(**execution),
                id="watch",
                identity="operator",
                reset_attempts=True,
            )
        )
        seen["result"] = await handle.result()
        seen["attempts"] = attempts

        # 2. A schedule's workflow with a custom search attribute, found by it.
        await client.operator_service.add_search_attributes(
            AddSearchAttributesRequest(
                namespace=client.namespace,
                search_attributes={"CapstanRegion": IndexedValueType.INDEXED_VALUE_TYPE_KEYWORD},
            )
        )
        region = f"{prefix}-eu"
        schedule = await client.create_schedule(
            f"{prefix}-regional",
            Schedule(
                action=ScheduleActionStartWorkflow(
                    Regional.run,
                    "region",
                    id=f"{prefix}-regional-run",
                    task_queue=queue,
                    typed_search_attributes=TypedSearchAttributes(
                        [SearchAttributePair(REGION, region)]
                    ),
                ),
                spec=ScheduleSpec(intervals=[ScheduleIntervalSpec(every=timedelta(hours=1))]),
                state=ScheduleState(paused=True),
            ),
        )
        await schedule.trigger()
        found = []
        for _ in range(100):
            found = [w.id async for w in client.list_workflows(f"CapstanRegion = '{region}'")]
            if found:
                break
            await asyncio.sleep(0.1)
        seen["found"] = [w.startswith(f"{prefix}-regional-run") for w in found]
        description = await schedule.describe()
        action = description.schedule.action
        seen["schedule_region"] = action.typed_search_attributes.get(REGION) == region
        await schedule.delete()
    print(json.dumps(seen))


if __name__ == "__main__":
    asyncio.run(main())
