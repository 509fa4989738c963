"""The Python SDK contestant: the benchmark workflows, with the same names and behaviour
as the Capstan and official Rust SDK workers (see bench/src/contestants/).

Usage: worker.py ADDRESS TASK_QUEUE MAX_CACHED_WORKFLOWS
Runs until its stdin closes (the harness holds the other end), then shuts down.
"""

import asyncio
import sys
from datetime import timedelta

from temporalio import activity, workflow
from temporalio.client import Client
from temporalio.worker import Worker

TIMEOUT = timedelta(seconds=60)


@activity.defn(name="noop")
async def noop() -> None:
    return None


@workflow.defn(name="OneActivity")
class OneActivity:
    @workflow.run
    async def run(self) -> None:
        await workflow.execute_activity(noop, start_to_close_timeout=TIMEOUT)


@workflow.defn(name="Counter")
class Counter:
    def __init__(self) -> None:
        self.value = 0
        self.finished = False

    @workflow.run
    async def run(self) -> int:
        await workflow.wait_condition(lambda: self.finished)
        return self.value

    @workflow.signal
    def bump(self) -> None:
        self.value += 1

    @workflow.signal
    def finish(self) -> None:
        self.finished = True

    @workflow.query
    def count(self) -> int:
        return self.value

    @workflow.update
    def bump_and_get(self) -> int:
        self.value += 1
        return self.value


@workflow.defn(name="Sleeper")
class Sleeper:
    @workflow.run
    async def run(self, millis: int) -> None:
        await asyncio.sleep(millis / 1000)


@workflow.defn(name="Child")
class Child:
    @workflow.run
    async def run(self) -> None:
        return None


@workflow.defn(name="FanOut")
class FanOut:
    @workflow.run
    async def run(self, spec: dict) -> None:
        await asyncio.gather(
            *(
                workflow.execute_activity(noop, start_to_close_timeout=TIMEOUT)
                for _ in range(spec["activities"])
            )
        )
        wid = workflow.info().workflow_id
        await asyncio.gather(
            *(
                workflow.execute_child_workflow(Child.run, id=f"{wid}-child-{i}")
                for i in range(spec["children"])
            )
        )


async def main() -> None:
    address, task_queue, max_cached = sys.argv[1], sys.argv[2], int(sys.argv[3])
    client = await Client.connect(address)
    worker = Worker(
        client,
        task_queue=task_queue,
        workflows=[OneActivity, Counter, Sleeper, Child, FanOut],
        activities=[noop],
        max_cached_workflows=max_cached,
    )
    async with worker:
        print("ready", flush=True)
        # EOF on stdin: the harness is done with this worker.
        await asyncio.get_running_loop().run_in_executor(None, sys.stdin.read)


if __name__ == "__main__":
    asyncio.run(main())
