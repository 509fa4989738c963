"""The Python SDK resets a workflow: python reset_workflow.py ADDR QUEUE PREFIX.

A workflow runs an activity, then waits for three inputs (signals and updates) and a
timer. After one signal and one update it is reset to the end of its first workflow
task, as `temporal workflow reset --type FirstWorkflowTask` does: the run that replaces
it replays the kept prefix, gets the signal and the update reapplied, runs the activity
again, takes one more signal and completes. Prints what was seen, as JSON."""
import asyncio
import json
import sys
import uuid
from datetime import timedelta

from temporalio import activity, workflow
from temporalio.api.common.v1 import WorkflowExecution
from temporalio.api.enums.v1 import EventType, WorkflowExecutionStatus
from temporalio.api.workflowservice.v1 import (
    DescribeWorkflowExecutionRequest,
    ResetWorkflowExecutionRequest,
)
from temporalio.client import Client
from temporalio.worker import Worker

CALLS = []


@activity.defn
async def greet(name: str) -> str:
    CALLS.append(name)
    return f"hello {name}"


@workflow.defn
class Resettable:
    def __init__(self) -> None:
        self.inputs = []

    @workflow.signal
    def add(self, value: str) -> None:
        self.inputs.append(value)

    @workflow.update
    def add_checked(self, value: str) -> int:
        self.inputs.append(value)
        return len(self.inputs)

    @workflow.run
    async def run(self) -> dict:
        greeting = await workflow.execute_activity(
            greet, "reset", start_to_close_timeout=timedelta(seconds=10)
        )
        await workflow.wait_condition(lambda: len(self.inputs) >= 3)
        await workflow.sleep(timedelta(milliseconds=100))
        return {"greeting": greeting, "inputs": self.inputs}


def event_name(event) -> str:
    return EventType.Name(event.event_type).removeprefix("EVENT_TYPE_")


async def main() -> None:
    address, queue, prefix = sys.argv[1:4]
    client = await Client.connect(address)
    seen = {}
    async with Worker(
        client, task_queue=queue, workflows=[Resettable], activities=[greet]
    ):
        handle = await client.start_workflow(
            Resettable.run, id=f"{prefix}-reset", task_queue=queue
        )
        base = handle.first_execution_run_id
        # The activity done, the workflow waits for its inputs (its second task done).
        while True:
            history = await handle.fetch_history()
            completed = [
                e
                for e in history.events
                if e.event_type == EventType.EVENT_TYPE_WORKFLOW_TASK_COMPLETED
            ]
            if len(completed) >= 2:
                break
            await asyncio.sleep(0.05)
        await handle.signal(Resettable.add, "signal 1")
        seen["update before the reset"] = await handle.execute_update(
            Resettable.add_checked, "update 1"
        )
        history = await handle.fetch_history()
        first_task_completed = next(
            e.event_id
            for e in history.events
            if e.event_type == EventType.EVENT_TYPE_WORKFLOW_TASK_COMPLETED
        )
        reset = await client.workflow_service.reset_workflow_execution(
            ResetWorkflowExecutionRequest(
                namespace=client.namespace,
                workflow_execution=WorkflowExecution(
                    workflow_id=handle.id, run_id=base
                ),
                reason="try again",
                workflow_task_finish_event_id=first_task_completed,
                request_id=str(uuid.uuid4()),
            )
        )
        current = client.get_workflow_handle(handle.id)
        await current.signal(Resettable.add, "signal 2")
        seen["result"] = await current.result()
        seen["activity calls"] = CALLS
        new_history = await client.get_workflow_handle(
            handle.id, run_id=reset.run_id
        ).fetch_history()
        seen["new run, after the prefix"] = [
            event_name(e) for e in new_history.events[first_task_completed - 1 :]
        ][:4]
        base_history = await client.get_workflow_handle(
            handle.id, run_id=base
        ).fetch_history()
        last = base_history.events[-1]
        seen["base closed"] = [
            event_name(last),
            last.workflow_execution_terminated_event_attributes.reason,
        ]
        described = await client.workflow_service.describe_workflow_execution(
            DescribeWorkflowExecutionRequest(
                namespace=client.namespace,
                execution=WorkflowExecution(workflow_id=handle.id, run_id=base),
            )
        )
        seen["base names the new run"] = (
            described.workflow_extended_info.reset_run_id == reset.run_id
        )
        seen["base status"] = WorkflowExecutionStatus.Name(
            described.workflow_execution_info.status
        )
    print(json.dumps(seen))


if __name__ == "__main__":
    asyncio.run(main())
