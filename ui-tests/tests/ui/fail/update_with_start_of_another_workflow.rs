use capstan::prelude::*;

#[workflow]
#[derive(Default)]
pub struct Account;

#[workflow]
impl Account {
    #[run]
    pub async fn run(_ctx: WorkflowContext<Self>) -> WorkflowResult<()> {
        Ok(())
    }

    #[update]
    pub async fn add_points(_ctx: WorkflowContext<Self>, points: u32) -> Result<u32, UpdateError> {
        Ok(points)
    }
}

#[workflow]
#[derive(Default)]
pub struct Basket;

#[workflow]
impl Basket {
    #[run]
    pub async fn run(_ctx: WorkflowContext<Self>) -> WorkflowResult<()> {
        Ok(())
    }
}

async fn send(client: &Client) {
    // An update of `Account` cannot ride on the start of a `Basket`, nor take a string.
    let _ = Basket::start(client, "b").with_update(Account::update_add_points(1));
    let _ = Account::start(client, "a").with_update(Account::update_add_points("1"));
    // Its result is the handler's.
    let _: Result<(_, String), _> =
        Account::start(client, "a").with_update(Account::update_add_points(1)).await;
}

fn main() {
    let _ = send;
}
