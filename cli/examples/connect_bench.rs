//! A brokered `connect()` (`sandbox run --connect`) against a native one, in the same
//! run: a C program connects to a loopback server the bench started N times, closing
//! each socket, and prints the median time per `connect` it measured itself; once run
//! directly, once under `sandbox run --connect 127.0.0.1:PORT`.
//!
//! ```sh
//! cargo build --release --bin sandbox && cargo run --release -p sandbox-cli --example connect_bench
//! ```

mod common;

use std::process::Command;

const CLIENT: &str = r#"
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

static int cmp(const void *a, const void *b) {
    long x = *(const long *)a, y = *(const long *)b;
    return (x > y) - (x < y);
}

int main(int argc, char **argv) {
    int n = atoi(argv[2]);
    long *t = malloc(sizeof(long) * n);
    struct sockaddr_in a = {0};
    a.sin_family = AF_INET;
    a.sin_port = htons(atoi(argv[1]));
    a.sin_addr.s_addr = htonl(0x7f000001);
    for (int i = 0; i < n; i++) {
        int s = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
        struct timespec b, e;
        clock_gettime(CLOCK_MONOTONIC, &b);
        if (connect(s, (struct sockaddr *)&a, sizeof a) != 0) { perror("connect"); return 1; }
        clock_gettime(CLOCK_MONOTONIC, &e);
        t[i] = (e.tv_sec - b.tv_sec) * 1000000000L + (e.tv_nsec - b.tv_nsec);
        close(s);
    }
    qsort(t, n, sizeof(long), cmp);
    printf("%ld\n", t[n / 2]);
    return 0;
}
"#;

fn median_ns(cmd: &mut Command) -> f64 {
    let out = cmd.output().expect("runs");
    assert!(
        out.status.success(),
        "{cmd:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout)
        .trim()
        .parse()
        .expect("a number")
}

fn main() {
    let sandbox = common::sandbox_binary();
    let dir = std::env::temp_dir().join(format!("connect_bench-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("temp dir");
    std::fs::write(dir.join("client.c"), CLIENT).expect("write");
    let client = dir.join("client");
    let cc = Command::new("cc")
        .args(["-O2", "-o"])
        .arg(&client)
        .arg(dir.join("client.c"))
        .status()
        .expect("cc");
    assert!(cc.success(), "cc failed");
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    let port = listener.local_addr().expect("addr").port();
    std::thread::spawn(move || for _ in listener.incoming() {});
    let n = "2000";
    let allow = format!("127.0.0.1:{port}");
    let dir_arg = dir.display().to_string();
    let (mut native, mut brokered) = (Vec::new(), Vec::new());
    for _ in 0..5 {
        native.push(median_ns(
            Command::new(&client).arg(port.to_string()).arg(n),
        ));
        brokered.push(median_ns(
            Command::new(&sandbox)
                .arg("run")
                .args(common::SYSTEM_BINDS)
                .args(["--ro", &dir_arg, "--connect", &allow, "--"])
                .arg(&client)
                .arg(port.to_string())
                .arg(n),
        ));
    }
    let mid = |mut v: Vec<f64>| {
        v.sort_by(f64::total_cmp);
        v[v.len() / 2] / 1e3
    };
    let (native, brokered) = (mid(native), mid(brokered));
    println!("| connect() to a loopback server (median of 5 runs of each program's median of {n}) | µs | vs native |");
    println!("|---|---:|---:|");
    println!("| native | {native:.1} | 1.00× |");
    println!(
        "| `sandbox run --connect` (brokered) | {brokered:.1} | {:.2}× |",
        brokered / native
    );
    let _ = std::fs::remove_dir_all(&dir);
}
