// Drives Capstan example workflows through the generated client:
// node main.js ADDR QUEUE PREFIX
import { Client, Connection } from "@temporalio/client";
import {
  AddPointInput,
  CustomerRewardAccount,
  PurchaseFruitsWorkflow,
  ShoppingList,
} from "./examples_client";

// Never called: the compiler must reject these arguments.
export async function wrongTypes(client: Client): Promise<void> {
  // @ts-expect-error: there is no fruit 7
  await PurchaseFruitsWorkflow.start(client, "x", { items: [{ fruit: 7, amount: 1 }] });
  const account = CustomerRewardAccount.getHandle(client, "x");
  // @ts-expect-error: points is a number
  await account.add_points({ points: "ten" });
}

async function main(): Promise<void> {
  const [address, queue, prefix] = process.argv.slice(2);
  const connection = await Connection.connect({ address });
  const client = new Client({ connection });
  const list: ShoppingList = {
    items: [
      { fruit: 1, amount: 3 },
      { fruit: 2, amount: 5 },
    ],
  };
  const fruits: string = await PurchaseFruitsWorkflow.execute(client, `${prefix}-fruits`, list, {
    taskQueue: queue,
  });
  const account = await CustomerRewardAccount.start(
    client,
    `${prefix}-account`,
    { user_id: "ts" },
    { taskQueue: queue },
  );
  const bonus: AddPointInput = { points: 50 };
  await account.award_bonus(bonus);
  const added = await account.add_points({ points: 700 });
  const queried = await account.query_reward_status();
  await account.cancel();
  const result = await account.result();
  console.log(JSON.stringify({ fruits, added, queried, result }));
  await connection.close();
}

main().catch((error) => {
  console.error(error);
  process.exit(1);
});
