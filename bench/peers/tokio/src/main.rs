// W8's and W9's servers on Tokio, for same-run comparisons through
// `throughput --server=...` (bench/README.md): `tokio_server
// echo-server|http-server <max_s>` binds 127.0.0.1 on a free port, prints
// `LISTEN <port>`, serves until it is killed or max_s seconds pass. Two
// worker threads, as the contract asks; each connection is a spawned task.
use std::io::Write;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

async fn echo(mut s: TcpStream) {
    let mut buf = vec![0u8; 65536];
    loop {
        let n = match s.read(&mut buf).await {
            Ok(0) | Err(_) => return,
            Ok(n) => n,
        };
        if s.write_all(&buf[..n]).await.is_err() {
            return;
        }
    }
}

const HELLO: &[u8] = b"HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: 5\r\n\r\nhello";

// Keep-alive: answers every complete request head in the buffer.
async fn http(mut s: TcpStream) {
    let mut buf = vec![0u8; 8192];
    let mut len = 0usize;
    loop {
        while let Some(p) = buf[..len].windows(4).position(|w| w == b"\r\n\r\n") {
            buf.copy_within(p + 4..len, 0);
            len -= p + 4;
            if s.write_all(HELLO).await.is_err() {
                return;
            }
        }
        if len == buf.len() {
            return; // a head larger than the buffer
        }
        let n = match s.read(&mut buf[len..]).await {
            Ok(0) | Err(_) => return,
            Ok(n) => n,
        };
        len += n;
    }
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let usage = "usage: tokio_server echo-server|http-server <max_s>";
    if args.len() != 3 || (args[1] != "echo-server" && args[1] != "http-server") {
        eprintln!("{}", usage);
        std::process::exit(2);
    }
    let is_echo = args[1] == "echo-server";
    let max_s: f64 = args[2].parse().unwrap_or_else(|_| {
        eprintln!("{}", usage);
        std::process::exit(2)
    });
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async move {
        let l = TcpListener::bind("127.0.0.1:0").await.unwrap();
        println!("LISTEN {}", l.local_addr().unwrap().port());
        std::io::stdout().flush().unwrap();
        let serve = async move {
            loop {
                let (s, _) = match l.accept().await {
                    Ok(c) => c,
                    Err(_) => continue,
                };
                s.set_nodelay(true).unwrap();
                if is_echo {
                    tokio::spawn(echo(s));
                } else {
                    tokio::spawn(http(s));
                }
            }
        };
        tokio::select! {
            _ = serve => {},
            _ = tokio::time::sleep(std::time::Duration::from_secs_f64(max_s)) => {},
        }
    });
    std::process::exit(0);
}
