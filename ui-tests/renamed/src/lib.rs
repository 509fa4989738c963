//! A compile-pass case of Capstan's macros through a renamed dependency
//! (`capstan-renamed = { package = "capstan", … }` in this crate's Cargo.toml, and no
//! `capstan`): `crate = capstan_renamed` points the generated code at it, so nothing it
//! emits names `::capstan`. It compiles whenever `capstan-ui-tests`' tests do.
use capstan_renamed::{UpdateError, WorkflowContext, WorkflowResult};

#[capstan_renamed::activity(crate = capstan_renamed)]
pub async fn double(n: u32) -> Result<u32, capstan_renamed::ActivityError> {
    Ok(n * 2)
}

#[capstan_renamed::workflow(crate = capstan_renamed)]
#[derive(Default)]
pub struct Renamed {
    total: u32,
}

#[capstan_renamed::workflow(crate = capstan_renamed)]
impl Renamed {
    #[run]
    pub async fn run(ctx: WorkflowContext<Self>, n: u32) -> WorkflowResult<u32> {
        let doubled = ctx
            .activity(double, n)
            .start_to_close_timeout(std::time::Duration::from_secs(5))
            .await?;
        Ok(doubled)
    }

    #[signal]
    pub fn add(&mut self, n: u32) {
        self.total += n;
    }

    #[query]
    pub fn total(&self) -> u32 {
        self.total
    }

    #[update(validator = check_set)]
    pub fn set(&mut self, n: u32) -> Result<u32, UpdateError> {
        self.total = n;
        Ok(n)
    }

    fn check_set(&self, n: &u32) -> Result<(), UpdateError> {
        let _ = n;
        Ok(())
    }
}

/// The generated client methods, through the renamed crate.
pub async fn client_side(client: &capstan_renamed::Client) {
    let handle = Renamed::handle(client, "renamed-1");
    let _ = handle.total().await;
    let _ = Renamed::execute(client, "renamed-2", 21).await;
}
