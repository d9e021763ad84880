/* A hostile program for `sandbox run`: each argument names one escape vector from
 * shared/escape-vectors.md. It prints "VECTOR: errno N" (or "VECTOR: ok") when the
 * attempt returns; a violation kills it before that line. Harmless unsandboxed:
 * signal 0, invalid magic numbers, arguments that fail after the permission check. */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <sched.h>
#include <signal.h>
#include <stddef.h>
#include <stdio.h>
#include <grp.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mount.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <termios.h>
#include <unistd.h>
#include <netinet/in.h>
#include <arpa/inet.h>
#include <linux/if_packet.h>
#include <net/ethernet.h>
#include <linux/filter.h>
#include <linux/seccomp.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <sys/un.h>

/* Copy the file at `self` into `out`; -1 on error. */
static long copy_self(int out, const char *self) {
    char buf[65536];
    long n;
    int in = open(self, O_RDONLY);
    if (in < 0) return -1;
    while ((n = read(in, buf, sizeof buf)) > 0)
        if (write(out, buf, n) != n) return -1;
    close(in);
    return n;
}

static void report(const char *v, long r) {
    if (r < 0) printf("%s: errno %d\n", v, errno); else printf("%s: ok\n", v);
    fflush(stdout);
}

int main(int argc, char **argv) {
    const char *v = argc > 1 ? argv[1] : "";
    long r = 0;
    if (!strcmp(v, "read_passwd")) r = open("/etc/passwd", O_RDONLY);
    else if (!strcmp(v, "read_proc_environ")) r = open("/proc/1/environ", O_RDONLY);
    else if (!strcmp(v, "write_root")) r = open("/evil", O_WRONLY | O_CREAT, 0600);
    else if (!strcmp(v, "ptrace_attach")) r = syscall(SYS_ptrace, 16 /* ATTACH */, getppid(), 0, 0);
    else if (!strcmp(v, "ptrace_traceme")) r = syscall(SYS_ptrace, 0 /* TRACEME */, 0, 0, 0);
    else if (!strcmp(v, "process_vm_readv")) r = syscall(SYS_process_vm_readv, 1, 0, 0, 0, 0, 0);
    else if (!strcmp(v, "kill_parent")) r = kill(getppid(), 0);
    else if (!strcmp(v, "kill_init")) r = kill(1, 0);
    else if (!strcmp(v, "unshare_user")) r = unshare(CLONE_NEWUSER);
    else if (!strcmp(v, "setns")) r = setns(0, 0);
    else if (!strcmp(v, "mount")) r = mount("none", "/", "tmpfs", 0, 0);
    else if (!strcmp(v, "chroot")) r = chroot("/");
    else if (!strcmp(v, "setuid0")) r = setuid(0);
    else if (!strcmp(v, "bpf")) r = syscall(SYS_bpf, 0, 0, 0);
    else if (!strcmp(v, "perf_event_open")) r = syscall(SYS_perf_event_open, 0, 0, -1, -1, 0);
    else if (!strcmp(v, "keyctl")) r = syscall(SYS_keyctl, 0, 0, 0, 0, 0);
    else if (!strcmp(v, "add_key")) r = syscall(SYS_add_key, "user", "x", "y", 1, 0);
    else if (!strcmp(v, "init_module")) r = syscall(SYS_init_module, 0, 0, "");
    else if (!strcmp(v, "kexec_load")) r = syscall(SYS_kexec_load, 0, 0, 0, 0);
    else if (!strcmp(v, "reboot")) r = syscall(SYS_reboot, 0, 0, 0, 0);
    else if (!strcmp(v, "swapon")) r = syscall(SYS_swapon, "/dev/null", 0);
    else if (!strcmp(v, "acct")) r = syscall(SYS_acct, 0);
    else if (!strcmp(v, "syslog")) r = syscall(SYS_syslog, 3, 0, 0);
    else if (!strcmp(v, "settimeofday")) r = syscall(SYS_settimeofday, 0, 0);
    else if (!strcmp(v, "sethostname")) r = syscall(SYS_sethostname, "x", 1);
    else if (!strcmp(v, "iopl")) r = syscall(SYS_iopl, 3);
    else if (!strcmp(v, "ioperm")) r = syscall(SYS_ioperm, 0, 1, 1);
    else if (!strcmp(v, "io_uring_setup")) r = syscall(SYS_io_uring_setup, 1, 0);
    else if (!strcmp(v, "userfaultfd")) r = syscall(SYS_userfaultfd, 0);
    else if (!strcmp(v, "tiocsti")) { char c = 'x'; r = ioctl(0, TIOCSTI, &c); }
    else if (!strcmp(v, "tiocsti_high_bits")) { char c = 'x'; r = syscall(SYS_ioctl, 0, 0x100000000UL | TIOCSTI, &c); }
    else if (!strcmp(v, "x32")) r = syscall(SYS_getpid | 0x40000000);
    else if (!strcmp(v, "socket_packet")) r = socket(AF_PACKET, SOCK_RAW, htons(ETH_P_ALL));
    else if (!strcmp(v, "socket_netlink_ok")) r = socket(AF_NETLINK, SOCK_RAW, 0);
    else if (!strcmp(v, "connect_localhost")) {
        int s = socket(AF_INET, SOCK_STREAM, 0);
        struct sockaddr_in a = { .sin_family = AF_INET, .sin_port = htons(9) };
        a.sin_addr.s_addr = htonl(0x7f000001);
        r = s < 0 ? s : connect(s, (struct sockaddr *)&a, sizeof a);
    }
    else if (!strcmp(v, "clone_newns")) r = syscall(SYS_clone, CLONE_NEWNS | SIGCHLD, 0, 0, 0, 0);
    else if (!strcmp(v, "int80")) {
        /* The i386 entry from 64-bit code: getpid is 20 there. */
        long ret;
        __asm__ volatile("int $0x80" : "=a"(ret) : "a"(20L) : "memory");
        r = ret < 0 ? (errno = -ret, -1) : ret;
    }
    else if (!strcmp(v, "seccomp_allow_all_then_ptrace")) {
        /* A second filter that allows everything cannot loosen the first. */
        struct sock_filter allow = BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ALLOW);
        struct sock_fprog prog = { .len = 1, .filter = &allow };
        if (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) == 0 &&
            syscall(SYS_seccomp, SECCOMP_SET_MODE_FILTER, 0, &prog) == 0)
            r = syscall(SYS_ptrace, 16 /* ATTACH */, 1, 0, 0);
        else
            r = -1;
    }
    else if (!strcmp(v, "clone3")) r = syscall(SYS_clone3, 0, 0);
    else if (!strcmp(v, "tioclinux")) { char c = 2; r = ioctl(0, TIOCLINUX, &c); }
    else if (!strcmp(v, "symlink_out")) r = symlink("/etc/passwd", "/evil");
    else if (!strcmp(v, "mknod")) r = mknod("/evil", S_IFCHR | 0600, makedev(1, 3));
    else if (!strcmp(v, "umount_root")) r = umount2("/", MNT_DETACH);
    else if (!strcmp(v, "pivot_root")) r = syscall(SYS_pivot_root, "/", "/");
    else if (!strcmp(v, "setgroups")) { gid_t g = 0; r = setgroups(1, &g); }
    else if (!strcmp(v, "request_key")) r = syscall(SYS_request_key, "user", "x", 0, 0);
    else if (!strcmp(v, "finit_module")) r = syscall(SYS_finit_module, -1, "", 0);
    else if (!strcmp(v, "connect_localhost6")) {
        int s = socket(AF_INET6, SOCK_STREAM, 0);
        struct sockaddr_in6 a = { .sin6_family = AF_INET6, .sin6_port = htons(9) };
        a.sin6_addr = in6addr_loopback;
        r = s < 0 ? s : connect(s, (struct sockaddr *)&a, sizeof a);
    }
    else if (!strncmp(v, "connect_abstract", 16)) {
        /* connect_abstract[=NAME]: an abstract name that may exist outside. */
        const char *name = v[16] == '=' ? v + 17 : "sandbox-hostile";
        size_t n = strlen(name);
        int s = socket(AF_UNIX, SOCK_STREAM, 0);
        struct sockaddr_un a = { .sun_family = AF_UNIX };
        if (n + 1 > sizeof a.sun_path) n = sizeof a.sun_path - 1;
        memcpy(a.sun_path + 1, name, n);
        v = "connect_abstract";
        r = s < 0 ? s : connect(s, (struct sockaddr *)&a, offsetof(struct sockaddr_un, sun_path) + 1 + n);
    }
    else if (!strcmp(v, "msg_oob") || !strcmp(v, "recv_oob")) {
        /* Out-of-band data on a unix stream pair: refused (errno) by the exec preset. */
        int s[2];
        char c = 'x';
        r = socketpair(AF_UNIX, SOCK_STREAM, 0, s);
        if (r == 0) r = send(s[0], &c, 1, 0);
        if (r >= 0) r = v[0] == 'm' ? send(s[0], &c, 1, MSG_OOB) : recv(s[1], &c, 1, MSG_OOB | MSG_DONTWAIT);
    }
    else if (!strcmp(v, "ran")) r = 0;
    else if (!strcmp(v, "tcgets")) { struct termios t; r = ioctl(0, TCGETS, &t); }
    else if (!strcmp(v, "tcsets")) {
        struct termios t = { 0 };
        ioctl(0, TCGETS, &t);
        t.c_lflag ^= ECHO;
        r = ioctl(0, TCSETS, &t);
    }
    else if (!strcmp(v, "tiocswinsz")) { struct winsize w = { .ws_row = 99, .ws_col = 77 }; r = ioctl(0, TIOCSWINSZ, &w); }
    else if (!strcmp(v, "tiocsetd")) { int ld = 0 /* N_TTY */; r = ioctl(0, TIOCSETD, &ld); }
    else if (!strcmp(v, "own_session")) { errno = 0; r = getsid(0) == getpid() ? 0 : -1; }
    else if (!strncmp(v, "exec_from_rw=", 13)) {
        /* Copy itself into a writable grant and run the copy. */
        char path[4096];
        int fd;
        snprintf(path, sizeof path, "%s/copy", v + 13);
        v = "exec_from_rw";
        fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0755);
        r = fd < 0 ? fd : copy_self(fd, argv[0]);
        if (r >= 0) {
            char *a[] = { path, "ran", 0 };
            close(fd);
            r = execv(path, a);
        }
    }
    else if (!strcmp(v, "memfd_exec") || !strcmp(v, "memfd_chmod_exec")) {
        /* Copy itself into a memfd (no file anywhere) and run that. */
        int fd = syscall(SYS_memfd_create, "x", 0);
        r = fd < 0 ? fd : copy_self(fd, argv[0]);
        if (r >= 0 && v[6] == 'c') r = fchmod(fd, 0755);
        if (r >= 0) {
            char *a[] = { "x", "ran", 0 }, *e[] = { 0 };
            r = syscall(SYS_execveat, fd, "", a, e, AT_EMPTY_PATH);
        }
    }
    else if (!strcmp(v, "memfd_mfd_exec")) r = syscall(SYS_memfd_create, "x", 0x10 /* MFD_EXEC */);
    else if (!strcmp(v, "memfd_works")) {
        /* An ordinary memfd still works: write, seal, read back. */
        char c = 0;
        int fd = syscall(SYS_memfd_create, "x", 3 /* MFD_CLOEXEC | MFD_ALLOW_SEALING */);
        r = fd < 0 ? fd : write(fd, "m", 1);
        if (r >= 0) r = fcntl(fd, F_ADD_SEALS, F_SEAL_WRITE);
        if (r >= 0) r = pread(fd, &c, 1, 0);
        if (r >= 0 && c != 'm') r = -1;
        if (r >= 0) r = (fcntl(fd, F_GETFD) & FD_CLOEXEC) ? 0 : -1;
    }
    else if (!strcmp(v, "fd_exhaustion")) {
        long n = 0;
        while (dup(1) >= 0) n++;
        printf("fds: %ld\n", n);
        r = -1;
    }
    else { printf("unknown vector %s\n", v); return 2; }
    report(v, r);
    return 0;
}
