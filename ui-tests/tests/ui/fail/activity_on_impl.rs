use capstan::prelude::*;

pub struct Activities;

#[activity]
impl Activities {
    pub async fn greet(&self, name: String) -> Result<String, ActivityError> {
        Ok(name)
    }
}

fn main() {}
