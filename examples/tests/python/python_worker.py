"""A Python worker with one workflow, run until one execution completes:
python python_worker.py ADDR QUEUE."""
import asyncio
import sys

from temporalio import workflow
from temporalio.client import Client
from temporalio.worker import Worker

done = asyncio.Event()


@workflow.defn(name="PyComposeGreeting")
class PyComposeGreeting:
    @workflow.run
    async def run(self, input: dict) -> dict:
        return {"text": f"{input['greeting']}, {input['name']}!", "from": "python"}


async def main() -> None:
    address, queue = sys.argv[1:3]
    client = await Client.connect(address)
    async with Worker(client, task_queue=queue, workflows=[PyComposeGreeting]):
        print("ready", flush=True)
        # Stop once the Capstan client's execution has closed (bounded in time).
        for _ in range(600):
            await asyncio.sleep(0.1)
            async for wf in client.list_workflows(f"WorkflowType = 'PyComposeGreeting' AND TaskQueue = '{queue}'"):
                if wf.status is not None and wf.status.name == "COMPLETED":
                    return


if __name__ == "__main__":
    asyncio.run(main())
