use capstan::prelude::*;

#[activity]
pub async fn echo<T>(value: T) -> Result<T, ActivityError> {
    Ok(value)
}

fn main() {}
