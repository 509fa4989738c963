use capstan::prelude::*;

pub struct Target;

#[activity]
pub async fn hit(target: Target) -> Result<Target, ActivityError> {
    Ok(target)
}

fn main() {}
