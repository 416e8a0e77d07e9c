/*
 * test.h: the project's assertion macros. Every failing assertion prints the
 * expression, both values and the location, then the test exits non-zero.
 * Tests talk to the real broker and database named by the environment that
 * scripts/test exports (HUB_KAFKA_BOOTSTRAP, HUB_PG_CONNINFO, ...); a test
 * whose infrastructure is missing fails, it is never skipped.
 */
#ifndef HUB_TEST_H
#define HUB_TEST_H

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <sys/types.h>

#include "hub/config.h"

#define TEST_FAIL_(...)                                                                            \
    do {                                                                                           \
        fprintf(stderr, "%s:%d: ", __FILE__, __LINE__);                                            \
        fprintf(stderr, __VA_ARGS__);                                                              \
        fputc('\n', stderr);                                                                       \
        exit(1);                                                                                   \
    } while (0)

#define ASSERT_TRUE(c)                                                                             \
    do {                                                                                           \
        if (!(c))                                                                                  \
            TEST_FAIL_("assertion failed: %s", #c);                                                \
    } while (0)

#define ASSERT_INT_EQ(a, b)                                                                        \
    do {                                                                                           \
        long long a_ = (long long)(a), b_ = (long long)(b);                                        \
        if (a_ != b_)                                                                              \
            TEST_FAIL_("%s == %s failed: %lld != %lld", #a, #b, a_, b_);                           \
    } while (0)

#define ASSERT_INT_OP(a, op, b)                                                                    \
    do {                                                                                           \
        long long a_ = (long long)(a), b_ = (long long)(b);                                        \
        if (!(a_ op b_))                                                                           \
            TEST_FAIL_("%s %s %s failed: %lld vs %lld", #a, #op, #b, a_, b_);                      \
    } while (0)

#define ASSERT_STR_EQ(a, b)                                                                        \
    do {                                                                                           \
        const char *a_ = (a), *b_ = (b);                                                           \
        if (!a_ || !b_ || strcmp(a_, b_) != 0)                                                     \
            TEST_FAIL_("%s == %s failed: \"%s\" != \"%s\"", #a, #b, a_ ? a_ : "(null)",            \
                       b_ ? b_ : "(null)");                                                        \
    } while (0)

#define ASSERT_STR_CONTAINS(hay, needle)                                                           \
    do {                                                                                           \
        const char *h_ = (hay), *n_ = (needle);                                                    \
        if (!h_ || !strstr(h_, n_))                                                                \
            TEST_FAIL_("\"%s\" does not contain \"%s\"", h_ ? h_ : "(null)", n_);                  \
    } while (0)

/* ASSERT_OK: a libhub call returned 0; prints the code and errstr otherwise. */
#define ASSERT_OK(call, errstr)                                                                    \
    do {                                                                                           \
        int r_ = (call);                                                                           \
        if (r_ != 0)                                                                               \
            TEST_FAIL_("%s failed: %d (%s)", #call, r_, errstr);                                   \
    } while (0)

/* Runs a named test function and reports it. */
#define RUN_TEST(fn)                                                                               \
    do {                                                                                           \
        fprintf(stderr, "-- %s\n", #fn);                                                           \
        fn();                                                                                      \
        fprintf(stderr, "ok %s\n", #fn);                                                           \
    } while (0)

/* hub_test_env: the value of a required environment variable; fails the test if unset. */
const char *hub_test_env(const char *name);

/*
 * hub_test_kafka_props: client properties for the test broker (caller clears):
 * bootstrap.servers, plus the TLS/SASL settings of HUB_KAFKA_EXTRA_PROPS
 * ("k=v,k=v"; a key.file=path is read as key) when the broker is secured.
 */
void hub_test_kafka_props(hub_props_t *props);

/*
 * hub_test_kafka_settings: the same as libconfig settings for a service's config
 * file, to put inside its group: fprintf(f, "kafka = {%s };", hub_test_kafka_settings()).
 * A static buffer, overwritten by the next call.
 */
const char *hub_test_kafka_settings(void);

/*
 * hub_test_topic: creates a fresh topic with a unique name built from prefix
 * and the given partition count on the test broker; writes the name into buf.
 */
void hub_test_topic(const char *prefix, int partitions, char *buf, size_t size);

/*
 * hub_test_pg_db: creates a fresh database named from prefix on the test
 * server and writes a conninfo for it into buf.
 */
void hub_test_pg_db(const char *prefix, char *buf, size_t size);

/* hub_test_unique: a short string unique to this process and call. */
const char *hub_test_unique(void);

/* hub_test_tmpdir: a fresh directory under $TMPDIR for this test. */
const char *hub_test_tmpdir(void);

/* hub_test_write_file: writes text to dir/name and returns the path (static buffer rotation). */
const char *hub_test_write_file(const char *dir, const char *name, const char *text);

/*
 * hub_test_http_get: GET http://127.0.0.1:port/path (a service's operations
 * endpoint). Returns the HTTP status; the body, NUL-terminated and cut to
 * size, goes into buf. Fails the test when the request cannot be made.
 */
long hub_test_http_get(int port, const char *path, char *buf, size_t size);

/*
 * hub_test_service_binary: the built program of a service next to this test,
 * <build>/services/<service>/hub-<service>; fails the test if it is not built.
 * Rotates four static buffers.
 */
const char *hub_test_service_binary(const char *service);

/*
 * hub_test_spawn: starts path with argv (argv[0] first, NULL-terminated),
 * stdout and stderr appended to log. The child is killed if the test dies.
 */
pid_t hub_test_spawn(const char *path, const char *const *argv, const char *log);

/*
 * hub_test_wait_exit: waits up to timeout_ms for pid and returns its exit
 * status (128 + n when killed by signal n); on timeout kills it and fails.
 */
int hub_test_wait_exit(pid_t pid, int timeout_ms);

/*
 * hub_test_infra: runs a scripts/infra.sh command (e.g. "pg-stop",
 * "kafka-start") on the infrastructure scripts/test started; fails the test
 * if it fails. Its output goes to stderr.
 */
void hub_test_infra(const char *command);

#endif
