/* log.c: key=value log lines, written with one fputs so concurrent lines do not interleave. */
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "hub/common.h"
#include "hub/log.h"

static char log_service[64] = "hub";
static hub_log_level_t log_min = HUB_LOG_INFO;
static FILE *log_stream;

static const char *const level_names[] = {"debug", "info", "warn", "error"};

void hub_log_init(const char *service, hub_log_level_t level)
{
    hub_strlcpy(log_service, service ? service : "hub", sizeof(log_service));
    log_min = level;
}

void hub_log_set_stream(FILE *f)
{
    log_stream = f;
}

int hub_log_level_parse(const char *name, hub_log_level_t *level)
{
    for (size_t i = 0; i < HUB_ARRAY_LEN(level_names); i++) {
        if (strcmp(name, level_names[i]) == 0) {
            *level = (hub_log_level_t)i;
            return 0;
        }
    }
    return -1;
}

void hub_log(hub_log_level_t level, const char *fmt, ...)
{
    char line[2048];
    struct timespec ts;
    struct tm tm;
    size_t n;
    va_list ap;

    if (level < log_min)
        return;
    clock_gettime(CLOCK_REALTIME, &ts);
    gmtime_r(&ts.tv_sec, &tm);
    n = strftime(line, sizeof(line), "ts=%Y-%m-%dT%H:%M:%S", &tm);
    n += (size_t)snprintf(line + n, sizeof(line) - n, ".%03ldZ level=%s service=%s ",
                          ts.tv_nsec / 1000000, level_names[level], log_service);
    va_start(ap, fmt);
    if (n < sizeof(line))
        vsnprintf(line + n, sizeof(line) - n, fmt, ap);
    va_end(ap);
    n = strlen(line);
    if (n >= sizeof(line) - 1)
        n = sizeof(line) - 2;
    line[n] = '\n';
    line[n + 1] = '\0';
    fputs(line, log_stream ? log_stream : stderr);
}
