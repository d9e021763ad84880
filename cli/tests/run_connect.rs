//! `sandbox run --connect HOST:PORT`, as root and as uid 65534: a C program reaches a
//! loopback server the test started, by address and by a name from the sandbox's
//! /etc/hosts, and over IPv6 loopback, and is refused (EACCES) on another open port
//! and for UDP.

mod common;
use common::{both, compile, run, text, tmp};
use std::io::{Read, Write};
use std::net::TcpListener;

const CLIENT: &str = r#"
#include <errno.h>
#include <fcntl.h>
#include <netdb.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

static void tcp_in(int family, const char *host, const char *port) {
    struct addrinfo hints = {0}, *res;
    hints.ai_family = family;
    hints.ai_socktype = SOCK_STREAM;
    int r = getaddrinfo(host, port, &hints, &res);
    if (r) { printf("%s: %s\n", host, gai_strerror(r)); return; }
    int s = socket(res->ai_family, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (connect(s, res->ai_addr, res->ai_addrlen) != 0) {
        printf("%s refused %d\n", host, errno);
        return;
    }
    char buf[8] = {0};
    if (write(s, "ping", 4) != 4 || read(s, buf, 4) != 4) { printf("%s io %d\n", host, errno); return; }
    printf("%s %s cloexec=%d\n", host, buf, (fcntl(s, F_GETFD) & FD_CLOEXEC) != 0);
    /* A send that would connect the socket elsewhere (TCP fast open): refused. */
    if (family == AF_INET && !strcmp(host, "127.0.0.1")) {
        struct sockaddr_in other = { .sin_family = AF_INET, .sin_port = htons(9) };
        other.sin_addr.s_addr = htonl(0x7f000001);
        int r = sendto(s, "x", 1, MSG_FASTOPEN, (struct sockaddr *)&other, sizeof other);
        printf("fastopen %d\n", r == 0 ? 0 : errno);
    }
    close(s);
}

static void tcp(const char *host, const char *port) { tcp_in(AF_INET, host, port); }

int main(int argc, char **argv) {
    if (argc < 4) return 2;
    tcp("127.0.0.1", argv[1]);
    tcp("localhost", argv[1]);
    tcp("127.0.0.1", argv[2]);
    tcp_in(AF_INET6, "::1", argv[3]);
    int u = socket(AF_INET, SOCK_DGRAM, 0);
    struct sockaddr_in a = {0};
    a.sin_family = AF_INET;
    a.sin_port = htons(atoi(argv[1]));
    a.sin_addr.s_addr = htonl(0x7f000001);
    printf("udp %d\n", connect(u, (struct sockaddr *)&a, sizeof a) == 0 ? 0 : errno);
    return 0;
}
"#;

/// A loopback server (on `at`) answering "pong" to each connection's "ping", on its own
/// thread.
fn server(at: &str) -> u16 {
    let listener = TcpListener::bind(at).expect("bind");
    let port = listener.local_addr().expect("addr").port();
    std::thread::spawn(move || {
        for mut conn in listener.incoming().flatten() {
            let mut buf = [0u8; 4];
            if conn.read_exact(&mut buf).is_ok() && &buf == b"ping" {
                let _ = conn.write_all(b"pong");
            }
        }
    });
    port
}

#[test]
fn allowed_destinations_connect_and_others_are_refused() {
    let dir = tmp("connect");
    let client = compile(&dir, "client", CLIENT);
    let allowed = server("127.0.0.1:0");
    // IPv6 loopback: this machine class has it; a test that skipped it could not fail.
    let v6 = server("[::1]:0");
    // Open, but not on the list: refused by the supervisor, not by the kernel.
    let other = TcpListener::bind("127.0.0.1:0").expect("bind");
    let other_port = other.local_addr().expect("addr").port();
    both(|nobody| {
        let (a, o, six) = (allowed.to_string(), other_port.to_string(), v6.to_string());
        let by_v6 = format!("[::1]:{v6}");
        let by_ip = format!("127.0.0.1:{allowed}");
        let by_name = format!("localhost:{allowed}");
        let r = run(
            &[
                "--ro",
                dir.to_str().expect("utf-8"),
                "--connect",
                &by_ip,
                "--connect",
                &by_name,
                "--connect",
                &by_v6,
                "--",
                client.to_str().expect("utf-8"),
                &a,
                &o,
                &six,
            ],
            nobody,
        );
        let err = text(&r.stderr);
        assert_eq!(r.status.code(), Some(0), "{err}");
        assert_eq!(
            text(&r.stdout),
            "127.0.0.1 pong cloexec=1\nfastopen 13\nlocalhost pong cloexec=1\n127.0.0.1 refused 13\n\
             ::1 pong cloexec=1\nudp 13\n",
            "nobody={nobody}: {err}"
        );
        assert!(
            err.contains(&format!("refused a connection to 127.0.0.1:{other_port}")),
            "{err}"
        );
    });
    let _ = std::fs::remove_dir_all(&dir);
}
