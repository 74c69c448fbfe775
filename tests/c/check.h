/* Minimal test helpers shared by the C tests: counted checks and a closing line
 * "NAME: N passed, N failed". */
#ifndef IPVSCT_TEST_CHECK_H
#define IPVSCT_TEST_CHECK_H

#include <stdio.h>
#include <string.h>

#include "ipvsct.h"

static int g_pass, g_fail;

/* The calling thread's last error message (for failure reports). */
static const char *last_msg(void)
{
    static char buf[1024];
    if (ipvsct_error_message(buf, sizeof buf) != IPVSCT_OK)
        snprintf(buf, sizeof buf, "(no message: %zu bytes needed)", ipvsct_error_message_len());
    return buf;
}

#define CHECK(cond, ...)                                                        \
    do {                                                                        \
        if (cond) {                                                             \
            g_pass++;                                                           \
        } else {                                                                \
            g_fail++;                                                           \
            fprintf(stderr, "FAIL %s:%d: %s: ", __FILE__, __LINE__, #cond);     \
            fprintf(stderr, __VA_ARGS__);                                       \
            fputc('\n', stderr);                                                \
        }                                                                       \
    } while (0)

#define CHECK_RC(call, want)                                                    \
    do {                                                                        \
        int32_t rc_ = (int32_t)(call);                                          \
        CHECK(rc_ == (int32_t)(want), "%s returned %s, expected %s (last error: %s)", \
              #call, ipvsct_result_name(rc_), ipvsct_result_name((int32_t)(want)), \
              last_msg());                                                      \
    } while (0)

static int finish(const char *name)
{
    printf("%s: %d passed, %d failed\n", name, g_pass, g_fail);
    return g_fail == 0 ? 0 : 1;
}

#endif
