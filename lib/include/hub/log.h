/*
 * log.h: structured, one-line-per-event logging.
 *
 * Every line is `ts=... level=... service=... <pairs>` where <pairs> is the
 * caller's printf-formatted text, by convention `event=name key=value ...`.
 * Never log payloads or identifiers of people (names, NHS numbers, subject
 * keys): Kafka coordinates and event ids are what an operator needs.
 */
#ifndef HUB_LOG_H
#define HUB_LOG_H

#include <stdio.h>

typedef enum { HUB_LOG_DEBUG = 0, HUB_LOG_INFO, HUB_LOG_WARN, HUB_LOG_ERROR } hub_log_level_t;

/* hub_log_init: sets the service name and minimum level. May be called again. */
void hub_log_init(const char *service, hub_log_level_t level);

/* hub_log_set_stream: sends log lines to f (stderr by default). */
void hub_log_set_stream(FILE *f);

/*
 * hub_log_level_parse: "debug", "info", "warn" or "error" into *level.
 * Returns 0, or -1 for an unknown name.
 */
int hub_log_level_parse(const char *name, hub_log_level_t *level);

/* hub_log: writes one line if level is at or above the minimum. */
void hub_log(hub_log_level_t level, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

#define hub_log_debug(...) hub_log(HUB_LOG_DEBUG, __VA_ARGS__)
#define hub_log_info(...)  hub_log(HUB_LOG_INFO, __VA_ARGS__)
#define hub_log_warn(...)  hub_log(HUB_LOG_WARN, __VA_ARGS__)
#define hub_log_error(...) hub_log(HUB_LOG_ERROR, __VA_ARGS__)

#endif
