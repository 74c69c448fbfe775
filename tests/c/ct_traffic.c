/* Makes a known set of conntrack entries over loopback in the current network namespace:
 *   N TCP connections to 127.0.0.1:TCP_PORT and 1 to [::1]:TCP_PORT, each closed by the
 *   client (left in TIME_WAIT), 100 bytes sent and 200 bytes answered;
 *   1 UDP exchange with 127.0.0.1:UDP_PORT answered (REPLIED);
 *   1 UDP datagram to 127.0.0.1:UDP_PORT+1 never answered (UNREPLIED).
 * Usage: ct_traffic TCP_PORT N UDP_PORT. Every wait is bounded (5 s receive timeouts). */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <unistd.h>

static void die(const char *what)
{
    fprintf(stderr, "ct_traffic: %s: %s\n", what, strerror(errno));
    exit(1);
}

static int sock(int family, int type)
{
    int s = socket(family, type, 0);
    if (s < 0)
        die("socket");
    struct timeval tv = {5, 0};
    int one = 1;
    if (setsockopt(s, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv) < 0 ||
        setsockopt(s, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv) < 0 ||
        setsockopt(s, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one) < 0)
        die("setsockopt");
    return s;
}

static socklen_t addr(int family, const char *ip, int port, struct sockaddr_storage *ss)
{
    memset(ss, 0, sizeof *ss);
    if (family == AF_INET) {
        struct sockaddr_in *a = (struct sockaddr_in *)ss;
        a->sin_family = AF_INET;
        a->sin_port = htons((uint16_t)port);
        inet_pton(AF_INET, ip, &a->sin_addr);
        return sizeof *a;
    }
    struct sockaddr_in6 *a = (struct sockaddr_in6 *)ss;
    a->sin6_family = AF_INET6;
    a->sin6_port = htons((uint16_t)port);
    inet_pton(AF_INET6, ip, &a->sin6_addr);
    return sizeof *a;
}

static void read_exactly(int s, size_t n, const char *what)
{
    char buf[512];
    size_t got = 0;
    while (got < n) {
        ssize_t r = recv(s, buf, n - got < sizeof buf ? n - got : sizeof buf, 0);
        if (r <= 0)
            die(what);
        got += (size_t)r;
    }
}

static void tcp_round(int family, const char *ip, int port, int count)
{
    struct sockaddr_storage ss;
    socklen_t len = addr(family, ip, port, &ss);
    int l = sock(family, SOCK_STREAM);
    if (bind(l, (struct sockaddr *)&ss, len) < 0 || listen(l, 16) < 0)
        die("tcp listen");
    char req[100], resp[200];
    memset(req, 'q', sizeof req);
    memset(resp, 'r', sizeof resp);
    for (int i = 0; i < count; i++) {
        int c = sock(family, SOCK_STREAM);
        if (connect(c, (struct sockaddr *)&ss, len) < 0)
            die("tcp connect");
        if (send(c, req, sizeof req, 0) != (ssize_t)sizeof req)
            die("tcp send request");
        int a = accept(l, NULL, NULL);
        if (a < 0)
            die("accept");
        read_exactly(a, sizeof req, "server read");
        if (send(a, resp, sizeof resp, 0) != (ssize_t)sizeof resp)
            die("tcp send response");
        read_exactly(c, sizeof resp, "client read");
        close(c); /* the client closes first: its side ends in TIME_WAIT */
        char b[16];
        if (recv(a, b, sizeof b, 0) != 0)
            die("server expected EOF");
        close(a);
    }
    close(l);
}

static void udp_round(int port, int answer)
{
    struct sockaddr_storage ss;
    socklen_t len = addr(AF_INET, "127.0.0.1", port, &ss);
    int srv = sock(AF_INET, SOCK_DGRAM);
    if (bind(srv, (struct sockaddr *)&ss, len) < 0)
        die("udp bind");
    int c = sock(AF_INET, SOCK_DGRAM);
    if (sendto(c, "ping", 4, 0, (struct sockaddr *)&ss, len) != 4)
        die("udp send");
    struct sockaddr_storage from;
    socklen_t flen = sizeof from;
    char b[16];
    if (recvfrom(srv, b, sizeof b, 0, (struct sockaddr *)&from, &flen) != 4)
        die("udp server recv");
    if (answer) {
        if (sendto(srv, "pong", 4, 0, (struct sockaddr *)&from, flen) != 4)
            die("udp answer");
        if (recv(c, b, sizeof b, 0) != 4)
            die("udp client recv");
    }
    close(c);
    close(srv);
}

int main(int argc, char **argv)
{
    if (argc != 4) {
        fprintf(stderr, "usage: ct_traffic TCP_PORT N UDP_PORT\n");
        return 2;
    }
    int tcp_port = atoi(argv[1]), n = atoi(argv[2]), udp_port = atoi(argv[3]);
    tcp_round(AF_INET, "127.0.0.1", tcp_port, n);
    tcp_round(AF_INET6, "::1", tcp_port, 1);
    udp_round(udp_port, 1);
    udp_round(udp_port + 1, 0);
    printf("ct_traffic: %d TCP (IPv4) + 1 TCP (IPv6) to port %d, UDP answered on %d, "
           "unanswered on %d\n", n, tcp_port, udp_port, udp_port + 1);
    return 0;
}
