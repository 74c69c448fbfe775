/* rawdump: the lower bound of a conntrack table dump.
 *
 * Opens NETLINK_NETFILTER, sends one IPCTNL_MSG_CT_GET with NLM_F_DUMP (family
 * AF_UNSPEC: every family, as the Rust dump asks) and only recv()s, walking the netlink
 * headers to count the entry messages until NLMSG_DONE. Nothing is decoded, so its time
 * is the kernel's: filling and copying the dump. The socket is set up like the
 * library's (64 KiB user buffer, which sets the kernel's dump skb size, and a 1 MiB
 * SO_RCVBUF), so both read the same datagrams.
 *
 *   rawdump [--buffer BYTES]        run inside the namespace (ip netns exec NS rawdump)
 *
 * Prints one JSON object: {"mode":"raw","entries":N,"datagrams":D,"bytes":B,"secs":S,
 * "cpu_secs":C}: wall and CPU seconds (CLOCK_PROCESS_CPUTIME_ID; the kernel's work of
 * the dump runs in recvmsg and counts) of the request alone, socket setup excluded.
 * Exits 1 on any error (kernel error, interrupted dump, timeout after 30 s of silence).
 */
#define _GNU_SOURCE
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>

#include <linux/netfilter/nfnetlink.h>
#include <linux/netfilter/nfnetlink_conntrack.h>
#include <linux/netlink.h>

static double clock_secs(clockid_t clock)
{
    struct timespec ts;
    clock_gettime(clock, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static double now(void)
{
    return clock_secs(CLOCK_MONOTONIC);
}

static int fail(const char *what)
{
    fprintf(stderr, "rawdump: %s: %s\n", what, strerror(errno));
    return 1;
}

int main(int argc, char **argv)
{
    size_t bufsize = 64 * 1024;
    int rcvbuf = 1 << 20;
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--buffer") == 0 && i + 1 < argc) {
            bufsize = strtoul(argv[++i], NULL, 10);
        } else {
            fprintf(stderr, "usage: rawdump [--buffer BYTES]\n");
            return 2;
        }
    }
    if (bufsize < 4096) {
        fprintf(stderr, "rawdump: buffer too small\n");
        return 2;
    }
    char *buf = malloc(bufsize);
    if (!buf)
        return fail("malloc");

    int fd = socket(AF_NETLINK, SOCK_RAW | SOCK_CLOEXEC, NETLINK_NETFILTER);
    if (fd < 0)
        return fail("socket");
    struct sockaddr_nl local = {.nl_family = AF_NETLINK};
    if (bind(fd, (struct sockaddr *)&local, sizeof local) < 0)
        return fail("bind");
    socklen_t locallen = sizeof local;
    if (getsockname(fd, (struct sockaddr *)&local, &locallen) < 0)
        return fail("getsockname");
    if (setsockopt(fd, SOL_SOCKET, SO_RCVBUFFORCE, &rcvbuf, sizeof rcvbuf) < 0 &&
        setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &rcvbuf, sizeof rcvbuf) < 0)
        return fail("SO_RCVBUF");
    struct timeval tv = {.tv_sec = 30};
    if (setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv) < 0)
        return fail("SO_RCVTIMEO");

    double start = now(); /* like bench_dump: the request alone, socket setup excluded */
    double cpu_start = clock_secs(CLOCK_PROCESS_CPUTIME_ID);
    uint32_t seq = (uint32_t)time(NULL);
    struct {
        struct nlmsghdr nlh;
        struct nfgenmsg nfg;
    } req;
    memset(&req, 0, sizeof req);
    req.nlh.nlmsg_len = NLMSG_LENGTH(sizeof req.nfg);
    req.nlh.nlmsg_type = (NFNL_SUBSYS_CTNETLINK << 8) | IPCTNL_MSG_CT_GET;
    req.nlh.nlmsg_flags = NLM_F_REQUEST | NLM_F_DUMP;
    req.nlh.nlmsg_seq = seq;
    req.nfg.nfgen_family = AF_UNSPEC;
    req.nfg.version = NFNETLINK_V0;
    struct sockaddr_nl kernel = {.nl_family = AF_NETLINK};
    if (sendto(fd, &req, req.nlh.nlmsg_len, 0, (struct sockaddr *)&kernel, sizeof kernel) < 0)
        return fail("sendto");

    uint64_t entries = 0, datagrams = 0, bytes = 0;
    int done = 0, interrupted = 0;
    /* Bounded: each turn reads one datagram; the kernel ends the dump with NLMSG_DONE and
     * SO_RCVTIMEO ends a silent wait; the cap below guards against anything else. */
    for (uint64_t turn = 0; !done && turn < 100000000; turn++) {
        ssize_t n = recv(fd, buf, bufsize, 0);
        if (n < 0) {
            if (errno == EINTR)
                continue;
            return fail("recv");
        }
        datagrams++;
        bytes += (uint64_t)n;
        int len = (int)n;
        for (struct nlmsghdr *h = (struct nlmsghdr *)buf; NLMSG_OK(h, len); h = NLMSG_NEXT(h, len)) {
            /* Answers carry our sequence number and our port id (or 0). */
            if (h->nlmsg_seq != seq || (h->nlmsg_pid != 0 && h->nlmsg_pid != local.nl_pid))
                continue;
            if (h->nlmsg_flags & NLM_F_DUMP_INTR)
                interrupted = 1;
            if (h->nlmsg_type == NLMSG_DONE) {
                done = 1;
                break;
            }
            if (h->nlmsg_type == NLMSG_ERROR) {
                const struct nlmsgerr *e = NLMSG_DATA(h);
                errno = -e->error;
                return fail("kernel error");
            }
            if (h->nlmsg_type >= NLMSG_MIN_TYPE)
                entries++;
        }
    }
    double secs = now() - start;
    double cpu_secs = clock_secs(CLOCK_PROCESS_CPUTIME_ID) - cpu_start;
    close(fd);
    free(buf);
    if (!done) {
        fprintf(stderr, "rawdump: no NLMSG_DONE\n");
        return 1;
    }
    if (interrupted) {
        fprintf(stderr, "rawdump: the dump was interrupted (NLM_F_DUMP_INTR)\n");
        return 1;
    }
    printf("{\"mode\":\"raw\",\"entries\":%llu,\"datagrams\":%llu,\"bytes\":%llu,\"secs\":%.6f,"
           "\"cpu_secs\":%.6f}\n",
           (unsigned long long)entries, (unsigned long long)datagrams,
           (unsigned long long)bytes, secs, cpu_secs);
    return 0;
}
