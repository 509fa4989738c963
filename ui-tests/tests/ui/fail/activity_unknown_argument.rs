use capstan::prelude::*;

#[activity(nam = "greet")]
pub async fn greet(name: String) -> Result<String, ActivityError> {
    Ok(name)
}

fn main() {}
