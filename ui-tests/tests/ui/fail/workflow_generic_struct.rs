use capstan::prelude::*;

#[workflow]
#[derive(Default)]
pub struct Wf<T> {
    value: T,
}

fn main() {}
