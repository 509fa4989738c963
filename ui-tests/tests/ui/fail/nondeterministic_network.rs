use std::net::UdpSocket;

use capstan::prelude::*;

#[workflow]
#[derive(Default)]
pub struct Wf;

#[workflow]
impl Wf {
    #[run]
    pub async fn run(_ctx: WorkflowContext<Self>) -> WorkflowResult<()> {
        // An address is a plain value: no error.
        let local = std::net::Ipv4Addr::new(127, 0, 0, 1);
        let stream = std::net::TcpStream::connect((local, 8080));
        let socket = UdpSocket::bind("0.0.0.0:0");
        drop((stream, socket));
        Ok(())
    }
}

fn main() {}
