//! Every kind of handler, activity and argument shape, used from a client.

use std::collections::BTreeMap;

use capstan::prelude::*;

#[derive(Clone, Debug, Default, Serialize, Deserialize, JsonSchema)]
pub struct ShoppingItem {
    pub name: String,
    pub amount: u32,
}

#[derive(Clone, Debug, Default, Serialize, Deserialize, JsonSchema)]
pub struct ShoppingList {
    pub items: Vec<ShoppingItem>,
}

/// Orders apples.
#[activity]
pub async fn order_apples(amount: u32) -> Result<String, ActivityError> {
    Ok(format!("Ordered {amount} Apples..."))
}

#[activity(name = "say-hello")]
pub fn say_hello(name: String, (greeting, _): (String, u8)) -> Result<String, ActivityError> {
    Ok(format!("{greeting}, {name}!"))
}

#[activity]
pub async fn heartbeat(ctx: ActivityContext) -> Result<(), ActivityError> {
    let _ = ctx;
    Ok(())
}

#[workflow(name = "purchase-fruits")]
#[derive(Default)]
pub struct PurchaseFruitsWorkflow {
    ordered: Vec<String>,
    stock: BTreeMap<String, u32>,
    points: i64,
}

#[workflow]
impl PurchaseFruitsWorkflow {
    #[run]
    pub async fn run(ctx: WorkflowContext<Self>, list: ShoppingList) -> WorkflowResult<String> {
        let _ = (ctx, list);
        Ok(String::new())
    }

    #[signal]
    pub fn cancel_order(&mut self, reason: String) {
        self.ordered.push(reason);
    }

    #[signal(name = "note")]
    pub async fn notify(ctx: WorkflowContext<Self>, note: String) {
        let _ = (ctx, note);
    }

    #[query]
    pub fn ordered(&self) -> Vec<String> {
        self.ordered.clone()
    }

    #[query(name = "stock")]
    pub fn stock_of(&self, name: String, (_min, _max): (u32, u32)) -> Option<u32> {
        self.stock.get(&name).copied()
    }

    #[update(validator = check_item)]
    pub fn add_item(&mut self, item: ShoppingItem) -> Result<usize, UpdateError> {
        self.ordered.push(item.name);
        Ok(self.ordered.len())
    }

    pub fn check_item(&self, item: &ShoppingItem) -> Result<(), UpdateError> {
        let _ = item;
        Ok(())
    }

    #[update(validator = Self::check_points)]
    pub async fn add_points(ctx: WorkflowContext<Self>, points: i64) -> Result<i64, UpdateError> {
        let _ = ctx;
        Ok(points)
    }

    fn check_points(&self, points: &i64) -> Result<(), UpdateError> {
        let _ = (self.points, points);
        Ok(())
    }
}

#[workflow]
#[derive(Default)]
pub(crate) struct NoArguments;

#[workflow]
impl NoArguments {
    #[run]
    async fn run(_ctx: WorkflowContext<Self>) -> WorkflowResult<()> {
        Ok(())
    }
}

#[allow(dead_code)]
async fn client_side(client: &Client) -> Result<(), Box<dyn std::error::Error>> {
    let handle = PurchaseFruitsWorkflow::handle(client, "order-42");
    handle.cancel_order("changed my mind".to_owned()).await?;
    handle.notify("hello".to_owned()).await?;
    let _: Vec<String> = handle.ordered().await?;
    let _: Option<u32> = handle.stock_of("apple".to_owned(), (1, 2)).await?;
    let _: usize = handle.add_item(ShoppingItem::default()).await?;
    let _: capstan::UpdateHandle<i64> = handle.start_add_points(5).await?;
    let _clone = handle.clone();
    println!("{handle:?}");
    let _ = NoArguments::start(client, String::from("no-args"));
    let _ = PurchaseFruitsWorkflow::execute(client, "order-43", ShoppingList::default());
    Ok(())
}

fn main() {
    use capstan::__private::{ActivityDefinition, WorkflowDefinition, WorkflowType};
    assert_eq!(PurchaseFruitsWorkflow::NAME, "purchase-fruits");
    assert_eq!(NoArguments::NAME, "NoArguments");
    assert_eq!(order_apples::NAME, "order_apples");
    assert_eq!(say_hello::NAME, "say-hello");
    let _: <order_apples as ActivityDefinition>::Args = order_apples::into_args(5);
    let _: <PurchaseFruitsWorkflow as WorkflowDefinition>::Args =
        PurchaseFruitsWorkflow::into_args(ShoppingList::default());
    let _ = heartbeat;
}
