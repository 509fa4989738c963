use capstan::prelude::*;

#[activity]
pub async fn poll(n: u32, ctx: ActivityContext) -> Result<(), ActivityError> {
    Ok(())
}

fn main() {}
