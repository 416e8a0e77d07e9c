/*
 * common.h: error codes and small helpers shared by every libhub module.
 *
 * Library functions return HUB_OK (0) or a negative HUB_E* code, and write a
 * human-readable reason into an (errstr, errstr_size) buffer supplied by the
 * caller. Constructors return NULL on failure. Only main() exits.
 */
#ifndef HUB_COMMON_H
#define HUB_COMMON_H

#include <stddef.h>
#include <stdint.h>

#define HUB_OK        0
#define HUB_EINVAL    -1 /* invalid argument or input */
#define HUB_ENOMEM    -2 /* allocation failed */
#define HUB_EIO       -3 /* file or socket error */
#define HUB_ECONFIG   -4 /* configuration problem */
#define HUB_EKAFKA    -5 /* Kafka client error */
#define HUB_EPG       -6 /* PostgreSQL error */
#define HUB_EDECODE   -7 /* bytes are not a valid event */
#define HUB_EVALID    -8 /* event decoded but its values are invalid */
#define HUB_ESCHEMA   -9 /* unknown or incompatible schema */
#define HUB_ETIMEOUT  -10
#define HUB_ENOTFOUND -11
#define HUB_ESTOPPED  -12 /* a stop was requested while waiting */

/* Exit statuses shared by every service and hubctl. */
#define HUB_EXIT_OK      0
#define HUB_EXIT_FAILURE 1
#define HUB_EXIT_USAGE   2 /* bad command line or configuration */

#define HUB_ARRAY_LEN(a) (sizeof(a) / sizeof((a)[0]))

/*
 * hub_strerror: a short constant name for a HUB_E* code ("EINVAL", ...).
 * Never NULL.
 */
const char *hub_strerror(int err);

/*
 * hub_errf: formats into errstr (if not NULL) like snprintf and returns err,
 * so error paths can be written `return hub_errf(errstr, n, HUB_EINVAL, ...)`.
 */
int hub_errf(char *errstr, size_t errstr_size, int err, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

/*
 * hub_now_ms: wall-clock time in milliseconds since the Unix epoch.
 * hub_monotonic_ms: a monotonic clock in milliseconds, for timeouts.
 */
int64_t hub_now_ms(void);
int64_t hub_monotonic_ms(void);

/*
 * hub_sleep_ms: sleeps for ms milliseconds, returning early (HUB_ESTOPPED)
 * if a stop was requested through hub_signals (see signals.h).
 */
int hub_sleep_ms(int64_t ms);

/*
 * hub_read_file: reads a whole file into a new NUL-terminated buffer that the
 * caller frees; *len (if not NULL) gets its length. NULL on error, with the
 * reason (naming the path) in errstr.
 */
char *hub_read_file(const char *path, size_t *len, char *errstr, size_t errstr_size);

/*
 * hub_strlcpy: copies src into dst of size dstsize, always NUL-terminating.
 * Returns strlen(src); truncation happened if the result >= dstsize.
 */
size_t hub_strlcpy(char *dst, const char *src, size_t dstsize);

/*
 * hub_data_dir: the directory holding schemas/ and config/: $HUB_DATA_DIR if
 * set, otherwise the one compiled in. Never NULL.
 */
const char *hub_data_dir(void);

#endif
