//! A minimal SSE client over a raw socket, so the bench itself stays small
//! beside tens of thousands of streams: it writes the request, waits for the
//! `status` events, then counts `log` events and reads the send time each
//! bench log carries in `logData.t`.

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

const T_KEY: &[u8] = b"\"t\":";

impl Stream {
    /// Reads until `want` logs arrived or the stream ended, calling
    /// `on_log(sent_us)` for each log with its send time. Returns the count.
    pub async fn read_logs(&mut self, want: u64, mut on_log: impl FnMut(u64)) -> u64 {
        let mut count = 0;
        let mut buf = vec![0u8; 64 * 1024];
        let mut carry = 0usize;
        while count < want {
            let Ok(n) = self.tcp.read(&mut buf[carry..]).await else {
                break;
            };
            if n == 0 {
                break;
            }
            let end = carry + n;
            let data = &buf[..end];
            // Parse up to the last complete event; keep the rest.
            let complete = memchr::memmem::rfind(data, b"\n\n").map_or(0, |i| i + 2);
            for at in memchr::memmem::find_iter(&data[..complete], T_KEY) {
                let digits = &data[at + T_KEY.len()..];
                let len = digits.iter().take_while(|b| b.is_ascii_digit()).count();
                let sent = std::str::from_utf8(&digits[..len])
                    .ok()
                    .and_then(|s| s.parse().ok())
                    .unwrap_or(0);
                on_log(sent);
                count += 1;
            }
            buf.copy_within(complete..end, 0);
            carry = end - complete;
            if carry == buf.len() {
                buf.resize(buf.len() * 2, 0);
            }
        }
        count
    }
}
