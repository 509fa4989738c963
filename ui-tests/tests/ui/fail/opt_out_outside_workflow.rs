use capstan::prelude::*;

#[allow_nondeterministic(reason = "not workflow code: exempts nothing")]
pub fn plain() -> std::time::SystemTime {
    std::time::SystemTime::now()
}

#[allow_nondeterministic(reason = "runs before `#[workflow_fn]` sees it")]
#[workflow_fn]
pub fn helper() -> std::time::SystemTime {
    std::time::SystemTime::now()
}

fn main() {}
