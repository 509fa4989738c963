use capstan::prelude::*;

#[workflow]
#[derive(Default)]
pub struct Wf;

#[workflow]
impl Wf {
    #[signal]
    pub fn poke(&mut self) {}
}

fn main() {}
