/* The IPVS structs of the C API from real kernel messages, without IPVS: decodes the
 * generic netlink answers recorded from Debian's 6.1 kernel (tests/fixtures/ipvs, see
 * PROVENANCE.txt there) with ipvsct_ipvs_decode and the connection table text with
 * ipvsct_ipvs_conn_decode, prints them as ipvsadm does, and compares with what ipvsadm
 * printed in the same moment (-Ln, --stats, --rate, --thresholds, --persistent-conn,
 * --tun-info, -Lnc, --timeout, --daemon). Also checks InActConn against the entries.
 *
 * Usage: test_ipvs_offline --fixtures DIR */
#define _GNU_SOURCE
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "check.h"
#include "ipvsadm_format.h"

static const char *g_dir;

static char *read_all(const char *name, size_t *len)
{
    char path[512];
    snprintf(path, sizeof path, "%s/%s", g_dir, name);
    FILE *f = fopen(path, "rb");
    CHECK(f != NULL, "cannot open fixture %s", path);
    if (!f)
        return NULL;
    fseek(f, 0, SEEK_END);
    long n = ftell(f);
    fseek(f, 0, SEEK_SET);
    char *buf = malloc((size_t)n + 1);
    size_t got = buf ? fread(buf, 1, (size_t)n, f) : 0;
    fclose(f);
    if (!buf)
        return NULL;
    buf[got] = 0;
    *len = got;
    return buf;
}

/* Everything decoded from one fixture. */
struct decoded {
    ipvsct_message v[64];
    int n;
};

static int keep_cb(const ipvsct_message *m, void *user)
{
    struct decoded *d = (struct decoded *)user;
    if (d->n < 64)
        d->v[d->n++] = *m;
    return 0;
}

static int decode_fixture(const char *name, uint16_t family, uint16_t af, struct decoded *d)
{
    size_t len = 0;
    char *buf = read_all(name, &len);
    d->n = 0;
    if (!buf)
        return 0;
    size_t count = 0;
    CHECK_RC(ipvsct_ipvs_decode((const uint8_t *)buf, len, family, af, keep_cb, d, &count),
             IPVSCT_OK);
    CHECK(count == (size_t)d->n, "%s: %zu messages, %d kept", name, count, d->n);
    free(buf);
    return d->n;
}

/* The IPVS messages of kind `kind` in `d`; the answer ends with one DONE or ACK. */
static int of_kind(const struct decoded *d, uint32_t kind, const char *name)
{
    int n = 0, ends = 0;
    for (int i = 0; i < d->n; i++) {
        if (d->v[i].kind == kind)
            n++;
        else if (d->v[i].kind == IPVSCT_MSG_UNKNOWN &&
                 (d->v[i].nlmsg_type == 2 || d->v[i].nlmsg_type == 3))
            ends++;
        else
            CHECK(0, "%s: unexpected message kind %u type %u", name, d->v[i].kind,
                  d->v[i].nlmsg_type);
    }
    CHECK(ends == 1, "%s: %d DONE/ACK messages", name, ends);
    return n;
}

/* "tcp:10.0.0.1:80" -> "TCP 10.0.0.1:80", "fwmark6:8" -> "FWM 8 IPv6". */
static void manifest_name(char *out, size_t n, const char *key)
{
    if (!strncmp(key, "fwmark6:", 8))
        snprintf(out, n, "FWM %s IPv6", key + 8);
    else if (!strncmp(key, "fwmark:", 7))
        snprintf(out, n, "FWM %s", key + 7);
    else {
        const char *colon = strchr(key, ':');
        char proto[8] = "";
        for (int i = 0; colon && key + i < colon && i < 7; i++)
            proto[i] = (char)(key[i] >= 'a' && key[i] <= 'z' ? key[i] - 32 : key[i]);
        snprintf(out, n, "%s %s", proto, colon ? colon + 1 : "?");
    }
}

static void compare_listing(const struct service_set *s, enum ipvs_view v, const char *fixture)
{
    size_t len;
    char *text = read_all(fixture, &len);
    if (!text)
        return;
    struct ipvs_text want = {.n = 0}, got = {.n = 0};
    ipvs_keys_of_listing(&want, text);
    ipvs_listing(&got, s, v);
    ipvs_compare(fixture, &want, &got);
    ipvs_text_free(&want);
    ipvs_text_free(&got);
    free(text);
}

static int conn_cb(const ipvsct_ipvs_conn *c, void *user)
{
    struct ipvs_text *t = (struct ipvs_text *)user;
    char line[IPVS_LINE];
    ipvs_fmt_conn(line, sizeof line, c);
    ipvs_text_add(t, line);
    CHECK(c->activity == IPVSCT_IPVS_INACTIVE && (c->fields & IPVSCT_IPVS_CONN_HAS_STATE_TIMEOUT) &&
              c->expires <= c->state_timeout,
          "conn %s: activity %u, %u of %u s", line, c->activity, c->expires, c->state_timeout);
    return 0;
}

struct inact {
    char dest[96];
    int n;
} g_inact[16];
static int g_ninact;

static int count_inactive_cb(const ipvsct_ipvs_conn *c, void *user)
{
    (void)user;
    char d[80];
    ipvs_addr_port(d, sizeof d, &c->dest, c->dest_port);
    char key[96];
    snprintf(key, sizeof key, "%s/%u", d, c->protocol);
    for (int i = 0; i < g_ninact; i++)
        if (!strcmp(g_inact[i].dest, key)) {
            g_inact[i].n += c->activity == IPVSCT_IPVS_INACTIVE;
            return 0;
        }
    if (g_ninact < 16) {
        snprintf(g_inact[g_ninact].dest, sizeof g_inact[g_ninact].dest, "%s", key);
        g_inact[g_ninact++].n = c->activity == IPVSCT_IPVS_INACTIVE;
    }
    return 0;
}

/* Everything decoded from a pcap capture (up to 256 messages). */
struct pcap_decoded {
    ipvsct_message v[256];
    int n;
};

static int keep_pcap_cb(const ipvsct_message *m, void *user)
{
    struct pcap_decoded *d = (struct pcap_decoded *)user;
    if (d->n < 256)
        d->v[d->n++] = *m;
    return 0;
}

static int of_pcap_kind(const struct pcap_decoded *d, uint32_t kind)
{
    int n = 0;
    for (int i = 0; i < d->n; i++)
        n += d->v[i].kind == kind;
    return n;
}

/* Captures from ../nlmon: `ipvsct capture` of `ipvsct ipvs services`, and tcpdump on nlmon
 * while conntrack-tools and ipvsadm ran (see tests/fixtures/nlmon/README.md). */
static void test_decode_pcap(void)
{
    static struct pcap_decoded d;
    char path[600];
    size_t count = 0;

    snprintf(path, sizeof path, "%s/../nlmon/ipvsct-ipvs.pcap", g_dir);
    d.n = 0;
    CHECK_RC(ipvsct_decode_pcap(path, 0, keep_pcap_cb, &d, &count), IPVSCT_OK);
    CHECK(count == (size_t)d.n, "pcap: %zu messages, %d kept", count, d.n);
    CHECK(of_pcap_kind(&d, IPVSCT_MSG_GENL_FAMILY) == 1, "pcap: one nlctrl answer");
    CHECK(of_pcap_kind(&d, IPVSCT_MSG_IPVS_SERVICE) == 2, "pcap: two services");
    CHECK(of_pcap_kind(&d, IPVSCT_MSG_IPVS_DEST) == 2, "pcap: two destinations");
    CHECK(of_pcap_kind(&d, IPVSCT_MSG_IPVS_INFO) == 1, "pcap: one info");
    int rr = 0, wlc = 0, w3 = 0, w1 = 0;
    for (int i = 0; i < d.n; i++) {
        const ipvsct_message *m = &d.v[i];
        if (m->kind == IPVSCT_MSG_IPVS_SERVICE) {
            rr += !strcmp(m->data.ipvs_service.scheduler, "rr");
            wlc += !strcmp(m->data.ipvs_service.scheduler, "wlc");
        } else if (m->kind == IPVSCT_MSG_IPVS_DEST) {
            w3 += m->data.ipvs_dest.weight == 3 && m->data.ipvs_dest.port == 80;
            w1 += m->data.ipvs_dest.weight == 1 && m->data.ipvs_dest.port == 0;
        } else if (m->kind == IPVSCT_MSG_IPVS_INFO) {
            CHECK(m->data.ipvs_info.conn_tab_size == 4096, "conn_tab_size %u",
                  m->data.ipvs_info.conn_tab_size);
        }
    }
    CHECK(rr == 1 && wlc == 1, "schedulers rr %d wlc %d (ipvsadm.txt: rr and wlc)", rr, wlc);
    CHECK(w3 == 1 && w1 == 1, "real servers :80 weight 3 (%d) and :0 weight 1 (%d)", w3, w1);

    /* tcpdump's nlmon capture: the TIME_WAIT entry with mark 42 that conntrack -I made. */
    snprintf(path, sizeof path, "%s/../nlmon/nlmon.pcap", g_dir);
    d.n = 0;
    CHECK_RC(ipvsct_decode_pcap(path, 0, keep_pcap_cb, &d, &count), IPVSCT_OK);
    int marked = 0;
    for (int i = 0; i < d.n; i++)
        if (d.v[i].kind == IPVSCT_MSG_CT_ENTRY && d.v[i].data.ct_entry.mark == 42)
            marked++;
    CHECK(marked >= 1, "nlmon.pcap: %d entry messages with mark 42", marked);
    CHECK(of_pcap_kind(&d, IPVSCT_MSG_IPVS_SERVICE) >= 2, "nlmon.pcap: ipvsadm's services");

    /* Errors: a missing file is an I/O error, a file that is not a capture a decode error. */
    CHECK_RC(ipvsct_decode_pcap(NULL, 0, keep_pcap_cb, &d, NULL), IPVSCT_ERR_NULL_ARGUMENT);
    snprintf(path, sizeof path, "%s/does-not-exist.pcap", g_dir);
    CHECK_RC(ipvsct_decode_pcap(path, 0, keep_pcap_cb, &d, NULL), IPVSCT_ERR_IO);
    snprintf(path, sizeof path, "%s/ipvsadm-Ln.txt", g_dir);
    CHECK_RC(ipvsct_decode_pcap(path, 0, keep_pcap_cb, &d, NULL), IPVSCT_ERR_DECODE);
}

int main(int argc, char **argv)
{
    if (argc == 3 && !strcmp(argv[1], "--fixtures"))
        g_dir = argv[2];
    if (!g_dir) {
        fprintf(stderr, "usage: test_ipvs_offline --fixtures DIR\n");
        return 2;
    }

    /* The family id, from the nlctrl answer. */
    struct decoded d;
    decode_fixture("family.bin", 0, 0, &d);
    uint16_t family = 0;
    for (int i = 0; i < d.n; i++)
        if (d.v[i].kind == IPVSCT_MSG_GENL_FAMILY && !strcmp(d.v[i].data.genl_family.name, "IPVS"))
            family = d.v[i].data.genl_family.id;
    CHECK(family >= 0x10, "IPVS family id %u", family);
    const ipvsct_genl_family *gf = &d.v[0].data.genl_family;
    CHECK(gf->version == 1 && gf->maxattr > 0, "IPVS family version %u maxattr %u", gf->version,
          gf->maxattr);

    /* Info and timeouts. */
    size_t len = 0;
    char *ln_text = read_all("ipvsadm-Ln.txt", &len);
    decode_fixture("info.bin", family, 0, &d);
    CHECK(of_kind(&d, IPVSCT_MSG_IPVS_INFO, "info.bin") == 1, "one info message");
    char line[IPVS_LINE];
    ipvs_fmt_info(line, sizeof line, &d.v[0].data.ipvs_info);
    CHECK(ln_text && !strncmp(ln_text, line, strlen(line)), "info: '%s' vs ipvsadm '%.60s'", line,
          ln_text ? ln_text : "");
    CHECK(d.v[0].data.ipvs_info.version == 0x010201, "version 0x%x",
          d.v[0].data.ipvs_info.version);
    free(ln_text);
    decode_fixture("config.bin", family, 0, &d);
    CHECK(of_kind(&d, IPVSCT_MSG_IPVS_CONFIG, "config.bin") == 1, "one config message");
    ipvsct_ipvs_config cfg = d.v[0].data.ipvs_config;
    ipvs_fmt_timeout(line, sizeof line, &cfg);
    char *timeout_text = read_all("ipvsadm-timeout.txt", &len);
    if (timeout_text) {
        ipvs_squeeze(timeout_text);
        CHECK(!strcmp(timeout_text, line), "timeouts: '%s' vs ipvsadm '%s'", line, timeout_text);
        free(timeout_text);
    }

    /* Daemons. */
    decode_fixture("daemons.bin", family, 0, &d);
    int nd = of_kind(&d, IPVSCT_MSG_IPVS_DAEMON, "daemons.bin");
    CHECK(nd == 2, "%d daemons", nd);
    char *daemon_text = read_all("ipvsadm-daemon.txt", &len);
    if (daemon_text) {
        struct ipvs_text want = {.n = 0}, got = {.n = 0};
        ipvs_conn_lines(&want, daemon_text);
        for (int i = 0; i < d.n; i++)
            if (d.v[i].kind == IPVSCT_MSG_IPVS_DAEMON) {
                ipvs_fmt_daemon(line, sizeof line, &d.v[i].data.ipvs_daemon);
                ipvs_text_add(&got, line);
            }
        ipvs_compare("ipvsadm-daemon.txt", &want, &got);
        ipvs_text_free(&want);
        ipvs_text_free(&got);
        free(daemon_text);
    }

    /* Services, then the destinations of each from the manifest. */
    static struct service_set s;
    decode_fixture("services.bin", family, 0, &d);
    s.n = 0;
    for (int i = 0; i < d.n && s.n < 16; i++)
        if (d.v[i].kind == IPVSCT_MSG_IPVS_SERVICE)
            s.svc[s.n++] = d.v[i].data.ipvs_service;
    CHECK(s.n == 8 && of_kind(&d, IPVSCT_MSG_IPVS_SERVICE, "services.bin") == 8, "%d services",
          s.n);
    for (int i = 0; i < s.n; i++)
        CHECK((s.svc[i].fields & IPVSCT_IPVS_HAS_STATS64) &&
                  (s.svc[i].fields & IPVSCT_IPVS_SERVICE_HAS_NETMASK) &&
                  (s.svc[i].flags & IPVSCT_IPVS_SVC_HASHED) && s.svc[i].flags_mask == 0xffffffffu,
              "service %d: fields 0x%x flags 0x%x", i, s.svc[i].fields, s.svc[i].flags);
    char *manifest = read_all("dests.manifest", &len);
    int files = 0;
    for (char *l = manifest ? strtok(manifest, "\n") : NULL; l; l = strtok(NULL, "\n")) {
        char file[64], key[128], name[160];
        if (sscanf(l, "%63s %127s", file, key) != 2)
            continue;
        manifest_name(name, sizeof name, key);
        int i = ipvs_find_service(&s, name);
        CHECK(i >= 0, "manifest: no service %s (%s)", name, key);
        if (i < 0)
            continue;
        struct decoded dd;
        decode_fixture(file, family, s.svc[i].key.af, &dd);
        s.ndest[i] = 0;
        for (int j = 0; j < dd.n && s.ndest[i] < 8; j++)
            if (dd.v[j].kind == IPVSCT_MSG_IPVS_DEST)
                s.dest[i][s.ndest[i]++] = dd.v[j].data.ipvs_dest;
        of_kind(&dd, IPVSCT_MSG_IPVS_DEST, file);
        files++;
    }
    free(manifest);
    CHECK(files == 8, "%d destination fixtures", files);

    compare_listing(&s, V_LN, "ipvsadm-Ln.txt");
    compare_listing(&s, V_STATS, "ipvsadm-stats.txt");
    compare_listing(&s, V_RATE, "ipvsadm-rate.txt");
    compare_listing(&s, V_THRESH, "ipvsadm-thresholds.txt");
    compare_listing(&s, V_PERSIST, "ipvsadm-persistent-conn.txt");
    compare_listing(&s, V_TUN, "ipvsadm-tun-info.txt");

    /* The connection table: -Lnc lines, activity, state timeouts from the fixture's config. */
    char *conns = read_all("ip_vs_conn.txt", &len);
    char *lnc = read_all("ipvsadm-Lnc.txt", &len);
    if (conns && lnc) {
        struct ipvs_text want = {.n = 0}, got = {.n = 0};
        ipvs_conn_lines(&want, lnc);
        size_t n = 0;
        CHECK_RC(ipvsct_ipvs_conn_decode(conns, strlen(conns), IPVSCT_IPVS_CONN_TABLE, &cfg,
                                         conn_cb, &got, &n),
                 IPVSCT_OK);
        CHECK(n == 10, "%zu connection entries", n);
        ipvs_compare("ipvsadm-Lnc.txt", &want, &got);
        ipvs_text_free(&want);
        ipvs_text_free(&got);
        /* InActConn of each destination equals its inactive entries. */
        CHECK_RC(ipvsct_ipvs_conn_decode(conns, strlen(conns), IPVSCT_IPVS_CONN_TABLE, NULL,
                                         count_inactive_cb, NULL, NULL),
                 IPVSCT_OK);
        int checked = 0;
        for (int i = 0; i < s.n; i++)
            for (int j = 0; j < s.ndest[i]; j++) {
                char a[80], key[96];
                ipvs_addr_port(a, sizeof a, &s.dest[i][j].addr, s.dest[i][j].port);
                snprintf(key, sizeof key, "%s/%u", a, s.svc[i].key.protocol);
                int have = 0;
                for (int k = 0; k < g_ninact; k++)
                    if (!strcmp(g_inact[k].dest, key))
                        have = g_inact[k].n;
                CHECK((uint32_t)have == s.dest[i][j].inactive_conns, "%s: InActConn %u, %d entries",
                      key, s.dest[i][j].inactive_conns, have);
                checked += have > 0;
            }
        CHECK(checked == 4, "%d destinations with inactive entries", checked);
    }
    free(conns);
    free(lnc);

    /* The sync table has origins; a broken line stops with a result code. */
    char *sync = read_all("ip_vs_conn_sync.txt", &len);
    if (sync) {
        struct ipvs_text got = {.n = 0};
        size_t n = 0;
        CHECK_RC(ipvsct_ipvs_conn_decode(sync, strlen(sync), IPVSCT_IPVS_CONN_SYNC_TABLE, &cfg,
                                         conn_cb, &got, &n),
                 IPVSCT_OK);
        CHECK(n == 10, "%zu sync entries", n);
        CHECK_RC(ipvsct_ipvs_conn_decode(sync, strlen(sync), IPVSCT_IPVS_CONN_TABLE, &cfg, conn_cb,
                                         &got, &n),
                 IPVSCT_ERR_IO);
        ipvs_text_free(&got);
        free(sync);
    }
    CHECK_RC(ipvsct_ipvs_conn_decode(NULL, 0, 0, NULL, conn_cb, NULL, NULL),
             IPVSCT_ERR_NULL_ARGUMENT);
    CHECK_RC(ipvsct_ipvs_conn_decode("", 0, 7, NULL, conn_cb, NULL, NULL),
             IPVSCT_ERR_INVALID_ARGUMENT);
    CHECK_RC(ipvsct_ipvs_decode((const uint8_t *)"", 0, 0, 3, keep_cb, &d, NULL),
             IPVSCT_ERR_INVALID_ARGUMENT);

    /* A truncated service message: a decode error with its location. */
    char *svc_bin = read_all("services.bin", &len);
    if (svc_bin) {
        size_t n = 99;
        CHECK_RC(ipvsct_ipvs_decode((const uint8_t *)svc_bin, 40, family, 0, keep_cb, &d, &n),
                 IPVSCT_ERR_DECODE);
        ipvsct_error e;
        CHECK_RC(ipvsct_error_last(&e), IPVSCT_OK);
        CHECK(n == 99 && (e.fields & IPVSCT_ERROR_HAS_DECODE_LOCATION), "decode error fields 0x%x",
              e.fields);
        free(svc_bin);
    }
    test_decode_pcap();
    return finish("test_ipvs_offline");
}
