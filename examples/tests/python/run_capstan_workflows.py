"""A Python client runs Capstan workflows by name: python run_capstan_workflows.py ADDR QUEUE ID."""
import asyncio
import json
import sys

from temporalio.api.sdk.v1 import WorkflowMetadata
from temporalio.client import Client, WithStartWorkflowOperation
from temporalio.common import WorkflowIDConflictPolicy


async def main() -> None:
    address, queue, prefix = sys.argv[1:4]
    client = await Client.connect(address)
    greeting = await client.execute_workflow(
        "GreetingWorkflow", "Python", id=f"{prefix}-greeting", task_queue=queue
    )
    fruits = await client.execute_workflow(
        "PurchaseFruitsWorkflow",
        {"items": [{"fruit": 1, "amount": 3}, {"fruit": 2, "amount": 5}]},
        id=f"{prefix}-fruits",
        task_queue=queue,
    )
    # Update-with-start, twice: the first starts the account, the second reaches it.
    points = []
    for added in (10, 5):
        start = WithStartWorkflowOperation(
            "CustomerRewardAccount",
            {"user_id": "py"},
            id=f"{prefix}-account",
            task_queue=queue,
            id_conflict_policy=WorkflowIDConflictPolicy.USE_EXISTING,
        )
        status = await client.execute_update_with_start_workflow(
            "add_points", {"points": added}, start_workflow_operation=start
        )
        points.append(status["points"])
    account = await start.workflow_handle()
    # The built-in query every SDK answers (the Web UI lists handlers from it).
    metadata = await account.query("__temporal_workflow_metadata", result_type=WorkflowMetadata)
    definition = metadata.definition
    handlers = {
        "type": definition.type,
        "queries": [d.name for d in definition.query_definitions],
        "signals": [d.name for d in definition.signal_definitions],
        "updates": [d.name for d in definition.update_definitions],
    }
    await account.execute_update("cancel")
    print(json.dumps({"greeting": greeting, "fruits": fruits, "points": points, "handlers": handlers}))


if __name__ == "__main__":
    asyncio.run(main())
