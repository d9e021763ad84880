//! A 16 MiB payload through a sealed memfd, against a plain memcpy of the same bytes.
//!
//! ```sh
//! cargo run --release -p sandbox --example blob_bench [-- RUNS]
//! ```
//!
//! Every path ends by touching every byte it delivers with the same checksum (a
//! wrapping sum of little-endian u64 words), so the memcpy baseline is charged the same
//! read as the mapping: the comparison is between ways of getting the bytes into the
//! receiver's hands, reading included.
//!
//! * memcpy: `copy_from_slice` into a Vec allocated (and faulted in) once, then checksum;
//! * memfd + map: sender `SealedBlob::from_bytes` (memfd_create, write, seal); receiver
//!   `SealedBlob::receive` (the checks), `map`, checksum, then drop both (munmap, the
//!   last close frees the memfd's pages);
//! * memfd + read_to_vec: the same sender; the receiver copies out with `pread`.
//!
//! Passing the descriptor over the socket (one SCM_RIGHTS message, a few µs) is not
//! included. Runs are interleaved (each round runs every path once) so drift hits all
//! alike; the table gives medians and the min–max range.

use sandbox::ipc::blob::SealedBlob;
use std::hint::black_box;
use std::time::{Duration, Instant};

const LEN: usize = 16 << 20;

fn checksum(bytes: &[u8]) -> u64 {
    let mut words = bytes.chunks_exact(8);
    let mut sum = 0u64;
    for w in &mut words {
        let mut a = [0u8; 8];
        a.copy_from_slice(w);
        sum = sum.wrapping_add(u64::from_le_bytes(a));
    }
    for &b in words.remainder() {
        sum = sum.wrapping_add(u64::from(b));
    }
    sum
}

/// Named durations of one run of one path.
type Steps = Vec<(&'static str, Duration)>;

fn memcpy(src: &[u8], dst: &mut [u8], expect: u64) -> Steps {
    let t0 = Instant::now();
    dst.copy_from_slice(black_box(src));
    let t1 = Instant::now();
    let sum = checksum(black_box(dst));
    let t2 = Instant::now();
    assert_eq!(sum, expect);
    vec![("copy_from_slice", t1 - t0), ("checksum", t2 - t1)]
}

fn memfd_map(src: &[u8], expect: u64) -> Steps {
    let t0 = Instant::now();
    let sent = SealedBlob::from_bytes("bench", black_box(src)).expect("from_bytes");
    let fd = sent.into_fd();
    let t1 = Instant::now();
    let blob = SealedBlob::receive(fd, LEN).expect("receive");
    let t2 = Instant::now();
    let mapping = blob.map().expect("map");
    let t3 = Instant::now();
    let sum = checksum(black_box(&mapping));
    let t4 = Instant::now();
    drop(mapping);
    drop(blob);
    let t5 = Instant::now();
    assert_eq!(sum, expect);
    vec![
        ("from_bytes", t1 - t0),
        ("receive", t2 - t1),
        ("map", t3 - t2),
        ("checksum", t4 - t3),
        ("munmap + close", t5 - t4),
    ]
}

fn memfd_read(src: &[u8], expect: u64) -> Steps {
    let t0 = Instant::now();
    let sent = SealedBlob::from_bytes("bench", black_box(src)).expect("from_bytes");
    let fd = sent.into_fd();
    let t1 = Instant::now();
    let blob = SealedBlob::receive(fd, LEN).expect("receive");
    let t2 = Instant::now();
    let bytes = blob.read_to_vec().expect("read_to_vec");
    let t3 = Instant::now();
    let sum = checksum(black_box(&bytes));
    let t4 = Instant::now();
    drop(bytes);
    drop(blob);
    let t5 = Instant::now();
    assert_eq!(sum, expect);
    vec![
        ("from_bytes", t1 - t0),
        ("receive", t2 - t1),
        ("read_to_vec", t3 - t2),
        ("checksum", t4 - t3),
        ("free + close", t5 - t4),
    ]
}

fn median(mut v: Vec<Duration>) -> Duration {
    v.sort();
    v[v.len() / 2]
}

fn us(d: Duration) -> String {
    format!("{:.0}", d.as_secs_f64() * 1e6)
}

fn gibs(d: Duration) -> f64 {
    LEN as f64 / d.as_secs_f64() / f64::from(1u32 << 30)
}

fn main() {
    let runs: usize = std::env::args()
        .nth(1)
        .map(|a| a.parse().expect("RUNS is a number"))
        .unwrap_or(31);
    let src: Vec<u8> = (0..LEN).map(|i| (i * 31 + 7) as u8).collect();
    let expect = checksum(&src);
    let mut dst = vec![1u8; LEN]; // written once: faulted in before timing

    let names = ["memcpy", "memfd + map", "memfd + read_to_vec"];
    let mut all: [Vec<Steps>; 3] = [Vec::new(), Vec::new(), Vec::new()];
    for round in 0..runs + 3 {
        let r = [
            memcpy(&src, &mut dst, expect),
            memfd_map(&src, expect),
            memfd_read(&src, expect),
        ];
        if round >= 3 {
            for (k, steps) in r.into_iter().enumerate() {
                all[k].push(steps);
            }
        }
    }
    eprintln!("{runs} runs (+3 warm-up) of each path, 16 MiB, interleaved");

    let totals: Vec<Vec<Duration>> = all
        .iter()
        .map(|rs| rs.iter().map(|s| s.iter().map(|(_, d)| *d).sum()).collect())
        .collect();
    let base_copy = median(all[0].iter().map(|s| s[0].1).collect());
    let base_total = median(totals[0].clone());

    println!("| path (16 MiB, every byte checksummed) | median µs | min–max µs | GiB/s | vs. memcpy + checksum | vs. bare memcpy |");
    println!("|---|---:|---:|---:|---:|---:|");
    println!(
        "| bare memcpy (`copy_from_slice`, no checksum) | {} | {}–{} | {:.2} | – | 1.00× |",
        us(base_copy),
        us(*all[0].iter().map(|s| &s[0].1).min().expect("runs")),
        us(*all[0].iter().map(|s| &s[0].1).max().expect("runs")),
        gibs(base_copy)
    );
    for (k, name) in names.iter().enumerate() {
        let m = median(totals[k].clone());
        let min = *totals[k].iter().min().expect("runs");
        let max = *totals[k].iter().max().expect("runs");
        println!(
            "| {name} + checksum | {} | {}–{} | {:.2} | {:.2}× | {:.2}× |",
            us(m),
            us(min),
            us(max),
            gibs(m),
            base_total.as_secs_f64() / m.as_secs_f64(),
            base_copy.as_secs_f64() / m.as_secs_f64(),
        );
    }
    println!();
    println!("Steps (median µs of each step; medians do not add up exactly):");
    println!();
    println!("| path | step | median µs | GiB/s |");
    println!("|---|---|---:|---:|");
    for (k, name) in names.iter().enumerate() {
        for (i, (step, _)) in all[k][0].iter().enumerate() {
            let m = median(all[k].iter().map(|s| s[i].1).collect());
            println!("| {name} | {step} | {} | {:.2} |", us(m), gibs(m));
        }
    }
}
