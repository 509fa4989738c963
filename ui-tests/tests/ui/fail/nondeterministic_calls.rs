use capstan::prelude::*;

#[workflow]
#[derive(Default)]
pub struct Wf;

#[workflow]
impl Wf {
    #[run]
    pub async fn run(_ctx: WorkflowContext<Self>) -> WorkflowResult<()> {
        let started = std::time::SystemTime::now();
        let elapsed = std::time::Instant::now();
        tokio::spawn(async {});
        std::thread::sleep(std::time::Duration::from_secs(1));
        let config = std::fs::read_to_string("config.toml");
        Ok(())
    }

    #[signal]
    pub fn poke(&mut self) {
        std::thread::spawn(|| {});
        println!("{:?}", tokio::time::sleep(std::time::Duration::from_secs(1)));
    }
}

mod tokio {
    pub fn spawn<T>(_: T) {}
    pub mod time {
        pub fn sleep(_: std::time::Duration) {}
    }
}

fn main() {}
