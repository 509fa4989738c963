"""A Python client runs Capstan workflows by name: python run_capstan_workflows.py ADDR QUEUE ID."""
import asyncio
import json
import sys

from temporalio.client import Client


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
    print(json.dumps({"greeting": greeting, "fruits": fruits}))


if __name__ == "__main__":
    asyncio.run(main())
