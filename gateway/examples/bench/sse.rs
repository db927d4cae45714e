//! A minimal SSE client over a raw socket, so the bench itself stays small
//! beside tens of thousands of streams: it writes the request and waits for
//! the `status` events; [`crate::readers`] reads the logs after that.

use std::net::{IpAddr, SocketAddr};

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpSocket, TcpStream};

/// Opens `GET /api/logs/stream?channels=…` from `local` (a loopback source
/// address: each has its own ~28,000 ephemeral ports) and returns once the
/// stream's `status` events arrived.
pub async fn open(addr: SocketAddr, local: IpAddr, channels: &str) -> std::io::Result<Stream> {
    let socket = TcpSocket::new_v4()?;
    socket.bind(SocketAddr::new(local, 0))?;
    let mut tcp = socket.connect(addr).await?;
    let request =
        format!("GET /api/logs/stream?channels={channels} HTTP/1.1\r\nHost: bench\r\n\r\n");
    tcp.write_all(request.as_bytes()).await?;
    let mut seen = Vec::with_capacity(1024);
    let mut buf = [0u8; 1024];
    loop {
        let n = tcp.read(&mut buf).await?;
        if n == 0 {
            return Err(std::io::Error::other(format!(
                "stream refused: {}",
                String::from_utf8_lossy(&seen)
            )));
        }
        seen.extend_from_slice(&buf[..n]);
        if !seen.starts_with(b"HTTP/1.1 200") && seen.len() >= 12 {
            return Err(std::io::Error::other(format!(
                "stream refused: {}",
                String::from_utf8_lossy(&seen)
            )));
        }
        if memchr::memmem::find(&seen, b"event: status").is_some() {
            return Ok(Stream { tcp });
        }
    }
}

pub struct Stream {
    tcp: TcpStream,
}

impl Stream {
    /// The socket, for the reader thread ([`crate::readers`]).
    pub fn into_std(self) -> std::net::TcpStream {
        self.tcp.into_std().unwrap()
    }
}
