use capstan::prelude::*;

pub struct Activities;

impl Activities {
    #[activity]
    pub async fn greet(&self, name: String) -> Result<String, ActivityError> {
        Ok(name)
    }
}

fn main() {}
