"""Updates sent before any worker runs, whose handlers a lock in the workflow serialises:
python serialized_updates.py ADDR QUEUE PREFIX.

Each handler holds the lock across a durable timer. Every update must complete, with its
own result, and no two handlers may be inside the lock at once. Prints what was seen, as
JSON."""
import asyncio
import json
import sys
from datetime import timedelta

from temporalio import workflow
from temporalio.client import Client
from temporalio.worker import Worker

UPDATES = 5


@workflow.defn
class Serialized:
    def __init__(self) -> None:
        self.lock = asyncio.Lock()
        self.inside = 0
        self.most_inside = 0
        self.order = []

    @workflow.run
    async def run(self) -> dict:
        await workflow.wait_condition(
            lambda: len(self.order) == UPDATES and workflow.all_handlers_finished()
        )
        return {"order": self.order, "most_inside": self.most_inside}

    @workflow.update
    async def step(self, i: int) -> str:
        async with self.lock:
            self.inside += 1
            self.most_inside = max(self.most_inside, self.inside)
            await workflow.sleep(timedelta(milliseconds=100))
            self.inside -= 1
            self.order.append(i)
        return f"step {i}"


async def main() -> None:
    address, queue, prefix = sys.argv[1:4]
    client = await Client.connect(address)
    handle = await client.start_workflow(
        Serialized.run, id=f"{prefix}-serialized", task_queue=queue
    )
    # Sent while no worker polls: admitted, waiting for one.
    updates = [
        asyncio.create_task(handle.execute_update(Serialized.step, i, id=f"step-{i}"))
        for i in range(UPDATES)
    ]
    await asyncio.sleep(1)
    async with Worker(client, task_queue=queue, workflows=[Serialized]):
        results = await asyncio.wait_for(asyncio.gather(*updates), timeout=60)
        outcome = await asyncio.wait_for(handle.result(), timeout=60)
    print(
        json.dumps(
            {
                "results": sorted(results),
                "order": sorted(outcome["order"]),
                "most_inside": outcome["most_inside"],
            }
        )
    )


if __name__ == "__main__":
    asyncio.run(main())
