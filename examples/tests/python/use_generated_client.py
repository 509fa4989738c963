"""Drives Capstan example workflows through the client `capstan stubs --lang python`
generated: python use_generated_client.py ADDR QUEUE PREFIX STUBS_DIR."""
import asyncio
import json
import sys

from pydantic import ValidationError
from temporalio.client import Client


def rejected(error: ValidationError) -> dict:
    first = error.errors()[0]
    return {"loc": [str(part) for part in first["loc"]], "type": first["type"]}


async def main() -> None:
    address, queue, prefix, stubs_dir = sys.argv[1:5]
    sys.path.insert(0, stubs_dir)
    import examples_client as c

    client = await Client.connect(address)
    out = {}

    items = [c.ShoppingItem(fruit=1, amount=3), c.ShoppingItem(fruit=2, amount=5)]
    out["fruits"] = await c.PurchaseFruitsWorkflow.execute(
        client, f"{prefix}-fruits", c.ShoppingList(items=items), task_queue=queue
    )

    account = await c.CustomerRewardAccount.start(
        client,
        f"{prefix}-account",
        c.CustomerRewardAccountInput(user_id="py"),
        task_queue=queue,
    )
    await account.award_bonus(c.AddPointInput(points=50))
    out["added"] = (await account.add_points(c.AddPointInput(points=700))).model_dump()
    out["queried"] = (await account.query_reward_status()).model_dump()

    # Wrong types fail in Pydantic, before anything reaches the server.
    errors = {}
    try:
        await account.add_points({"points": "ten"})
    except ValidationError as e:
        errors["update"] = rejected(e)
    try:
        await account.award_bonus(c.AddPointInput.model_construct(points=1.5))
    except ValidationError as e:
        errors["signal"] = rejected(e)
    try:
        await c.PurchaseFruitsWorkflow.start(
            client,
            f"{prefix}-never-started",
            {"items": [{"fruit": 7, "amount": 1}]},
            task_queue=queue,
        )
    except ValidationError as e:
        errors["start"] = rejected(e)
    out["errors"] = errors

    out["closed"] = (await account.cancel()).model_dump()
    result = await account.result()
    out["result"] = {"type": type(result).__name__, **result.model_dump()}
    print(json.dumps(out))


if __name__ == "__main__":
    asyncio.run(main())
