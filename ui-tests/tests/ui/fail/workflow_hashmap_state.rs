use std::collections::{HashMap, HashSet};

use capstan::prelude::*;

#[workflow]
#[derive(Default)]
pub struct Wf {
    counts: Vec<HashMap<String, u32>>,
    seen: std::collections::HashSet<u64>,
    other: HashSet<u8>,
}

fn main() {}
