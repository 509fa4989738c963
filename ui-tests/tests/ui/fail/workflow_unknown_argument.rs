use capstan::prelude::*;

#[workflow(nmae = "wf")]
#[derive(Default)]
pub struct Wf;

fn main() {}
