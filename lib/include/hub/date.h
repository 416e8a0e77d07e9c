/*
 * date.h: calendar dates as days since 1970-01-01 (Avro's `date`), and the
 * Europe/London calendar the partnership works in.
 */
#ifndef HUB_DATE_H
#define HUB_DATE_H

#include <stddef.h>
#include <stdint.h>

typedef int32_t hub_date_t;

/* hub_date_from_ymd: *out = the date y-m-d. 0, or HUB_EINVAL if no such date exists. */
int hub_date_from_ymd(int y, int m, int d, hub_date_t *out);

/* hub_date_to_ymd: splits a date into year, month (1-12) and day (1-31). */
void hub_date_to_ymd(hub_date_t date, int *y, int *m, int *d);

/* hub_date_is_leap: non-zero for a Gregorian leap year. */
int hub_date_is_leap(int y);

/*
 * hub_date_parse: "YYYY-MM-DD" into *out. 0, or HUB_EINVAL if the text is not
 * in that shape or names a date that does not exist (e.g. 2023-02-29).
 */
int hub_date_parse(const char *text, hub_date_t *out);

/* hub_date_format: writes "YYYY-MM-DD" into buf (at least 11 bytes); returns buf. */
char *hub_date_format(hub_date_t date, char *buf, size_t size);

/*
 * hub_date_add_months: date plus months (may be negative), clamped to the end
 * of a shorter month: 2008-02-29 + 12 months = 2009-02-28, 2000-08-31 + 6
 * months = 2001-02-28. This is how "17 years 6 months" and "3 months after the
 * 16th birthday" are computed, so a 29 February birthday falls on 28 February
 * in common years.
 */
hub_date_t hub_date_add_months(hub_date_t date, int months);

/*
 * hub_date_age_years: whole years from born to on (the birthday counts from
 * 28 February in common years for 29 February births, consistent with
 * hub_date_add_months).
 */
int hub_date_age_years(hub_date_t born, hub_date_t on);

/* hub_date_london: the Europe/London calendar date at the instant ms (Unix ms). */
hub_date_t hub_date_london(int64_t ms);

/* hub_timestamp_format: ms as ISO 8601 UTC ("2026-11-26T18:06:45.123Z") into buf (>= 25 bytes). */
char *hub_timestamp_format(int64_t ms, char *buf, size_t size);

/* hub_timestamp_parse: ISO 8601 (Z or +hh:mm, optional fraction) into Unix ms. 0 or HUB_EINVAL. */
int hub_timestamp_parse(const char *text, int64_t *ms);

#endif
