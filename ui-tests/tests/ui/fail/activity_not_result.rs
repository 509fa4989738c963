use capstan::prelude::*;

#[activity]
pub async fn greet(name: String) -> String {
    format!("Hello, {name}!")
}

#[activity]
pub fn nothing(name: String) {}

fn main() {}
