use capstan::prelude::*;

#[workflow]
pub enum Wf {
    Idle,
}

fn main() {}
