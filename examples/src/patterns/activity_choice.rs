//! Activity Choice: pick the activity to run from the input.

use std::time::Duration;

use capstan::prelude::*;
use serde_json::{json, Value};

use crate::tour::workflow_id;

/// The fruits the shop sells.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(into = "u8", try_from = "u8")]
pub enum Fruit {
    /// 1
    Apple,
    /// 2
    Banana,
    /// 3
    Cherry,
}

// On the wire a fruit is its number (the seed's `IntEnum`); the schema says which numbers.
impl JsonSchema for Fruit {
    fn schema_name() -> std::borrow::Cow<'static, str> {
        "Fruit".into()
    }

    fn json_schema(_: &mut schemars::SchemaGenerator) -> schemars::Schema {
        schemars::json_schema!({
            "description": "The fruits the shop sells: 1 (apple), 2 (banana) or 3 (cherry).",
            "type": "integer",
            "enum": [1, 2, 3],
        })
    }
}

impl From<Fruit> for u8 {
    fn from(fruit: Fruit) -> u8 {
        match fruit {
            Fruit::Apple => 1,
            Fruit::Banana => 2,
            Fruit::Cherry => 3,
        }
    }
}

impl TryFrom<u8> for Fruit {
    type Error = String;
    fn try_from(n: u8) -> Result<Self, String> {
        match n {
            1 => Ok(Fruit::Apple),
            2 => Ok(Fruit::Banana),
            3 => Ok(Fruit::Cherry),
            _ => Err(format!(
                "unknown fruit {n}: expected 1 (apple), 2 (banana) or 3 (cherry)"
            )),
        }
    }
}

/// One line of a shopping list.
#[derive(Clone, Debug, Serialize, Deserialize, JsonSchema)]
pub struct ShoppingItem {
    /// What to buy.
    pub fruit: Fruit,
    /// How many.
    pub amount: u32,
}

/// A shopping list.
#[derive(Clone, Debug, Serialize, Deserialize, JsonSchema)]
pub struct ShoppingList {
    /// The lines.
    pub items: Vec<ShoppingItem>,
}

impl ShoppingList {
    /// The order the tour and the tests place (and the Python client too).
    pub fn three_apples_and_five_bananas() -> Self {
        Self {
            items: vec![
                ShoppingItem {
                    fruit: Fruit::Apple,
                    amount: 3,
                },
                ShoppingItem {
                    fruit: Fruit::Banana,
                    amount: 5,
                },
            ],
        }
    }
}

/// Orders apples.
#[activity]
pub fn order_apples(amount: u32) -> Result<String, ActivityError> {
    Ok(format!("Ordered {amount} Apples..."))
}

/// Orders bananas.
#[activity]
pub fn order_bananas(amount: u32) -> Result<String, ActivityError> {
    Ok(format!("Ordered {amount} Bananas..."))
}

/// Orders each item with the activity for its fruit.
#[workflow]
#[derive(Default)]
pub struct PurchaseFruitsWorkflow;

#[workflow]
impl PurchaseFruitsWorkflow {
    #[run]
    pub async fn run(
        ctx: WorkflowContext<Self>,
        shopping_list: ShoppingList,
    ) -> WorkflowResult<String> {
        let mut ordered = Vec::new();
        for item in shopping_list.items {
            let order = match item.fruit {
                Fruit::Apple => ctx.activity(order_apples, item.amount),
                Fruit::Banana => ctx.activity(order_bananas, item.amount),
                other => {
                    return Err(ApplicationError::new(
                        "ValueError",
                        format!("Unrecognized fruit: {other:?}"),
                    )
                    .into())
                }
            };
            ordered.push(order.start_to_close_timeout(Duration::from_secs(5)).await?);
        }
        Ok(ordered.concat())
    }
}

/// Registers the pattern's workflow and activities.
pub fn register(worker: Worker) -> Worker {
    worker
        .register_workflow::<PurchaseFruitsWorkflow>()
        .register_activity(order_apples)
        .register_activity(order_bananas)
}

/// The tour's driver: buys apples and bananas, each with its own activity.
pub async fn tour(client: &Client, task_queue: &str, run_id: &str) -> anyhow::Result<Value> {
    let text = PurchaseFruitsWorkflow::execute(
        client,
        workflow_id("purchase-fruits", run_id),
        ShoppingList::three_apples_and_five_bananas(),
    )
    .task_queue(task_queue)
    .await?;
    anyhow::ensure!(
        text == "Ordered 3 Apples...Ordered 5 Bananas...",
        "unexpected result {text:?}"
    );
    Ok(json!(text))
}
