/* Escape vectors for a locked-down renderer (tests/escape.rs): each name one attempt,
 * made with one syscall (or a short sequence) whose arguments are integers, string
 * literals or this function's own stack buffers. Harmless unsandboxed: signal 0,
 * invalid magic numbers, arguments that fail after the permission check, bounded
 * loops. Returns the call's result; *err is errno when it is negative. */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <linux/filter.h>
#include <linux/seccomp.h>
#include <netinet/in.h>
#include <sched.h>
#include <signal.h>
#include <stddef.h>
#include <stdio.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/mount.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/sysmacros.h>
#include <sys/un.h>
#include <termios.h>
#include <time.h>
#include <unistd.h>

#define IS(name) (!strcmp(v, name))

static long unix_connect(int abstract) {
    struct sockaddr_un a = { .sun_family = AF_UNIX };
    int s = socket(AF_UNIX, SOCK_STREAM, 0);
    if (s < 0) return s;
    if (abstract) memcpy(a.sun_path + 1, "escape", 6);
    else strcpy(a.sun_path, "/run/escape.sock");
    return connect(s, (struct sockaddr *)&a, abstract ? offsetof(struct sockaddr_un, sun_path) + 7 : sizeof a);
}

long escape_attempt(const char *v, const char *grant, int *err) {
    long r = -2;
    char path[4200];
    errno = 0;
    /* --- files --- */
    if (IS("read_passwd")) r = open("/etc/passwd", O_RDONLY);
    else if (IS("read_shadow")) r = open("/etc/shadow", O_RDONLY);
    else if (IS("read_proc_1_environ")) r = open("/proc/1/environ", O_RDONLY);
    else if (IS("read_proc_self_environ")) r = open("/proc/self/environ", O_RDONLY);
    else if (IS("write_proc_self_mem")) r = open("/proc/self/mem", O_RDWR);
    else if (IS("read_sys")) r = open("/sys/kernel/notes", O_RDONLY);
    else if (IS("create_tmp")) r = open("/tmp/evil", O_WRONLY | O_CREAT, 0600);
    else if (IS("create_dev_shm")) r = open("/dev/shm/evil", O_WRONLY | O_CREAT, 0600);
    else if (IS("create_root")) r = open("/evil", O_WRONLY | O_CREAT, 0600);
    else if (IS("list_root")) r = open("/", O_RDONLY | O_DIRECTORY);
    else if (IS("getdents")) { char b[512]; r = syscall(SYS_getdents64, 0, b, sizeof b); }
    else if (IS("chdir_up")) r = chdir("..");
    else if (IS("grant_dotdot")) { snprintf(path, sizeof path, "%s/../secret", grant); r = open(path, O_RDONLY); }
    else if (IS("grant_symlink_out")) { snprintf(path, sizeof path, "%s/out", grant); r = open(path, O_RDONLY); }
    else if (IS("grant_write")) { snprintf(path, sizeof path, "%s/file", grant); r = open(path, O_WRONLY); }
    else if (IS("grant_create")) { snprintf(path, sizeof path, "%s/new", grant); r = open(path, O_WRONLY | O_CREAT, 0600); }
    else if (IS("grant_directory")) r = open(grant, O_RDONLY | O_DIRECTORY);
    else if (IS("grant_opath")) { snprintf(path, sizeof path, "%s/file", grant); r = open(path, O_PATH); }
    else if (IS("grant_long_path")) { memset(path, 'a', sizeof path - 1); path[0] = '/'; path[sizeof path - 1] = 0; r = open(path, O_RDONLY); }
    else if (IS("mkdir")) r = mkdir("/evil", 0700);
    else if (IS("unlink")) r = unlink("/evil");
    else if (IS("rename")) r = rename("/a", "/b");
    else if (IS("link")) r = link("/a", "/b");
    else if (IS("symlink")) r = symlink("/etc/passwd", "/evil");
    else if (IS("mknod")) r = mknod("/evil", S_IFCHR | 0600, makedev(1, 3));
    else if (IS("open_by_handle_at")) r = syscall(SYS_open_by_handle_at, -100, 0, 0);
    else if (IS("name_to_handle_at")) r = syscall(SYS_name_to_handle_at, -100, "/", 0, 0, 0);
    /* --- processes and signals --- */
    else if (IS("fork")) r = syscall(SYS_fork);
    else if (IS("vfork_like_clone")) r = syscall(SYS_clone, CLONE_VM | CLONE_VFORK | SIGCHLD, 0, 0, 0, 0);
    else if (IS("clone_process")) r = syscall(SYS_clone, SIGCHLD, 0, 0, 0, 0);
    else if (IS("clone_newuser")) r = syscall(SYS_clone, CLONE_NEWUSER | SIGCHLD, 0, 0, 0, 0);
    else if (IS("clone3")) r = syscall(SYS_clone3, 0, 0);
    else if (IS("execve")) r = syscall(SYS_execve, "/bin/sh", 0, 0);
    else if (IS("execveat")) r = syscall(SYS_execveat, -1, "", 0, 0, AT_EMPTY_PATH);
    else if (IS("kill_other")) r = kill(2, 0);
    else if (IS("kill_all")) r = kill(-1, 0);
    else if (IS("tgkill_other")) r = syscall(SYS_tgkill, 2, 2, 0);
    else if (IS("sigqueue_other")) { siginfo_t si; memset(&si, 0, sizeof si); r = syscall(SYS_rt_sigqueueinfo, 2, 0, &si); }
    else if (IS("getppid")) r = syscall(SYS_getppid);
    else if (IS("ptrace_traceme")) r = syscall(SYS_ptrace, 0, 0, 0, 0);
    else if (IS("ptrace_attach")) r = syscall(SYS_ptrace, 16, 2, 0, 0);
    else if (IS("process_vm_readv")) r = syscall(SYS_process_vm_readv, 2, 0, 0, 0, 0, 0);
    else if (IS("process_vm_writev")) r = syscall(SYS_process_vm_writev, 2, 0, 0, 0, 0, 0);
    else if (IS("kcmp")) r = syscall(SYS_kcmp, 1, 2, 0, 0, 0);
    else if (IS("pidfd_open")) r = syscall(SYS_pidfd_open, 1, 0);
    else if (IS("pidfd_getfd")) r = syscall(SYS_pidfd_getfd, 0, 0, 0);
    else if (IS("setpgid")) r = setpgid(0, 0);
    else if (IS("setsid")) r = setsid();
    else if (IS("setpriority_other")) r = setpriority(PRIO_PROCESS, 2, 19);
    else if (IS("sched_setaffinity_other")) { cpu_set_t s; CPU_ZERO(&s); CPU_SET(0, &s); r = sched_setaffinity(2, sizeof s, &s); }
    /* --- network --- */
    else if (IS("socket_inet")) r = socket(AF_INET, SOCK_STREAM, 0);
    else if (IS("socket_inet6")) r = socket(AF_INET6, SOCK_DGRAM, 0);
    else if (IS("socket_netlink")) r = socket(AF_NETLINK, SOCK_RAW, 0);
    else if (IS("socket_packet")) r = socket(AF_PACKET, SOCK_RAW, 0);
    else if (IS("connect_path_unix")) r = unix_connect(0);
    else if (IS("connect_abstract_unix")) r = unix_connect(1);
    else if (IS("socketpair_stream")) { int s[2]; r = socketpair(AF_UNIX, SOCK_STREAM, 0, s); }
    else if (IS("socketpair_inet")) { int s[2]; r = socketpair(AF_INET, SOCK_STREAM, 0, s); }
    else if (IS("msg_oob")) {
        int s[2]; char c = 'x';
        r = socketpair(AF_UNIX, SOCK_SEQPACKET, 0, s);
        if (r == 0) r = send(s[0], &c, 1, MSG_OOB);
    }
    else if (IS("sendto_fastopen")) {
        /* A send that connects: TCP's MSG_FASTOPEN (here on a unix pair: the flag alone). */
        int s[2]; char c = 'x'; struct sockaddr_in a = { .sin_family = AF_INET, .sin_port = htons(9) };
        a.sin_addr.s_addr = htonl(0x7f000001);
        r = socketpair(AF_UNIX, SOCK_SEQPACKET, 0, s);
        if (r == 0) r = sendto(s[0], &c, 1, MSG_FASTOPEN, (struct sockaddr *)&a, sizeof a);
    }
    else if (IS("sendto_address")) {
        int s[2]; char c = 'x'; struct sockaddr_un a = { .sun_family = AF_UNIX };
        r = socketpair(AF_UNIX, SOCK_DGRAM, 0, s);
        if (r == 0) r = sendto(s[0], &c, 1, 0, (struct sockaddr *)&a, sizeof a);
    }
    else if (IS("sendmsg_other_fd")) {
        int s[2]; char c = 'x'; struct iovec io = { &c, 1 }; struct msghdr m = { .msg_iov = &io, .msg_iovlen = 1 };
        r = socketpair(AF_UNIX, SOCK_SEQPACKET, 0, s);
        if (r == 0) r = sendmsg(s[0], &m, 0);
    }
    /* --- privilege, namespaces, mounts --- */
    else if (IS("unshare_user")) r = unshare(CLONE_NEWUSER);
    else if (IS("unshare_net")) r = unshare(CLONE_NEWNET);
    else if (IS("setns")) r = setns(0, 0);
    else if (IS("mount")) r = mount("none", "/", "tmpfs", 0, 0);
    else if (IS("umount")) r = umount2("/", MNT_DETACH);
    else if (IS("pivot_root")) r = syscall(SYS_pivot_root, "/", "/");
    else if (IS("chroot")) r = chroot("/");
    else if (IS("fsopen")) r = syscall(SYS_fsopen, "tmpfs", 0);
    else if (IS("open_tree")) r = syscall(SYS_open_tree, -100, "/", 0);
    else if (IS("move_mount")) r = syscall(SYS_move_mount, -1, "", -100, "/", 0);
    else if (IS("mount_setattr")) r = syscall(SYS_mount_setattr, -100, "/", 0, 0, 0);
    else if (IS("setuid0")) r = setuid(0);
    else if (IS("setresuid0")) r = setresuid(0, 0, 0);
    else if (IS("setgroups")) { gid_t g = 0; r = setgroups(1, &g); }
    else if (IS("capset")) r = syscall(SYS_capset, 0, 0);
    else if (IS("prctl_dumpable")) r = prctl(PR_SET_DUMPABLE, 1, 0, 0, 0);
    else if (IS("prctl_ptracer")) r = prctl(PR_SET_PTRACER, 1, 0, 0, 0);
    else if (IS("prctl_seccomp")) r = prctl(PR_SET_SECCOMP, 2, 0, 0, 0);
    else if (IS("seccomp_second_filter")) {
        struct sock_filter allow = BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ALLOW);
        struct sock_fprog prog = { .len = 1, .filter = &allow };
        r = syscall(SYS_seccomp, SECCOMP_SET_MODE_FILTER, 0, &prog);
    }
    else if (IS("personality")) r = syscall(SYS_personality, 0x0040000 /* ADDR_NO_RANDOMIZE */);
    /* --- kernel interfaces --- */
    else if (IS("bpf")) r = syscall(SYS_bpf, 0, 0, 0);
    else if (IS("perf_event_open")) r = syscall(SYS_perf_event_open, 0, 0, -1, -1, 0);
    else if (IS("keyctl")) r = syscall(SYS_keyctl, 0, 0, 0, 0, 0);
    else if (IS("add_key")) r = syscall(SYS_add_key, "user", "x", "y", 1, 0);
    else if (IS("request_key")) r = syscall(SYS_request_key, "user", "x", 0, 0);
    else if (IS("init_module")) r = syscall(SYS_init_module, 0, 0, "");
    else if (IS("finit_module")) r = syscall(SYS_finit_module, -1, "", 0);
    else if (IS("kexec_load")) r = syscall(SYS_kexec_load, 0, 0, 0, 0);
    else if (IS("reboot")) r = syscall(SYS_reboot, 0, 0, 0, 0);
    else if (IS("swapon")) r = syscall(SYS_swapon, "/dev/null", 0);
    else if (IS("acct")) r = syscall(SYS_acct, 0);
    else if (IS("syslog")) r = syscall(SYS_syslog, 3, 0, 0);
    else if (IS("settimeofday")) r = syscall(SYS_settimeofday, 0, 0);
    else if (IS("clock_settime")) { struct timespec t = { 0 }; r = syscall(SYS_clock_settime, CLOCK_REALTIME, &t); }
    else if (IS("sethostname")) r = syscall(SYS_sethostname, "x", 1);
    else if (IS("iopl")) r = syscall(SYS_iopl, 3);
    else if (IS("ioperm")) r = syscall(SYS_ioperm, 0, 1, 1);
    else if (IS("io_uring_setup")) r = syscall(SYS_io_uring_setup, 1, 0);
    else if (IS("io_uring_enter")) r = syscall(SYS_io_uring_enter, 0, 0, 0, 0, 0, 0);
    else if (IS("userfaultfd")) r = syscall(SYS_userfaultfd, 0);
    else if (IS("timer_create")) r = syscall(SYS_timer_create, CLOCK_MONOTONIC, 0, 0);
    else if (IS("timerfd_create")) r = syscall(SYS_timerfd_create, CLOCK_MONOTONIC, 0);
    else if (IS("quotactl")) r = syscall(SYS_quotactl, 0, 0, 0, 0);
    else if (IS("vhangup")) r = syscall(SYS_vhangup);
    /* --- terminals and ioctls --- */
    else if (IS("tiocsti")) { char c = 'x'; r = ioctl(0, TIOCSTI, &c); }
    else if (IS("tiocsti_high_bits")) { char c = 'x'; r = syscall(SYS_ioctl, 0, 0x100000000UL | TIOCSTI, &c); }
    else if (IS("tioclinux")) { char c = 2; r = ioctl(0, TIOCLINUX, &c); }
    else if (IS("fionread_high_bits")) { int n; r = syscall(SYS_ioctl, 0, 0x100000000UL | FIONREAD, &n); }
    /* --- memory --- */
    else if (IS("mmap_exec")) { void *p = mmap(0, 4096, PROT_READ | PROT_EXEC, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0); r = p == MAP_FAILED ? -1 : 0; }
    else if (IS("mmap_write_exec")) { void *p = mmap(0, 4096, PROT_READ | PROT_WRITE | PROT_EXEC, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0); r = p == MAP_FAILED ? -1 : 0; }
    else if (IS("mprotect_exec")) { static char page[8192] __attribute__((aligned(4096))); r = mprotect(page, 4096, PROT_READ | PROT_EXEC); }
    else if (IS("memfd_exec")) r = syscall(SYS_memfd_create, "x", 0x10 /* MFD_EXEC */);
    else if (IS("madvise_hwpoison")) { static char page[8192] __attribute__((aligned(4096))); r = madvise(page, 4096, 100 /* MADV_HWPOISON */); }
    /* --- entry points and argument tricks --- */
    else if (IS("x32")) r = syscall(SYS_getpid | 0x40000000);
    else if (IS("int80")) {
        long ret;
        __asm__ volatile("int $0x80" : "=a"(ret) : "a"(20L) : "memory");
        r = ret < 0 ? (errno = -ret, -1) : ret;
    }
    /* --- resources --- */
    else if (IS("fd_exhaustion")) { long n = 0; while (dup(1) >= 0 && n < 100000) n++; r = -1; }
    else { *err = -1; return -2; }
    *err = r < 0 ? errno : 0;
    return r;
}
