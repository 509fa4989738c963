"""Activities completed from outside the worker, by workflow and activity id (the ById
methods): python async_activity_completion.py ADDR QUEUE PREFIX. Prints what the workflow
saw and what the client was told, as JSON."""
import asyncio
import json
import sys
from datetime import timedelta

from temporalio import activity, workflow
from temporalio.client import Client
from temporalio.common import RetryPolicy
from temporalio.exceptions import ActivityError, ApplicationError
from temporalio.service import RPCError
from temporalio.worker import Worker


@activity.defn
async def wait_for_approval(item: str) -> str:
    activity.raise_complete_async()


@workflow.defn
class AwaitsApprovals:
    @workflow.run
    async def run(self) -> dict:
        once = dict(
            start_to_close_timeout=timedelta(seconds=30),
            heartbeat_timeout=timedelta(seconds=30),
            retry_policy=RetryPolicy(maximum_attempts=1),
        )
        approved = await workflow.execute_activity(
            wait_for_approval, "invoice", activity_id="approve-invoice", **once
        )
        try:
            await workflow.execute_activity(
                wait_for_approval, "refund", activity_id="approve-refund", **once
            )
            refused = None
        except ActivityError as e:
            refused = str(e.cause)
        return {"approved": approved, "refused": refused}


async def started(client: Client, workflow_id: str, activity_id: str) -> None:
    """Waits until the activity's attempt is running (a worker holds it)."""
    handle = client.get_workflow_handle(workflow_id)
    for _ in range(300):
        description = await handle.describe()
        for pending in description.raw_description.pending_activities:
            # PENDING_ACTIVITY_STATE_STARTED = 2
            if pending.activity_id == activity_id and pending.state == 2:
                return
        await asyncio.sleep(0.05)
    raise RuntimeError(f"activity {activity_id} never started")


async def main() -> None:
    address, queue, prefix = sys.argv[1:4]
    client = await Client.connect(address)
    workflow_id = f"{prefix}-approvals"
    seen = {}
    async with Worker(
        client, task_queue=queue, workflows=[AwaitsApprovals], activities=[wait_for_approval]
    ):
        handle = await client.start_workflow(AwaitsApprovals.run, id=workflow_id, task_queue=queue)
        try:
            await client.get_async_activity_handle(
                workflow_id=workflow_id, run_id=None, activity_id="no-such-activity"
            ).complete("x")
        except RPCError as e:
            seen["unknown_activity"] = {"status": e.status.name, "message": e.message}
        await started(client, workflow_id, "approve-invoice")
        invoice = client.get_async_activity_handle(
            workflow_id=workflow_id, run_id=None, activity_id="approve-invoice"
        )
        await invoice.heartbeat("looked at it")
        await invoice.complete("approved by finance")
        await started(client, workflow_id, "approve-refund")
        await client.get_async_activity_handle(
            workflow_id=workflow_id, run_id=handle.result_run_id, activity_id="approve-refund"
        ).fail(ApplicationError("over the limit", type="Refused"))
        seen["result"] = await handle.result()
    print(json.dumps(seen))


if __name__ == "__main__":
    asyncio.run(main())
