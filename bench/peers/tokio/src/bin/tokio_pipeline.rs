// W10 `pipeline` on Tokio, the peer of weft's (bench/README.md): a read stage,
// zlib level-1 compression on the blocking pool, and a write stage to a TCP
// sink, with a bounded channel of 16 chunks between them as the backpressure.
//
//   tokio_pipeline [--workers=N] [--scale=F] [pipeline|W10]
//
// Input: 64 MiB x F (rounded to whole bytes, at least one chunk), made before
// timing from a 64-bit LCG (x = x * 6364136223846793005 + 1442695040888963407,
// byte = "etaoinshrdlucmfw"[x >> 60]), cut into 65,536-byte chunks. The
// reader copies each chunk into a fresh Vec (a stand-in for a read), hands
// it to `spawn_blocking(compress)` and sends the JoinHandle into
// `mpsc::channel(16)`; the writer awaits the handles in order and writes one
// frame per chunk, one write_all each (u32 LE compressed length, u32 LE raw length, the
// compressed bytes) to a TcpStream whose other end a sink task reads to EOF.
// Timed: from just before the reader starts to the sink returning its count.
// compress is zlib's own compress2 (level 1) through its C ABI, the library
// weft calls. Three runs on one runtime; each on stderr, the median on stdout:
//   tokio pipeline mb_per_s <MB/s> MB/s
// Exit status: 0; 1 when a run fails or its check does not hold (the sink's
// count is the writer's total; 0 < compressed total < input); 2 for a bad
// command line.
use std::os::raw::{c_int, c_uchar, c_ulong};
use std::sync::Arc;
use std::time::Instant;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::task::JoinHandle;

#[link(name = "z")]
extern "C" {
    fn compressBound(source_len: c_ulong) -> c_ulong;
    fn compress2(
        dest: *mut c_uchar,
        dest_len: *mut c_ulong,
        source: *const c_uchar,
        source_len: c_ulong,
        level: c_int,
    ) -> c_int;
}

const Z_OK: c_int = 0;
const INPUT_BYTES: f64 = 67_108_864.0;
const CHUNK: usize = 65_536;
const QUEUE: usize = 16;
const RUNS: usize = 3;
const USAGE: &str = "usage: tokio_pipeline [--workers=N] [--scale=F] [pipeline|W10]";

fn bad(msg: &str) -> ! {
    eprintln!("error: {}\n{}", msg, USAGE);
    std::process::exit(2)
}

fn make_input(n: usize) -> Vec<u8> {
    const ALPHABET: &[u8; 16] = b"etaoinshrdlucmfw";
    let mut x: u64 = 1;
    let mut v = Vec::with_capacity(n);
    for _ in 0..n {
        x = x
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        v.push(ALPHABET[(x >> 60) as usize]);
    }
    v
}

// One chunk through zlib's compress2 at level 1, as a whole frame (the 8-byte
// header in front of the zlib stream, one buffer, as weft's frames are):
// (frame bytes, raw length).
fn compress(src: Vec<u8>) -> Result<(Vec<u8>, usize), String> {
    let len = src.len();
    unsafe {
        let bound = compressBound(len as c_ulong);
        let mut dst: Vec<u8> = Vec::with_capacity(8 + bound as usize);
        let mut dst_len: c_ulong = bound;
        let rc = compress2(dst.as_mut_ptr().add(8), &mut dst_len, src.as_ptr(), len as c_ulong, 1);
        if rc != Z_OK {
            return Err(format!("compress2 returned {}", rc));
        }
        dst.set_len(8 + dst_len as usize);
        dst[..4].copy_from_slice(&(dst_len as u32).to_le_bytes());
        dst[4..8].copy_from_slice(&(len as u32).to_le_bytes());
        Ok((dst, len))
    }
}

type Compressed = JoinHandle<Result<(Vec<u8>, usize), String>>;

async fn read_stage(input: Arc<Vec<u8>>, tx: tokio::sync::mpsc::Sender<Compressed>) {
    let mut at = 0usize;
    while at < input.len() {
        let end = (at + CHUNK).min(input.len());
        let chunk = input[at..end].to_vec();
        at = end;
        let h = tokio::task::spawn_blocking(move || compress(chunk));
        if tx.send(h).await.is_err() {
            return; // the writer failed and dropped its receiver
        }
    }
}

// Returns (bytes written, compressed payload bytes).
async fn write_stage(
    mut rx: tokio::sync::mpsc::Receiver<Compressed>,
    mut out: TcpStream,
) -> Result<(u64, u64), String> {
    let mut total = 0u64;
    let mut compressed = 0u64;
    while let Some(h) = rx.recv().await {
        let (frame, _raw) = h.await.map_err(|e| format!("compress task: {}", e))??;
        out.write_all(&frame).await.map_err(|e| format!("write: {}", e))?;
        total += frame.len() as u64;
        compressed += (frame.len() - 8) as u64;
    }
    out.shutdown().await.map_err(|e| format!("shutdown: {}", e))?;
    Ok((total, compressed))
}

async fn sink(listener: TcpListener) -> Result<u64, String> {
    let (mut s, _) = listener.accept().await.map_err(|e| format!("accept: {}", e))?;
    let mut buf = vec![0u8; 65536];
    let mut count = 0u64;
    loop {
        match s.read(&mut buf).await {
            Ok(0) => return Ok(count),
            Ok(n) => count += n as u64,
            Err(e) => return Err(format!("sink read: {}", e)),
        }
    }
}

// One run; returns (MB/s, bytes written, compressed payload bytes).
async fn run_once(input: Arc<Vec<u8>>) -> Result<(f64, u64, u64), String> {
    let listener = TcpListener::bind("127.0.0.1:0").await.map_err(|e| format!("bind: {}", e))?;
    let addr = listener.local_addr().map_err(|e| format!("local_addr: {}", e))?;
    let sink_task = tokio::spawn(sink(listener));
    let out = TcpStream::connect(addr).await.map_err(|e| format!("connect: {}", e))?;
    out.set_nodelay(true).map_err(|e| format!("set_nodelay: {}", e))?;
    let (tx, rx) = tokio::sync::mpsc::channel::<Compressed>(QUEUE);
    let bytes = input.len();

    let t0 = Instant::now();
    let reader = tokio::spawn(read_stage(input, tx));
    let writer = tokio::spawn(write_stage(rx, out));
    let received = sink_task.await.map_err(|e| format!("sink task: {}", e))??;
    let secs = t0.elapsed().as_secs_f64();

    reader.await.map_err(|e| format!("read task: {}", e))?;
    let (written, compressed) = writer.await.map_err(|e| format!("write task: {}", e))??;
    if received != written {
        return Err(format!("the sink read {} bytes, the writer wrote {}", received, written));
    }
    if compressed == 0 || compressed >= bytes as u64 {
        return Err(format!("compressed total {} for {} input bytes", compressed, bytes));
    }
    Ok((bytes as f64 / 1e6 / secs, written, compressed))
}

fn main() {
    let mut workers: usize = 2;
    let mut scale: f64 = 1.0;
    for a in std::env::args().skip(1) {
        if a == "-h" || a == "--help" {
            println!("{}", USAGE);
            return;
        } else if let Some(v) = a.strip_prefix("--workers=") {
            workers = match v.parse::<usize>() {
                Ok(n) if (1..=1024).contains(&n) => n,
                _ => bad(&format!("bad {} (want --workers=N, 1 <= N <= 1024)", a)),
            };
        } else if let Some(v) = a.strip_prefix("--scale=") {
            scale = match v.parse::<f64>() {
                Ok(f) if f > 0.0 && f <= 1.0 => f,
                _ => bad(&format!("bad {} (want --scale=F, 0 < F <= 1)", a)),
            };
        } else if a.eq_ignore_ascii_case("pipeline") || a.eq_ignore_ascii_case("w10") {
            // the only workload
        } else {
            bad(&format!("unknown workload or option `{}`", a));
        }
    }

    let bytes = ((INPUT_BYTES * scale).round() as usize).max(CHUNK);
    let input = Arc::new(make_input(bytes));
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(workers)
        .enable_all()
        .build()
        .unwrap_or_else(|e| {
            eprintln!("error: runtime: {}", e);
            std::process::exit(1)
        });
    eprintln!(
        "tokio_pipeline: {} workers, {} input bytes in {}-byte chunks, {} runs",
        workers, bytes, CHUNK, RUNS
    );
    let mut rates = Vec::with_capacity(RUNS);
    let mut sizes = (0u64, 0u64);
    for k in 1..=RUNS {
        match rt.block_on(run_once(input.clone())) {
            Ok((r, written, compressed)) => {
                eprintln!("run {}: {:.1} MB/s", k, r);
                rates.push(r);
                sizes = (written, compressed);
            }
            Err(e) => {
                eprintln!("error: pipeline: run {}: {}", k, e);
                std::process::exit(1);
            }
        }
    }
    // The same in every run, and the same as weft's for the same --scale: a check that both
    // do the same work.
    eprintln!(
        "tokio_pipeline: {} chunks, {} compressed bytes, {} bytes written per run",
        (bytes + CHUNK - 1) / CHUNK,
        sizes.1,
        sizes.0
    );
    rates.sort_by(|a, b| a.partial_cmp(b).unwrap());
    println!("tokio pipeline mb_per_s {:.1} MB/s", rates[RUNS / 2]);
}
