use capstan::prelude::*;

#[derive(Default)]
pub struct Wf;

impl Wf {
    #[signal]
    pub fn poke(&mut self) {}
}

fn main() {}
